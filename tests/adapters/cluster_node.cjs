// One Node socket.io 4.8 server of a test cluster, with @socket.io/redis-adapter 8.x (node-redis 4 clients).
//
//   NODE_PATH=tests/interop/node_modules node tests/adapters/cluster_node.cjs --redis URL --name N [--key K] [--sharded | --streams]
//
// --streams: @socket.io/redis-streams-adapter 0.3 (streamName and channelPrefix K) instead of the redis-adapter.
// --recovery S: connectionStateRecovery with maxDisconnectionDuration S seconds (a recovered socket keeps its data).
//
// Prints "READY <port>" once listening. Implements the same `do(op, spec)` operations as cluster_node.py
// (see its docstring), with the same answers, plus `npm-emitter` (the same as `emitter`, through
// @socket.io/redis-emitter).
"use strict";

const http = require("http");
const { Server } = require("socket.io");
const { createClient, createCluster } = require("redis");
const { createAdapter, createShardedAdapter } = require("@socket.io/redis-adapter");
const { Emitter } = require("@socket.io/redis-emitter");

function arg(name, fallback) {
  const i = process.argv.indexOf("--" + name);
  return i >= 0 ? process.argv[i + 1] : fallback;
}
const URL = arg("redis");
const NAME = arg("name", "node");
const KEY = arg("key", "socket.io");
const SHARDED = process.argv.includes("--sharded");
const STREAMS = process.argv.includes("--streams");
const RECOVERY = arg("recovery", null);

async function main() {
  // redis+cluster://h1:p1,h2:p2 (as sioserver's URL): a node-redis cluster client, for the sharded adapter
  const pub = URL.startsWith("redis+cluster://")
    ? createCluster({ rootNodes: URL.slice("redis+cluster://".length).split(",").map((h) => ({ url: "redis://" + h })) })
    : createClient({ url: URL });
  const sub = pub.duplicate();
  pub.on("error", (e) => console.error("pub error", e.message));
  sub.on("error", (e) => console.error("sub error", e.message));
  await Promise.all([pub.connect(), sub.connect()]);
  const httpServer = http.createServer();
  const options = { cors: { origin: "*" } };
  if (RECOVERY !== null) {
    options.connectionStateRecovery = { maxDisconnectionDuration: Number(RECOVERY) * 1000, skipMiddlewares: true };
  }
  const io = new Server(httpServer, options);
  if (STREAMS) {
    const streams = require("@socket.io/redis-streams-adapter");
    io.adapter(streams.createAdapter(pub, { streamName: KEY, channelPrefix: KEY, blockTimeInMs: 2000 }));
  } else {
    io.adapter(SHARDED ? createShardedAdapter(pub, sub, { channelPrefix: KEY }) : createAdapter(pub, sub, { key: KEY }));
  }
  const serverEvents = [];
  const emitter = new Emitter(pub, { key: KEY });

  io.on("ping-srv", (...args) => {
    const cb = typeof args[args.length - 1] === "function" ? args.pop() : null;
    serverEvents.push(["ping-srv", ...args]);
    if (cb) cb({ pong: args, node: NAME });
  });
  io.on("note", (...args) => serverEvents.push(["note", ...args]));

  function operator(spec) {
    let op = io.of(spec.nsp || "/");
    if (spec.to) op = op.to(spec.to);
    if (spec.except) op = op.except(spec.except);
    if (spec.local) op = op.local;
    return op;
  }
  function describe(s) {
    return {
      id: s.id,
      rooms: [...s.rooms].sort(),
      data: s.data,
      local: io.of("/").sockets.has(s.id),
      handshake: Object.keys(s.handshake).sort(),
      auth: s.handshake.auth,
    };
  }
  const ops = {
    async broadcast(spec) {
      operator(spec).emit(spec.event, ...(spec.args || []));
      return "ok";
    },
    async "emit-ack"(spec) {
      const started = Date.now();
      return new Promise((resolve) => {
        operator(spec).timeout((spec.timeout || 2) * 1000).emit(spec.event, ...(spec.args || []), (err, answers) => {
          resolve({ ok: !err, error: err ? err.message : undefined, answers, elapsed: (Date.now() - started) / 1000 });
        });
      });
    },
    async fetch(spec) {
      return (await operator(spec).fetchSockets()).map(describe);
    },
    async "sockets-join"(spec) {
      operator(spec).socketsJoin(spec.rooms);
      return "ok";
    },
    async "sockets-leave"(spec) {
      operator(spec).socketsLeave(spec.rooms);
      return "ok";
    },
    async "disconnect-sockets"(spec) {
      operator(spec).disconnectSockets(!!spec.close);
      return "ok";
    },
    async remote(spec) {
      for (const s of await io.fetchSockets()) {
        if (s.id !== spec.id) continue;
        if (spec.action === "emit") s.emit(...spec.args);
        else if (spec.action === "join") s.join(spec.args[0]);
        else if (spec.action === "leave") s.leave(spec.args[0]);
        else if (spec.action === "disconnect") s.disconnect();
        return "ok";
      }
      return "not found";
    },
    async sse(spec) {
      io.serverSideEmit(spec.event, ...(spec.args || []));
      return "ok";
    },
    async "sse-ack"(spec) {
      const started = Date.now();
      try {
        const answers = await io.serverSideEmitWithAck(spec.event, ...(spec.args || []));
        return { ok: true, answers, elapsed: (Date.now() - started) / 1000 };
      } catch (err) {
        return { ok: false, error: err.message, elapsed: (Date.now() - started) / 1000 };
      }
    },
    async "all-rooms"() {
      return [...(await io.of("/").adapter.allRooms())].sort();
    },
    async "server-count"() {
      return await io.of("/").adapter.serverCount();
    },
    async "server-events"() {
      return serverEvents;
    },
    async stream(spec) {
      const target = spec.to ? io.to(spec.to) : io;
      (async () => {
        for (let i = 0; i < spec.count; i++) {
          target.emit(spec.event, i);
          await new Promise((r) => setTimeout(r, spec.interval * 1000));
        }
        target.emit("stream-done", spec.count);
      })();
      return "started";
    },
    async "npm-emitter"(spec) {
      let em = emitter.of(spec.nsp || "/");
      const target = em;
      if (spec.to) em = em.to(spec.to);
      if (spec.except) em = em.except(spec.except);
      const action = spec.action || "emit";
      if (action === "emit") em.emit(spec.event, ...(spec.args || []).map(revive));
      else if (action === "sockets-join") em.socketsJoin(spec.rooms);
      else if (action === "sockets-leave") em.socketsLeave(spec.rooms);
      else if (action === "disconnect-sockets") em.disconnectSockets(!!spec.close);
      else if (action === "server-side-emit") target.serverSideEmit(spec.event, ...(spec.args || []));
      return "ok";
    },
  };
  // {"$bytes": "0102"} in a test's arguments stands for a Buffer (binary must cross as msgpack bin)
  function revive(v) {
    if (v && typeof v === "object" && typeof v.$bytes === "string") return Buffer.from(v.$bytes, "hex");
    if (Array.isArray(v)) return v.map(revive);
    return v;
  }

  io.on("connection", (socket) => {
    const auth = socket.handshake.auth || {};
    if (!socket.recovered) {
      socket.data = { name: auth.name ?? null };
      for (const room of auth.rooms || []) socket.join(room);
    }
    socket.on("do", async (op, spec, cb) => {
      try {
        spec = spec || {};
        if (op === "broadcast" || op === "emit-ack") spec.args = (spec.args || []).map(revive);
        cb(await ops[op](spec));
      } catch (err) {
        console.error("op", op, "failed", err);
        cb({ error: String(err) });
      }
    });
  });
  httpServer.listen(0, "127.0.0.1", () => console.log(`READY ${httpServer.address().port}`));
  const stop = () => {
    io.close();
    Promise.allSettled([pub.quit(), sub.quit()]).then(() => process.exit(0));
    setTimeout(() => process.exit(0), 1000).unref();
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
