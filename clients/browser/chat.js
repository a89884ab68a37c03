// The sioserver chat page. User text only ever reaches the DOM through textContent.
(() => {
  "use strict";

  const $ = (id) => document.getElementById(id);
  const el = (tag, className, text) => {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  };
  const clock = (ms) => new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });

  const ui = {
    messages: $("messages"), status: $("status"), statusText: $("status-text"), transport: $("transport"),
    online: $("online-count"), names: $("names"), name: $("name"), typing: $("typing"),
    form: $("composer"), text: $("text"),
  };

  if (typeof io !== "function") {
    ui.statusText.textContent = "socket.io client failed to load";
    ui.status.dataset.state = "disconnected";
    return;
  }

  // ?transports=polling (or websocket, or polling,websocket) picks the client's transports.
  const params = new URLSearchParams(location.search);
  const known = ["polling", "websocket", "webtransport"];
  const transports = (params.get("transports") || "").split(",").map((t) => t.trim()).filter((t) => known.includes(t));

  const ADJECTIVES = ["Brave", "Calm", "Clever", "Curious", "Gentle", "Happy", "Lucky", "Quick", "Quiet", "Witty"];
  const ANIMALS = ["Badger", "Falcon", "Fox", "Heron", "Koala", "Lynx", "Otter", "Panda", "Robin", "Wombat"];
  const pick = (list) => list[Math.floor(Math.random() * list.length)];
  let myName = (params.get("name") || sessionStorage.getItem("chat-name") || `${pick(ADJECTIVES)} ${pick(ANIMALS)}`)
    .trim().slice(0, 24);
  ui.name.value = myName;

  const socket = io({
    ...(transports.length ? { transports } : {}),
    auth: (cb) => cb({ name: myName }), // read at every (re)connect, so a rename survives reconnects
  });
  window.chatSocket = socket; // for the browser test and for poking around in devtools

  // ------------------------------------------------------------------ messages

  const shown = new Set(); // server message ids already on screen (history after a reconnect)
  const atBottom = () => ui.messages.scrollHeight - ui.messages.scrollTop - ui.messages.clientHeight < 40;

  function append(node) {
    const stick = atBottom();
    ui.messages.querySelector(".empty")?.remove();
    ui.messages.append(node);
    if (stick || node.classList.contains("own")) ui.messages.scrollTop = ui.messages.scrollHeight;
  }

  function system(text) {
    append(el("div", "system", text));
  }

  function message({ id, name, text, ts }, own = false) {
    const node = el("div", own ? "msg own" : "msg");
    node.dataset.from = name;
    if (id !== undefined) node.dataset.id = String(id);
    if (!own) node.append(el("div", "who", name));
    node.append(el("div", "bubble", text));
    node.append(el("div", "meta", own ? "sending…" : clock(ts)));
    append(node);
    return node;
  }

  function receive(msg) {
    if (shown.has(msg.id)) return;
    shown.add(msg.id);
    message(msg);
  }

  ui.messages.append(el("div", "empty", "No messages yet. Say hello!"));

  ui.form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = ui.text.value.trim();
    if (!text) return;
    ui.text.value = "";
    stopTyping();
    const node = message({ name: myName, text }, true);
    node.dataset.status = "sending";
    const meta = node.querySelector(".meta");
    socket.timeout(5000).emit("chat", { text }, (err, ack) => {
      if (err || !ack || ack.error) {
        node.dataset.status = "failed";
        meta.textContent = `✗ not delivered${ack && ack.error ? ` (${ack.error})` : ""}`;
        return;
      }
      shown.add(ack.id);
      node.dataset.id = String(ack.id);
      node.dataset.status = "delivered";
      meta.textContent = `✓ delivered ${clock(ack.ts)}`;
    });
  });

  socket.on("chat", (msg) => {
    typingNames.delete(msg.name);
    renderTyping();
    receive(msg);
  });

  // ---------------------------------------------------------------- presence

  socket.on("presence", ({ count, names }) => {
    ui.online.textContent = String(count);
    ui.names.textContent = names.length ? `Here: ${names.join(", ")}` : "";
  });

  function join(name) {
    socket.emit("join", name, (ack) => {
      if (!ack || ack.error) {
        system(`Could not join: ${ack ? ack.error : "no answer"}`);
        return;
      }
      myName = ack.name;
      ui.name.value = myName;
      sessionStorage.setItem("chat-name", myName);
      for (const msg of ack.history) receive(msg);
    });
  }

  ui.name.addEventListener("change", () => {
    const name = ui.name.value.trim().replace(/\s+/g, " ").slice(0, 24);
    if (!name || name === myName) {
      ui.name.value = myName;
      return;
    }
    system(`You are now ${name}`);
    myName = name;
    if (socket.connected) join(name);
  });
  ui.name.addEventListener("keydown", (event) => {
    if (event.key === "Enter") ui.text.focus();
  });

  // ------------------------------------------------------------------ typing

  const typingNames = new Map(); // name -> timer (typing is volatile: a lost "stopped" expires)
  let typingSince = 0;
  let typingTimer = 0;

  function renderTyping() {
    const names = [...typingNames.keys()];
    ui.typing.textContent = names.length === 0 ? "" : names.length === 1 ? `${names[0]} is typing…`
      : names.length < 4 ? `${names.join(", ")} are typing…` : "Several people are typing…";
  }

  function stopTyping() {
    clearTimeout(typingTimer);
    if (typingSince) socket.volatile.emit("typing", false);
    typingSince = 0;
  }

  ui.text.addEventListener("input", () => {
    if (!socket.connected) return;
    const now = Date.now();
    if (!typingSince || now - typingSince > 3000) {
      socket.volatile.emit("typing", true);
      typingSince = now;
    }
    clearTimeout(typingTimer);
    typingTimer = setTimeout(stopTyping, 2000);
  });

  socket.on("typing", ({ name, typing }) => {
    clearTimeout(typingNames.get(name));
    if (typing) typingNames.set(name, setTimeout(() => { typingNames.delete(name); renderTyping(); }, 5000));
    else typingNames.delete(name);
    renderTyping();
  });

  // -------------------------------------------------------- connection state

  function setStatus(state, text) {
    ui.status.dataset.state = state;
    ui.statusText.textContent = text;
  }

  function setTransport(name) {
    ui.transport.textContent = name || "";
    if (name) ui.transport.dataset.transport = name;
    else delete ui.transport.dataset.transport;
  }

  const watched = new WeakSet();
  let everConnected = false;

  socket.on("connect", () => {
    const engine = socket.io.engine;
    if (!watched.has(engine)) {
      watched.add(engine);
      engine.on("upgrade", (transport) => setTransport(transport.name));
    }
    setStatus("connected", "connected");
    setTransport(engine.transport.name);
    system(everConnected ? "Reconnected" : `Connected as ${myName}`);
    everConnected = true;
    join(myName);
  });

  socket.on("disconnect", (reason) => {
    setTransport("");
    typingNames.clear();
    renderTyping();
    if (socket.active) {
      setStatus("reconnecting", "reconnecting…");
      system(`Connection lost (${reason}); reconnecting…`);
    } else {
      setStatus("disconnected", "disconnected");
      system(`Disconnected (${reason})`);
    }
  });

  socket.on("connect_error", (err) => {
    if (!socket.active) setStatus("disconnected", `refused: ${err.message}`);
  });

  socket.io.on("reconnect_attempt", (attempt) => setStatus("reconnecting", `reconnecting (attempt ${attempt})…`));
  socket.io.on("reconnect_failed", () => setStatus("disconnected", "gave up reconnecting"));
})();
