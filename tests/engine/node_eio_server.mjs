// The reference Engine.IO server (Node engine.io 6.6, from tests/interop/node_modules) for the
// close-semantics table test: it echoes every message; "close-me" makes it call socket.close()
// (a server disconnect). Prints "READY <port>" once listening.
//
//   node tests/engine/node_eio_server.mjs --ping-interval MS --ping-timeout MS --upgrade-timeout MS [--allow-eio3]
import { createServer } from "node:http";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import path from "node:path";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, "..", "interop", "package.json"));
const engine = require("engine.io");

const args = process.argv.slice(2);
function option(name, fallback) {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
}

const http = createServer();
const server = new engine.Server({
  pingInterval: option("--ping-interval", 25000),
  pingTimeout: option("--ping-timeout", 20000),
  upgradeTimeout: option("--upgrade-timeout", 10000),
  maxHttpBufferSize: 1e6,
  allowEIO3: args.includes("--allow-eio3"),
});
server.attach(http, { path: "/engine.io/" });
server.on("connection", (socket) => {
  socket.on("message", (data) => {
    if (data === "close-me") socket.close();
    else socket.send(data);
  });
  socket.on("close", (reason) => process.stderr.write(`close ${socket.id} ${reason}\n`));
});
http.listen(0, "127.0.0.1", () => {
  process.stdout.write(`READY ${http.address().port}\n`);
});
process.on("SIGTERM", () => process.exit(0));
