// The reference for the socket.io-client 2.x tests: Node socket.io 4.8 with allowEIO3: true, the same
// handlers as sio_v2_server.py (see there). Prints "READY <port>".
//
//   node tests/interop/eio3/sio_v2_server.mjs [--ping-interval MS] [--ping-timeout MS]
import { createServer } from "node:http";
import { Server } from "socket.io";

const args = process.argv.slice(2);
function option(name, fallback) {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
}

const SERVER_BINARY = {
  bytes: Buffer.from([0, 1, 2, 0xfe, 0xff]),
  nested: [Buffer.from("xyz"), { deep: Buffer.from(Array.from({ length: 256 }, (_, i) => i)) }],
  text: "not binary",
};

// other paths: 404 (socket.io answers its own path first); the browser test opens a page at this origin
const http = createServer((req, res) => { res.writeHead(404, { "Content-Type": "text/plain" }); res.end("404: Not Found"); });
const io = new Server(http, {
  allowEIO3: true,
  cors: { origin: "*" },
  pingInterval: option("--ping-interval", 25000),
  pingTimeout: option("--ping-timeout", 20000),
});

io.of("/custom").use((socket, next) => {
  const auth = socket.handshake.auth;
  if (!("token" in auth)) return next(new Error("no token"));
  if (auth.token !== "t-1") {
    const err = new Error("bad token");
    err.data = { reason: "bad token" };
    return next(err);
  }
  next();
});

for (const name of ["/", "/custom"]) {
  io.of(name).on("connection", (socket) => {
    socket.on("whoami", (cb) => cb({ sid: socket.id, auth: socket.handshake.auth, nsp: name }));
    socket.on("echo", (...args) => args.pop()(...args));
    socket.on("ask", (question, cb) => {
      socket.timeout(5000).emit("question", question, (err, answer) => cb(err ? null : answer));
    });
    socket.on("binary", (...args) => {
      const cb = args.pop();
      socket.emit("bin", SERVER_BINARY);
      cb(...args);
    });
  });
}

http.listen(0, "127.0.0.1", () => process.stdout.write(`READY ${http.address().port}\n`));
process.on("SIGTERM", () => process.exit(0));
