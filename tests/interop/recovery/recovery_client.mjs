#!/usr/bin/env node
// Connection state recovery driven by the official client (socket.io-client 4.8), against recovery_app.py
// (sioserver) or recovery_server.cjs (Node socket.io 4.8): both must make the client see the same things.
//
//   node recovery_client.mjs <server-url> <scenario> --transport websocket|polling [--window-ms N] [--tag T]
//
// Prints one JSON line {"scenario", "ok", "error", "data"}; the pytest side asserts on `data`.
//   burst:  a burst of COUNT room broadcasts; the client drops its transport for real
//           (socket.io.engine.close(): a WebSocket close, or the Engine.IO close packet over polling) when
//           the DROP_AT-th arrives, and reconnects by itself; the server sends the next ones once it has
//           seen the socket go, so some are always sent while the client is away.
//   window: a drop and a reconnect within the window (recovered), then a drop and a reconnect after it.
import { io } from "socket.io-client";

import { parseArgs, sleep, within } from "../../_support/scenario.mjs";

const { positional, opts } = parseArgs(process.argv.slice(2), { transport: "websocket", "window-ms": "1000", tag: "" });
const [URL_, SCENARIO] = positional;
const TRANSPORT = opts.transport;
const WINDOW_MS = Number(opts["window-ms"]);
const STEP_MS = 5000;
const QUIET_MS = 300;
const COUNT = 20;
const DROP_AT = 6;

function client(user, extra = {}) {
  return io(URL_, {
    transports: [TRANSPORT],
    forceNew: true,
    auth: { room: `room-${user}`, user },
    reconnectionDelay: 200, // a few ticks are broadcast while the client is away
    reconnectionDelayMax: 200,
    randomizationFactor: 0,
    ...extra,
  });
}

const once = (emitter, event) => new Promise((resolve) => emitter.once(event, (...args) => resolve(args)));

async function until(what, predicate) {
  await within(STEP_MS, what, (async () => {
    while (!predicate()) await sleep(5);
  })());
}

async function burst() {
  const user = `burst-${TRANSPORT}-${opts.tag}-${process.pid}`;
  const socket = client(user);
  const connects = [];
  const disconnects = [];
  socket.on("connect", () => connects.push({ id: socket.id, recovered: socket.recovered }));
  socket.on("disconnect", (reason) => disconnects.push(reason));
  await within(STEP_MS, "connect", once(socket, "connect"));
  const ticks = [];
  let dropped = false;
  socket.on("tick", (...args) => {
    ticks.push(args);
    if (ticks.length === DROP_AT && !dropped) {
      dropped = true;
      socket.io.engine.close(); // the transport goes; no Socket.IO DISCONNECT is sent
    }
  });
  const started = await within(STEP_MS, "burst ack", socket.timeout(STEP_MS).emitWithAck("burst", `room-${user}`, COUNT, 20, DROP_AT));
  await until(`${COUNT} ticks and a reconnect (ticks ${ticks.length}, connects ${connects.length})`,
    () => ticks.length >= COUNT && connects.length >= 2);
  await sleep(QUIET_MS); // a duplicate would arrive now
  const who = await within(STEP_MS, "whoami", socket.timeout(STEP_MS).emitWithAck("whoami"));
  socket.disconnect();
  return {
    started,
    connects,
    disconnects,
    recovered: socket.recovered,
    values: ticks.map((args) => args[0]),
    away: ticks.filter((args) => args[1] === 0).map((args) => args[0]),
    arities: [...new Set(ticks.map((args) => args.length))],
    offsets: ticks.map((args) => args[args.length - 1]),
    who,
  };
}

/** Drops the transport; returns once the server has seen the socket go (asked through `watcher`). */
async function dropAndReconnect(socket, watcher) {
  const sid = socket.id;
  const gone = once(socket, "disconnect");
  socket.io.engine.close();
  const [reason] = await within(STEP_MS, "disconnect", gone);
  await watcher.timeout(STEP_MS).emitWithAck("until_gone", sid);
  return reason;
}

async function window_() {
  const user = `window-${TRANSPORT}-${opts.tag}-${process.pid}`;
  const socket = client(user, { reconnection: false });
  const watcher = client(`${user}-watcher`);
  await within(STEP_MS, "connect", Promise.all([once(socket, "connect"), once(watcher, "connect")]));
  const first = { id: socket.id, recovered: socket.recovered };
  const tick = once(socket, "tick");
  await socket.timeout(STEP_MS).emitWithAck("burst", `room-${user}`, 1, 0);
  await within(STEP_MS, "tick", tick); // the client now holds an offset
  const reasons = [await dropAndReconnect(socket, watcher)];
  socket.connect();
  await within(STEP_MS, "reconnect within the window", once(socket, "connect"));
  const within_ = { id: socket.id, recovered: socket.recovered };
  const tick2 = once(socket, "tick");
  await socket.timeout(STEP_MS).emitWithAck("burst", `room-${user}`, 1, 0);
  await within(STEP_MS, "tick", tick2);
  reasons.push(await dropAndReconnect(socket, watcher));
  await sleep(WINDOW_MS + 500); // what is tested: the window passing
  socket.connect();
  await within(STEP_MS, "reconnect after the window", once(socket, "connect"));
  const after = { id: socket.id, recovered: socket.recovered };
  const who = await socket.timeout(STEP_MS).emitWithAck("whoami");
  socket.disconnect();
  watcher.disconnect();
  return { first, within: within_, after, reasons, who };
}

const SCENARIOS = { burst, window: window_ };

const watchdog = setTimeout(() => {
  console.log(JSON.stringify({ scenario: SCENARIO, ok: false, error: "watchdog" }));
  process.exit(2);
}, 30000);
try {
  const data = await SCENARIOS[SCENARIO]();
  console.log(JSON.stringify({ scenario: SCENARIO, ok: true, data }));
  clearTimeout(watchdog);
  process.exit(0);
} catch (err) {
  console.log(JSON.stringify({ scenario: SCENARIO, ok: false, error: String(err && err.stack || err) }));
  clearTimeout(watchdog);
  process.exit(1);
}
