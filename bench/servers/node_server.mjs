// Node socket.io 4.8 (pinned in bench/package-lock.json): the same echo, bcast and gc handlers as
// every bench server. Run with --expose-gc so "gc" can collect before the driver reads the RSS.
import { createServer } from "node:http";
import { Server } from "socket.io";

const port = Number(process.argv[process.argv.indexOf("--port") + 1]);
const httpServer = createServer();
const io = new Server(httpServer, { serveClient: false });

io.on("connection", (socket) => {
  socket.on("echo", (...args) => {
    const ack = args.pop();
    if (typeof ack === "function") ack(...args);
  });
  socket.on("bcast", (...args) => {
    io.emit("bcast", ...args);
  });
  socket.on("gc", (ack) => {
    if (globalThis.gc) globalThis.gc();
    if (typeof ack === "function") ack();
  });
});

httpServer.listen(port, "127.0.0.1", () => {
  console.log(`socket.io ${port} listening`);
});
for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => process.exit(0));
