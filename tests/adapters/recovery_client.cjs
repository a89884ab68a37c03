// The official socket.io-client 4.8 recovering its connection on another server of the cluster.
//
//   NODE_PATH=tests/interop/node_modules node tests/adapters/recovery_client.cjs \
//       --from URL_A --to URL_B --transport websocket|polling [--count 20] [--drop-after 5] [--delay 150] [--hold 0]
//
// Connects to A (auth {name, rooms: ["rr"]}), asks A (its cluster_node `do stream`) for a burst of `count`
// `tick(i)` broadcasts to the room rr, one every 20 ms, then `stream-done`. On the `drop-after`-th tick it
// points its Manager at B and closes its transport: the Manager reconnects to B after `delay` ms (`hold`
// when given), sending the pid and the last offset it saw. On `stream-done` it prints one JSON line: every connect (id, recovered),
// every tick in arrival order (with its offset, the last argument) and on which connection it came.
// With a `hold` it prints on the second connect instead (the burst ended while it was away).
"use strict";

const { io } = require("socket.io-client");

function arg(name, fallback) {
  const i = process.argv.indexOf("--" + name);
  return i >= 0 ? process.argv[i + 1] : fallback;
}
const FROM = arg("from");
const TO = arg("to");
const TRANSPORT = arg("transport", "websocket");
const COUNT = Number(arg("count", "20"));
const DROP_AFTER = Number(arg("drop-after", "5"));
const HOLD = Number(arg("hold", "0"));
const DELAY = HOLD || Number(arg("delay", "150"));

const socket = io(FROM, {
  transports: [TRANSPORT],
  auth: { name: "rc", rooms: ["rr"] },
  reconnectionDelay: DELAY, // 150 ms: away for ~7 of the ticks, which the other server must read back
  reconnectionDelayMax: DELAY,
  randomizationFactor: 0,
  timeout: 5000,
});
const connects = [];
const ticks = [];
let dropped = false;

function finish(reason) {
  console.log(JSON.stringify({ reason, connects, ticks, lastOffset: socket._lastOffset ?? null }));
  socket.disconnect();
  setTimeout(() => process.exit(0), 50);
}

socket.on("connect", () => {
  connects.push({ id: socket.id, recovered: socket.recovered, url: socket.io.uri });
  if (HOLD > 0 && connects.length === 2) return finish("reconnected"); // the burst is long over
  if (connects.length === 1) {
    socket.emit("do", "stream", { event: "tick", count: COUNT, interval: 0.02, to: "rr" }, (answer) => {
      if (answer !== "started") finish(`stream not started: ${JSON.stringify(answer)}`);
    });
  }
});
socket.on("tick", (...args) => {
  // `dropped`: received after the transport was closed (replayed, or live on the new connection)
  ticks.push({ i: args[0], offset: args.length > 1 ? args[args.length - 1] : null, dropped });
  if (!dropped && ticks.length >= DROP_AFTER) {
    dropped = true;
    socket.io.uri = TO;
    socket.io.engine.close();
  }
});
// a replayed stream-done may come before the connect event (Node writes missed packets first): finish after it
socket.on("stream-done", () => setImmediate(() => finish("done")));
socket.on("connect_error", (err) => console.error("connect_error", err.message));
setTimeout(() => finish("timeout"), 15000).unref();
