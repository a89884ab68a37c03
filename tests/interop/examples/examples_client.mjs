#!/usr/bin/env node
// The steps of scenario.py with the official JavaScript client (socket.io-client 4.8), against an example app.
//
//   node examples_client.mjs <url> app|asgi-app|fiddle|django [websocket|polling|default]
//
// asgi-app is app with the event names of python-socketio's examples/server/asgi/app.py ("close room",
// "disconnect request" where the aiohttp one has close_room, disconnect_request).
//
// Prints one JSON line: {"ok": true, "seen": {"a": [...], "b": [...]}} (the same transcript as scenario.py:
// a my_response's data string, or [event, data] for the other entries), or {"ok": false, "error": "..."}.

import { io } from "socket.io-client";

const [URL_, SCENARIO, TRANSPORT = "default"] = process.argv.slice(2);
const STEP_MS = 5000;
const transports = TRANSPORT === "default" ? undefined : [TRANSPORT];
const TICK = { data: "Server generated event" };

class Recorder {
  constructor(events = ["my_response"], auth = undefined) {
    this.queue = [];
    this.waiters = [];
    this.socket = io(URL_, { transports, auth, reconnection: false, forceNew: true });
    for (const event of events) {
      this.socket.on(event, (...args) => this.push([event, args.length === 1 ? args[0] : args]));
    }
    this.socket.on("disconnect", () => this.push(["disconnect", null]));
  }

  push(item) {
    const waiter = this.waiters.shift();
    if (waiter) waiter(item);
    else this.queue.push(item);
  }

  take() {
    if (this.queue.length) return Promise.resolve(this.queue.shift());
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no message within 5 s")), STEP_MS);
      this.waiters.push((item) => { clearTimeout(timer); resolve(item); });
    });
  }

  async next(ticks = false) {
    for (;;) {
      const item = await this.take();
      const isTick = item[0] === "my_response" && JSON.stringify(item[1]) === JSON.stringify(TICK);
      if (ticks || !isTick) return item;
    }
  }

  async data() {
    const [event, data] = await this.next();
    if (event !== "my_response") throw new Error(`expected my_response, got ${event}`);
    return data.data;
  }

  emit(...args) { this.socket.emit(...args); }
}

const NAMES = {
  app: { closeRoom: "close_room", disconnectRequest: "disconnect_request" },
  "asgi-app": { closeRoom: "close room", disconnectRequest: "disconnect request" },
};

async function app(names) {
  const seen = { a: [], b: [] };
  const a = new Recorder();
  seen.a.push(await a.next());
  const b = new Recorder();
  seen.b.push(await b.next());
  a.emit("my_event", { data: "to myself" });
  seen.a.push(await a.data());
  a.emit("join", { room: "r" });
  seen.a.push(await a.data());
  b.emit("join", { room: "r" });
  seen.b.push(await b.data());
  a.emit("my_room_event", { data: "to r", room: "r" });
  seen.a.push(await a.data());
  seen.b.push(await b.data());
  b.emit("my_broadcast_event", { data: "to all" });
  seen.a.push(await a.data());
  seen.b.push(await b.data());
  a.emit("leave", { room: "r" });
  seen.a.push(await a.data());
  b.emit("my_room_event", { data: "r without a", room: "r" });
  seen.b.push(await b.data());
  b.emit("my_broadcast_event", { data: "fence 1" });
  seen.a.push(await a.data());
  seen.b.push(await b.data());
  b.emit(names.closeRoom, { room: "r" });
  seen.b.push(await b.data());
  b.emit("my_room_event", { data: "to a closed room", room: "r" });
  b.emit("my_event", { data: "fence 2" });
  seen.b.push(await b.data());
  a.emit(names.disconnectRequest);
  seen.a.push(await a.next());
  seen.b.push(await b.next(true));
  b.socket.disconnect();
  return seen;
}

async function fiddle() {
  const rec = new Recorder(["hello", "pong_from_server"], { token: "t" });
  const seen = [await rec.next()];
  for (let i = 0; i < 3; i++) {
    rec.emit("ping_from_client");
    seen.push(await rec.next());
  }
  rec.socket.disconnect();
  return { a: seen };
}

async function django() {
  // scenario.py's django_scenario; the sids are replaced once both are known (b's may come after a hears of it)
  const events = ["connected", "user_joined", "new_message", "user_left"];
  const a = new Recorder(events, { token: "t" });
  const raw = { a: [await a.next()], b: [] };
  const b = new Recorder(events, { token: "t" });
  raw.a.push(await a.next());
  raw.b.push(await b.next());
  a.emit("joined", "alice");
  raw.a.push(await a.next());
  raw.b.push(await b.next());
  b.emit("mess", JSON.stringify({ username: "bob", message: "hi \u00e9" }));
  raw.a.push(await a.next());
  raw.b.push(await b.next());
  a.emit("left", "alice");
  raw.b.push(await b.next());
  b.emit("joined", "bob");
  raw.b.push(await b.next());
  const ids = [a.socket.id, b.socket.id];  // gone once disconnected
  a.socket.disconnect();
  b.socket.disconnect();
  const rest = a.queue.filter(([event]) => event !== "disconnect");
  if (rest.length) throw new Error(`a heard more after it left the feed: ${JSON.stringify(rest)}`);
  const name = ([event, data]) =>
    event === "connected" ? [event, data.replace(ids[0], "<a>").replace(ids[1], "<b>")]
                          : [event, data];
  return { a: raw.a.map(name), b: raw.b.map(name) };
}

const watchdog = setTimeout(() => {
  console.log(JSON.stringify({ ok: false, error: "watchdog: the scenario took more than 60 s" }));
  process.exit(1);
}, 60000);

try {
  const seen = await (Object.hasOwn(NAMES, SCENARIO) ? app(NAMES[SCENARIO])
                     : SCENARIO === "django" ? django() : fiddle());
  console.log(JSON.stringify({ ok: true, seen }));
  clearTimeout(watchdog);
  process.exit(0);
} catch (err) {
  console.log(JSON.stringify({ ok: false, error: String(err && err.stack ? err.stack : err) }));
  process.exit(1);
}
