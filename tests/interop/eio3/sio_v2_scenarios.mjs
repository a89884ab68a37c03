// socket.io-client 2.5 (the npm alias socket.io-client-v2) against a server: one JSON result per scenario.
//
//   node tests/interop/eio3/sio_v2_scenarios.mjs URL SCENARIO[,SCENARIO...]
//
// Scenarios: heartbeat (pongs seen, still connected); polling, websocket, upgrade (polling, then the WebSocket
// upgrade before anything is sent). Each
// connects "/" (query token/user), then: whoami, echo with an ack, the server's own ack (ask -> question),
// binary both ways, the namespace /custom (accepted; refused without a token, with a message; refused with a
// wrong token, with data), an unknown namespace, and reports what the client saw.
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const io = require("socket.io-client-v2");

const [url, list] = process.argv.slice(2);
const TRANSPORTS = { polling: ["polling"], websocket: ["websocket"], upgrade: ["polling", "websocket"] };
const ARGS = ["héllo ✓ 中文 🚀", 42, 3.5, true, null, { nested: { list: [1, "two", { three: 3 }] }, empty: {} }, []];
const CLIENT_BINARY = { bytes: Buffer.from([0, 1, 2, 0xfe, 0xff]), nested: [Buffer.from("xyz")], empty: Buffer.alloc(0) };

function plain(value) {
  // binary as {"$bin": hex}, for JSON
  if (Buffer.isBuffer(value) || value instanceof ArrayBuffer || ArrayBuffer.isView(value)) {
    return { $bin: Buffer.from(value instanceof ArrayBuffer ? new Uint8Array(value) : value).toString("hex") };
  }
  if (Array.isArray(value)) return value.map(plain);
  if (value && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  return value;
}

function once(emitter, event, ms = 5000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${event} within ${ms} ms`)), ms);
    emitter.once(event, (...args) => { clearTimeout(timer); resolve(args); });
  });
}

function call(socket, event, ...args) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ack for ${event}`)), 5000);
    socket.emit(event, ...args, (...answer) => { clearTimeout(timer); resolve(answer); });
  });
}

async function refusal(transports, nsp, query) {
  // a manager of its own each time: a manager keeps one socket per namespace, refused or not
  const manager = new io.Manager(url, { transports, reconnection: false });
  const socket = manager.socket(nsp, query ? { query } : {});
  try {
    const [err] = await once(socket, "error");
    return plain(err);
  } finally {
    socket.close();
    if (manager.engine) manager.engine.close();
  }
}

async function heartbeat() {
  // the server pings every 300 ms here: the client must ping, get pongs and stay connected past
  // several intervals + timeouts
  const out = { scenario: "heartbeat" };
  const socket = io(url, { transports: ["websocket"], reconnection: false, forceNew: true });
  try {
    await once(socket, "connect");
    let pongs = 0;
    socket.io.on("pong", () => { pongs += 1; });
    const started = Date.now();
    while (pongs < 4 && Date.now() - started < 5000) await new Promise((r) => setTimeout(r, 50));
    out.pongs = pongs;
    out.connected = socket.connected;
    out.echo = await call(socket, "echo", "still there");
  } catch (err) {
    out.error = String(err && err.stack || err);
  } finally {
    socket.close();
  }
  return out;
}

async function scenario(name) {
  if (name === "heartbeat") return heartbeat();
  const out = { scenario: name };
  const socket = io(url, { transports: TRANSPORTS[name], query: { token: "t-1", user: "zoë" }, reconnection: false,
                           forceNew: true });
  try {
    await once(socket, "connect");
    const engine = socket.io.engine;
    out.transportAtConnect = engine.transport.name;
    if (name === "upgrade") {
      if (engine.transport.name !== "websocket") await once(engine, "upgrade");
    }
    out.idIsEngineId = socket.id === engine.id;
    const [me] = await call(socket, "whoami");
    out.whoami = { sidIsSocketId: me.sid === socket.id, nsp: me.nsp };
    out.rootAuth = me.auth;
    out.echo = await call(socket, "echo", ...ARGS);
    socket.on("question", (q, cb) => cb({ got: q, doubled: q * 2 }));
    out.ask = await call(socket, "ask", 21);
    const bin = once(socket, "bin");
    out.binaryAck = plain(await call(socket, "binary", CLIENT_BINARY, "text", Buffer.from([7])));
    out.binaryEvent = plain((await bin)[0]);

    const custom = socket.io.socket("/custom", { query: { token: "t-1" } });
    await once(custom, "connect");
    out.customIdIsNspEngineId = custom.id === `/custom#${engine.id}`;
    const [meCustom] = await call(custom, "whoami");
    out.customWhoami = { sidIsSocketId: meCustom.sid === custom.id, nsp: meCustom.nsp, auth: meCustom.auth };
    out.customEcho = await call(custom, "echo", "in custom", { n: 1 });
    custom.on("question", (q, cb) => cb(`answer to ${q}`));
    out.customAsk = await call(custom, "ask", "q");
    out.customBinaryAck = plain(await call(custom, "binary", Buffer.from([1, 2, 3])));
    custom.close();

    out.refusedNoToken = await refusal(TRANSPORTS[name], "/custom");
    out.refusedBadToken = await refusal(TRANSPORTS[name], "/custom", { token: "wrong" });
    out.invalidNamespace = await refusal(TRANSPORTS[name], "/nope");
    out.finalTransport = engine.transport.name;
    out.connected = socket.connected;
  } catch (err) {
    out.error = String(err && err.stack || err);
  } finally {
    socket.close();
  }
  return out;
}

for (const name of list.split(",")) {
  process.stdout.write(JSON.stringify(await scenario(name)) + "\n");
}
process.exit(0);
