// The reference for the connection state recovery tests: Node socket.io 4.8 with connectionStateRecovery
// (its in-memory SessionAwareAdapter); mirrors recovery_app.py (read its docstring for the events).
//
//   NODE_PATH=tests/interop/node_modules node tests/interop/recovery/recovery_server.cjs \
//       --port N [--window-ms MS] [--no-skip-middlewares]
//
// Prints "READY <port>" once listening (--port 0 picks a free port).
"use strict";
const http = require("http");
const { Server } = require("socket.io");

const argv = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = argv.indexOf("--" + name);
  return i >= 0 ? argv[i + 1] : dflt;
};
const httpServer = http.createServer();
const io = new Server(httpServer, {
  connectionStateRecovery: {
    maxDisconnectionDuration: Number(opt("window-ms", 120000)),
    skipMiddlewares: !argv.includes("--no-skip-middlewares"),
  },
});
const middlewareRuns = new Map();
const connects = new Map();

io.use((socket, next) => {
  const user = String(socket.handshake.auth.user);
  middlewareRuns.set(user, (middlewareRuns.get(user) || 0) + 1);
  next();
});

io.on("connection", (socket) => {
  const auth = socket.handshake.auth;
  const user = String(auth.user);
  connects.set(user, (connects.get(user) || 0) + 1);
  if (!socket.recovered) {
    socket.join(String(auth.room));
    socket.data = { user: auth.user };
  }
  socket.on("burst", (room, count, intervalMs, pauseAt, ack) => {
    if (typeof pauseAt === "function") [ack, pauseAt] = [pauseAt, -1];
    let away = false;
    let resume = null;
    socket.once("disconnect", () => {
      away = true;
      if (resume) resume();
    });
    ack("started");
    let i = 0;
    const tick = () => {
      if (i === pauseAt && !away) {
        // the client drops its transport on the tick before: go on once it is away
        resume = tick;
        return;
      }
      // how many sockets the room has now: 0 while the client is away (the tick can only come back replayed)
      const members = (io.of("/").adapter.rooms.get(room) || new Set()).size;
      io.to(room).emit("tick", i++, members);
      if (i < count) setTimeout(tick, intervalMs);
    };
    setTimeout(tick, 0);
  });
  socket.on("until_gone", (target, ack) => {
    const other = io.of("/").sockets.get(target);
    if (!other) return ack(true);
    other.once("disconnect", () => ack(true)); // the session was persisted just before
  });
  socket.on("whoami", (ack) => {
    ack({
      id: socket.id,
      recovered: socket.recovered,
      rooms: [...socket.rooms].sort(),
      data: socket.data,
      middleware_runs: middlewareRuns.get(user) || 0,
      connects: connects.get(user) || 0,
    });
  });
});

httpServer.listen(Number(opt("port", 0)), "127.0.0.1", () => {
  console.log(`READY ${httpServer.address().port}`);
});
process.on("SIGTERM", () => process.exit(0));
