// Official socket.io-client 4.8 against `python -m sioserver app:sio --workers N` on one port, no Redis:
// N_POLL clients with transports ["polling"] and N_DEFAULT with the default transports. Each sends
// chats (acked); every client must receive every chat exactly once. With "kill", one worker that
// serves clients is killed (SIGKILL) after the first round: its clients must reconnect, and a second
// round must reach everyone exactly once again.
// With "hold", it prints {"holding":true} after the rounds and waits for every client to be disconnected.
// usage: node workers_clients.mjs URL N_POLL N_DEFAULT ROUNDS kill|nokill|hold   -> one JSON line
import { createRequire } from "module";
const require = createRequire(new URL("../interop/package.json", import.meta.url));
const { io } = require("socket.io-client");

const [url, nPoll, nDefault, rounds, mode] = process.argv.slice(2);
const result = { ok: false, checks: {}, figures: {} };
const deadline = setTimeout(() => { result.error = "timeout"; finish(1); }, 60000);
const clients = [];
const connectErrors = [];

function finish(code) {
  clearTimeout(deadline);
  for (const c of clients) c.socket.close();
  console.log(JSON.stringify(result));
  process.exit(code);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(pred, ms) {
  const end = Date.now() + ms;
  while (Date.now() < end && !pred()) await sleep(20);
  return pred();
}

function client(name, opts) {
  const socket = io(url, { reconnectionDelay: 100, reconnectionDelayMax: 500, ...opts });
  const c = { name, socket, got: [], connects: 0, disconnects: 0 };
  socket.on("connect", () => { c.connects++; });
  socket.on("disconnect", () => { c.disconnects++; });
  socket.on("connect_error", (err) => connectErrors.push(`${name}: ${err.message}`));
  socket.on("chat", (m) => c.got.push(m.text));
  clients.push(c);
  return c;
}

async function round(tag) {
  const texts = [];
  const acks = await Promise.all(clients.map(async (c, i) => {
    const text = `${tag}-${c.name}`;
    texts.push(text);
    return c.socket.timeout(5000).emitWithAck("chat", { text });
  }));
  const want = texts.length;
  const before = clients.map((c) => c.got.filter((t) => t.startsWith(`${tag}-`)).length);
  await until(() => clients.every((c) => c.got.filter((t) => t.startsWith(`${tag}-`)).length >= want), 10000);
  await sleep(300); // a duplicate would arrive now
  const sorted = JSON.stringify([...texts].sort());
  const each = clients.map((c) => JSON.stringify(c.got.filter((t) => t.startsWith(`${tag}-`)).sort()) === sorted);
  return { acked: acks.every((a) => a.ok === true), each_once: each.every(Boolean),
           wrong: clients.filter((_, i) => !each[i]).map((c) => [c.name, c.got.filter((t) => t.startsWith(`${tag}-`)).length]),
           pids: [...new Set(acks.map((a) => a.pid))].length, before };
}

try {
  const t0 = Date.now();
  for (let i = 0; i < Number(nPoll); i++) client(`poll${i}`, { transports: ["polling"] });
  for (let i = 0; i < Number(nDefault); i++) client(`dflt${i}`, {});
  result.checks.all_connected = await until(() => clients.every((c) => c.socket.connected), 15000);
  result.figures.connect_ms = Date.now() - t0;
  await until(() => clients.slice(Number(nPoll)).every((c) => c.socket.io.engine.transport.name === "websocket"), 5000);
  result.figures.upgraded = clients.slice(Number(nPoll)).filter((c) => c.socket.io.engine.transport.name === "websocket").length;
  result.figures.polling_stayed = clients.slice(0, Number(nPoll)).filter((c) => c.socket.io.engine.transport.name === "polling").length;
  const pids = await Promise.all(clients.map((c) => c.socket.timeout(5000).emitWithAck("whoami")));
  clients.forEach((c, i) => { c.pid = pids[i]; });
  result.figures.worker_pids = [...new Set(pids)].length;
  const big = "x".repeat(600 * 1024); // larger than the forwarder's 256 KiB high-water mark, both ways
  const echoes = await Promise.all(clients.map((c) => c.socket.timeout(10000).emitWithAck("echo", big)));
  result.checks.big_echoes = echoes.every((e) => e === big);
  result.figures.census = await clients[0].socket.timeout(5000).emitWithAck("census");
  for (let r = 0; r < Number(rounds); r++) {
    const t = Date.now();
    const out = await round(`r${r}`);
    result.checks[`round${r}_acked`] = out.acked;
    result.checks[`round${r}_each_once`] = out.each_once;
    result.figures[`round${r}_ms`] = Date.now() - t;
    if (!out.each_once) result.figures[`round${r}_wrong`] = out.wrong;
  }
  if (mode === "kill") {
    const victim = pids[0];
    const theirs = clients.filter((c) => c.pid === victim);
    result.figures.victim = victim;
    result.figures.victim_clients = theirs.length;
    const t = Date.now();
    process.kill(victim, "SIGKILL");
    result.checks.theirs_reconnected = await until(() => theirs.every((c) => c.disconnects >= 1 && c.socket.connected), 15000);
    result.checks.all_connected_after = await until(() => clients.every((c) => c.socket.connected), 15000);
    result.figures.reconnect_ms = Date.now() - t;
    const errorsBefore = connectErrors.length;
    const out = await round("after");
    result.checks.after_acked = out.acked;
    result.checks.after_each_once = out.each_once;
    if (!out.each_once) result.figures.after_wrong = out.wrong;
    result.figures.connect_errors_during_kill = errorsBefore;
  }
  if (mode === "hold") { // the test SIGTERMs the supervisor now: every client must be told, none reconnects
    const reasons = [];
    for (const c of clients) { c.socket.io.reconnection(false); c.socket.on("disconnect", (r) => reasons.push(r)); }
    console.log(JSON.stringify({ holding: true }));
    result.checks.all_disconnected = await until(() => reasons.length === clients.length, 20000);
    result.figures.reasons = [...new Set(reasons)].sort();
  }
  result.checks.no_connect_error = connectErrors.length === 0;
  result.figures.connect_errors = connectErrors.slice(0, 5);
  result.ok = Object.values(result.checks).every(Boolean);
  finish(result.ok ? 0 : 1);
} catch (err) {
  result.error = String(err && err.stack || err);
  finish(1);
}
