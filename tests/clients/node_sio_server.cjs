// The Node reference server (socket.io 4.8) for sioclient's tests; mirrors tests/clients/sio_app.py.
//
//   NODE_PATH=tests/interop/node_modules node tests/clients/node_sio_server.cjs \
//       --port N [--parser msgpack] [--ping-interval MS] [--ping-timeout MS] [--transports polling,websocket]
//
// Prints "READY <port>" once listening (--port 0 picks a free port). Namespaces "/" and "/chat" accept
// (auth {"token": "bad"} is refused on "/" with {"message": "bad token", "data": {"code": 4001}}),
// "/private" refuses everyone with {"message": "not allowed", "data": {"reason": "private"}}.
// Events: echo (emits "echo" back with the same arguments and acks with them), auth (acks with the
// CONNECT payload), ask (calls the client's "question" handler and acks with its answer), kick (the
// server disconnects the socket), transport (acks with the transport name). On connect the server
// emits "welcome" {sid, nsp, auth}.
"use strict";
const http = require("http");
const { Server } = require("socket.io");

const argv = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = argv.indexOf("--" + name);
  return i >= 0 ? argv[i + 1] : dflt;
};
const options = {
  pingInterval: Number(opt("ping-interval", 25000)),
  pingTimeout: Number(opt("ping-timeout", 20000)),
  transports: opt("transports", "polling,websocket").split(","),
  maxHttpBufferSize: 1e6,
};
if (opt("parser", "default") === "msgpack") {
  options.parser = require("socket.io-msgpack-parser");
}
const httpServer = http.createServer();
const io = new Server(httpServer, options);

function setup(nsp) {
  nsp.on("connection", (socket) => {
    const auth = socket.handshake.auth;
    socket.emit("welcome", { sid: socket.id, nsp: nsp.name, auth });
    socket.on("echo", (...args) => {
      const ack = typeof args[args.length - 1] === "function" ? args.pop() : null;
      socket.emit("echo", ...args);
      if (ack) ack(...args);
    });
    socket.on("auth", (ack) => ack(auth));
    socket.on("ask", async (question, ack) => {
      try {
        const reply = await socket.timeout(5000).emitWithAck("question", question);
        ack(reply);
      } catch (err) {
        ack({ error: String(err) });
      }
    });
    socket.on("kick", () => socket.disconnect());
    socket.on("transport", (ack) => ack(socket.conn.transport.name));
  });
}

io.use((socket, next) => {
  if (socket.handshake.auth && socket.handshake.auth.token === "bad") {
    const err = new Error("bad token");
    err.data = { code: 4001 };
    return next(err);
  }
  next();
});
setup(io.of("/"));
setup(io.of("/chat"));
io.of("/private").use((socket, next) => {
  const err = new Error("not allowed");
  err.data = { reason: "private" };
  next(err);
});

httpServer.listen(Number(opt("port", 0)), "127.0.0.1", () => {
  console.log("READY " + httpServer.address().port);
});
process.on("SIGTERM", () => process.exit(0));
