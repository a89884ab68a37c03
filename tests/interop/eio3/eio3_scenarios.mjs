// engine.io-client 3.5 (the npm alias engine.io-client-v3) against an Engine.IO echo server: one JSON result
// per scenario.
//
//   node tests/interop/eio3/eio3_scenarios.mjs URL SCENARIO[,SCENARIO...]
//
// Scenarios: polling (XHR2 binary payloads), polling-b64 (forceBase64: b64=1), websocket, websocket-b64,
// upgrade. Each opens a session, echoes text (non-ASCII and astral characters, empty, "b"-prefixed, digits) and
// binary, waits for the client's pings to be answered twice (the server pings every 300 ms here), and reports.
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const eio = require("engine.io-client-v3");

const [url, list] = process.argv.slice(2);
const CONFIG = {
  polling: { transports: ["polling"] },
  "polling-b64": { transports: ["polling"], forceBase64: true },
  websocket: { transports: ["websocket"] },
  "websocket-b64": { transports: ["websocket"], forceBase64: true },
  upgrade: { transports: ["polling", "websocket"] },
};
const TEXTS = ["héllo ✓ 中文 🚀🚀", "", "b4AAAA", "12:34", "x".repeat(5000)];
const BINARIES = [Buffer.from([0, 1, 2, 0xfe, 0xff]), Buffer.from(Array.from({ length: 256 }, (_, i) => i))];

function show(data) {
  if (data === undefined) data = "";  // a v3 client reads an empty message as no data
  if (typeof data === "string") return { text: data.length > 100 ? `${data.slice(0, 20)}…(${data.length})` : data };
  return { bin: Buffer.from(data instanceof ArrayBuffer ? new Uint8Array(data) : data).toString("hex") };
}

function wait(socket, event, ms = 5000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${event} within ${ms} ms`)), ms);
    socket.once(event, (arg) => { clearTimeout(timer); resolve(arg); });
  });
}

async function scenario(name) {
  const out = { scenario: name };
  const socket = eio(url, { path: "/engine.io", ...CONFIG[name] });
  const received = [];
  socket.on("message", (data) => received.push(show(data)));
  try {
    out.handshake = await wait(socket, "handshake");
    await wait(socket, "open").catch(() => null);  // open may come with the handshake
    if (name === "upgrade" && socket.transport.name !== "websocket") await wait(socket, "upgrade");
    out.transport = socket.transport.name;
    const sent = [...TEXTS, ...BINARIES];
    for (const message of sent) socket.send(message);
    const started = Date.now();
    while (received.length < sent.length && Date.now() - started < 5000) await new Promise((r) => setTimeout(r, 20));
    out.echoOk = JSON.stringify(received) === JSON.stringify(sent.map(show));
    out.received = received;
    let pongs = 0;
    socket.on("pong", () => { pongs += 1; });
    const beat = Date.now();
    while (pongs < 2 && Date.now() - beat < 5000) await new Promise((r) => setTimeout(r, 20));
    out.pongs = pongs;
    out.readyState = socket.readyState;
  } catch (err) {
    out.error = String(err && err.stack || err);
  } finally {
    socket.close();
  }
  return out;
}

for (const name of list.split(",")) process.stdout.write(JSON.stringify(await scenario(name)) + "\n");
process.exit(0);
