#!/usr/bin/env node
// Socket.IO interop scenarios driven by the official Node client (socket.io-client 4.8) against sio_test_server.py.
//
//   node sio_client_scenarios.mjs <server-url> <scenario>[,<scenario>...] [--parser default|msgpack]
//        [--timeout-ms N] [--server-pid PID]
//
// Runs the scenarios in sequence in this one process and prints one JSON line per scenario on stdout:
//   {"scenario", "ok", "error", "failures": [{"check", "expected", "seen"}], "data": {...}, "ms"}
// `data` holds what the client observed (binary as {"$bin": hex, "$type": constructor name}); the pytest side
// asserts on it. `failures` are the checks made here, where JavaScript is the natural place (byte-for-byte
// comparisons, instanceof); `error` is an exception or a missed deadline. Exit code 0 when every scenario is ok.
// Every wait has its own deadline, every scenario has one too (--timeout-ms), and a watchdog bounds the run.
//
// Scenarios needing a special server: heartbeat, ping-timeout-client, ping-timeout-server (pingInterval =
// pingTimeout = 0.3 s), connect-timeout (connect_timeout = 0.5 s), only-websocket / only-polling (one transport),
// kill and shutdown (--server-pid: the scenario signals the server process itself). The others share one server.

import { createRequire } from "node:module";
import { Manager, io } from "socket.io-client";

import { isBinary, parseArgs, sleep, toBuf, within } from "../../_support/scenario.mjs";

const require = createRequire(import.meta.url);
const CLIENT_VERSION = require("socket.io-client/package.json").version;
const msgpackParser = require("socket.io-msgpack-parser");

const { positional, opts } = parseArgs(process.argv.slice(2), { parser: "default", "timeout-ms": "10000", "server-pid": "" });
const [URL_, SCENARIO_LIST] = positional;
const PARSER_NAME = opts.parser;
const PARSER = PARSER_NAME === "msgpack" ? msgpackParser : undefined;
const SCENARIO_MS = Number(opts["timeout-ms"]);
const SERVER_PID = opts["server-pid"] ? Number(opts["server-pid"]) : null;
const STEP_MS = 4000; // deadline for one wait (a connect, an ack, an event)
const QUIET_MS = 250; // how long "nothing more arrives" is watched

// ---------------------------------------------------------------- plumbing

/** A JSON-able copy of what was received: binary becomes {"$bin": hex, "$type": ..}, a function "$fn". */
function norm(v) {
  if (isBinary(v)) return { $bin: toBuf(v).toString("hex"), $type: v.constructor.name };
  if (typeof v === "function") return "$fn";
  if (v === undefined) return "$undefined";
  if (Array.isArray(v)) return v.map(norm);
  if (v && typeof v === "object") {
    const out = {};
    for (const [k, x] of Object.entries(v)) out[k] = norm(x);
    return out;
  }
  return v;
}

/** Deep equality where any binary equals any binary with the same bytes. */
function sameValue(a, b) {
  if (isBinary(a) || isBinary(b)) return isBinary(a) && isBinary(b) && toBuf(a).equals(toBuf(b));
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => sameValue(x, b[i]));
  }
  if (a && b && typeof a === "object" && typeof b === "object") {
    const ka = Object.keys(a);
    const kb = Object.keys(b);
    return ka.length === kb.length && ka.every((k) => Object.hasOwn(b, k) && sameValue(a[k], b[k]));
  }
  return a === b;
}

/** Records every event a socket receives (in order) and lets a scenario wait for the next one of a name. */
class Recorder {
  constructor(socket, label) {
    this.socket = socket;
    this.label = label;
    this.events = []; // [name, args] in arrival order, never consumed (for "exactly these" checks)
    this.pending = []; // not yet taken by next()
    this.waiters = [];
    this.disconnects = [];
    socket.onAny((name, ...args) => this._push(name, args));
    socket.on("disconnect", (reason, details) => {
      this.disconnects.push({ reason, details: details ? String(details.description ?? details) : null, at: Date.now() });
      this._push("$disconnect", [reason]);
    });
  }

  _push(name, args) {
    const entry = { name, args };
    this.events.push(entry);
    const i = this.waiters.findIndex((w) => w.names.includes(name));
    if (i >= 0) {
      const [w] = this.waiters.splice(i, 1);
      w.resolve(entry);
    } else {
      this.pending.push(entry);
    }
  }

  /** The next not yet taken event of one of `names`: {name, args}. */
  nextOf(names, ms = STEP_MS) {
    const i = this.pending.findIndex((e) => names.includes(e.name));
    if (i >= 0) return Promise.resolve(this.pending.splice(i, 1)[0]);
    let waiter;
    const arrived = new Promise((resolve) => {
      waiter = { names, resolve };
      this.waiters.push(waiter);
    });
    return within(ms, `event ${JSON.stringify(names)} on ${this.label}`, arrived).finally(() => {
      const j = this.waiters.indexOf(waiter);
      if (j >= 0) this.waiters.splice(j, 1); // timed out: a later event stays pending for the next taker
    });
  }

  /** The arguments of the next not yet taken event `name`. */
  next(name, ms = STEP_MS) {
    return this.nextOf([name], ms).then((e) => e.args);
  }

  named(name) {
    return this.events.filter((e) => e.name === name).map((e) => norm(e.args));
  }
}

class Ctx {
  constructor(name) {
    this.name = name;
    this.failures = [];
    this.data = {};
    this.sockets = [];
    this.managers = [];
  }

  check(check, cond, expected, seen) {
    if (!cond) this.failures.push({ check, expected: norm(expected), seen: norm(seen) });
    return cond;
  }

  /** A socket on its own Manager (its own Engine.IO connection) unless `manager` is given. */
  socket(path = "/", { transports = ["websocket"], auth, manager, label } = {}) {
    let socket;
    if (manager) {
      socket = manager.socket(path, auth === undefined ? {} : { auth });
    } else {
      const o = { transports, reconnection: false, forceNew: true, timeout: STEP_MS };
      if (auth !== undefined) o.auth = auth;
      if (PARSER) o.parser = PARSER;
      socket = io(URL_ + (path === "/" ? "" : path), o);
      this.managers.push(socket.io);
    }
    this.sockets.push(socket);
    socket.rec = new Recorder(socket, label ?? path);
    // the Engine.IO handshake (the engine exists as soon as the Manager does; it opens asynchronously)
    socket.io.engine?.once("handshake", (h) => (socket.rec.handshake = h));
    return socket;
  }

  manager({ transports = ["websocket"] } = {}) {
    const o = { transports, reconnection: false, timeout: STEP_MS, autoConnect: true };
    if (PARSER) o.parser = PARSER;
    const m = new Manager(URL_, o);
    this.managers.push(m);
    return m;
  }

  /** Resolves on "connect", rejects with the connect_error (its .message and .data kept). */
  connected(socket, ms = STEP_MS) {
    if (socket.connected) return Promise.resolve(socket);
    return within(
      ms,
      `connect of ${socket.rec.label}`,
      new Promise((resolve, reject) => {
        socket.once("connect", () => resolve(socket));
        socket.once("connect_error", (err) => reject(err));
      }),
    );
  }

  async open(path = "/", options = {}) {
    const s = this.socket(path, options);
    await this.connected(s);
    return s;
  }

  cleanup() {
    for (const s of this.sockets) {
      try {
        s.disconnect();
      } catch {
        // already gone
      }
    }
    for (const m of this.managers) {
      try {
        m.engine?.close();
      } catch {
        // already gone
      }
    }
  }
}

function ack(socket, event, ...args) {
  return within(STEP_MS, `ack of ${event}`, socket.timeout(STEP_MS).emitWithAck(event, ...args));
}

/** Every argument of the ack (emitWithAck keeps only the first). */
function ackAll(socket, event, ...args) {
  return within(
    STEP_MS + 500,
    `ack of ${event}`,
    new Promise((resolve, reject) => {
      socket.timeout(STEP_MS).emit(event, ...args, (err, ...answer) => (err ? reject(err) : resolve(answer)));
    }),
  );
}

/** A round trip: everything the server sent this socket before now has arrived afterwards. */
async function fence(socket) {
  await ack(socket, "echo", "fence");
}

/** The server's disconnect reasons by sid, polled from a fresh connection until `sid` is there. */
async function serverReason(ctx, sid) {
  const probe = await ctx.open("/", { label: "reason-probe" });
  try {
    const until = Date.now() + STEP_MS;
    for (;;) {
      const all = await ack(probe, "disconnects");
      if (sid in all || Date.now() > until) return all[sid] ?? null;
      await sleep(50);
    }
  } finally {
    probe.disconnect();
  }
}

function disconnected(socket, ms = STEP_MS) {
  return socket.rec.next("$disconnect", ms).then(([reason]) => reason);
}

// ---------------------------------------------------------------- payloads

const ARGS = ["héllo ✓ 中文 🚀", 42, 3.5, true, null, { nested: { list: [1, "two", { three: 3 }] }, empty: {} }, []];

function clientBinary() {
  const all = new Uint8Array(256);
  for (let i = 0; i < 256; i++) all[i] = i;
  return {
    buf: Buffer.from([0, 1, 2, 253, 254, 255]),
    list: [new Uint8Array([10, 20, 30]), "text", { deep: [Buffer.from("deep bytes"), 7] }],
    arrayBuffer: new Uint8Array([7, 8, 9]).buffer,
    all,
    empty: Buffer.alloc(0),
    plain: { n: 1, s: "ünï" },
  };
}

// What the server's `binary-emit` sends (SERVER_BINARY in sio_test_server.py).
const SERVER_BINARY = {
  bytes: Buffer.from([0, 1, 2, 0xfe, 0xff]),
  nested: [Buffer.from("xyz"), { deep: Buffer.from(Array.from({ length: 256 }, (_, i) => i)) }],
  empty: Buffer.alloc(0),
  text: "not binary",
};

// ---------------------------------------------------------------- scenarios

/** The basics over one transport setup: connect, welcome (auth), acks, emits, whoami, client disconnect. */
async function basics(ctx, transports) {
  const auth = { token: "t-1", user: { name: "zoë", roles: ["a", "b"] } };
  const s = await ctx.open("/", { transports, auth });
  const engine = s.io.engine;
  ctx.data.transportAtConnect = engine.transport.name;
  ctx.data.handshake = s.rec.handshake ?? null;
  ctx.data.welcome = norm((await s.rec.next("welcome"))[0]);
  ctx.data.firstEvent = s.rec.events[0]?.name;
  ctx.data.socketId = s.id;
  ctx.data.engineId = engine.id;
  ctx.data.echoAck = norm(await ackAll(s, "echo", ...ARGS));
  s.emit("echo-emit", ...ARGS);
  ctx.data.echoEvent = norm(await s.rec.next("echo"));
  ctx.data.whoami = norm(await ack(s, "whoami"));
  // 30 events in a row come back in order
  for (let i = 0; i < 30; i++) s.emit("echo-emit", i);
  const order = [];
  for (let i = 0; i < 30; i++) order.push((await s.rec.next("echo"))[0]);
  ctx.data.order = order;
  ctx.data.transportAtEnd = engine.transport.name;
  const sid = s.id;
  s.disconnect();
  ctx.data.clientReason = await disconnected(s);
  ctx.data.serverReason = await serverReason(ctx, sid);
}

const scenarios = {
  websocket: (ctx) => basics(ctx, ["websocket"]),

  polling: (ctx) => basics(ctx, ["polling"]),

  async upgrade(ctx) {
    const s = ctx.socket("/", { transports: ["polling", "websocket"], auth: { via: "upgrade" } });
    const engine = s.io.engine;
    // hold the WebSocket probe until events have flowed over polling (engine.onOpen calls this._probe)
    let release;
    const gate = new Promise((resolve) => (release = resolve));
    const probe = engine._probe.bind(engine);
    engine._probe = (name) => gate.then(() => probe(name));
    const upgraded = new Promise((resolve) => engine.once("upgrade", (t) => resolve(t.name)));
    await ctx.connected(s);
    ctx.data.transportAtConnect = engine.transport.name;
    ctx.data.handshake = s.rec.handshake ?? null;
    ctx.data.welcome = norm((await s.rec.next("welcome"))[0]);
    ctx.data.ackBefore = norm(await ackAll(s, "echo", "before", Buffer.from([1, 2, 3])));
    ctx.data.whoamiBefore = norm(await ack(s, "whoami"));
    ctx.data.transportBefore = engine.transport.name;
    // release the probe and keep emitting while the upgrade is under way: nothing is lost or reordered
    release();
    for (let i = 0; i < 20; i++) {
      s.emit("echo-emit", i, Buffer.from([i]));
      if (i % 5 === 4) await sleep(2);
    }
    ctx.data.upgradeEvent = await within(STEP_MS, "engine upgrade", upgraded);
    const during = [];
    for (let i = 0; i < 20; i++) during.push(norm(await s.rec.next("echo")));
    ctx.data.duringUpgrade = during;
    ctx.data.transportAfter = engine.transport.name;
    ctx.data.ackAfter = norm(await ackAll(s, "echo", "after", Buffer.from([4, 5, 6])));
    s.emit("echo-emit", "event-after");
    ctx.data.eventAfter = norm(await s.rec.next("echo"));
    ctx.data.whoamiAfter = norm(await ack(s, "whoami"));
  },

  async namespaces(ctx) {
    // "/" and "/custom" multiplexed on one Engine.IO connection
    const m = ctx.manager();
    const main = ctx.socket("/", { manager: m, label: "main", auth: { ns: "main" } });
    const custom = ctx.socket("/custom", { manager: m, label: "custom", auth: { ns: "custom" } });
    await Promise.all([ctx.connected(main), ctx.connected(custom)]);
    ctx.data.sameEngine = main.io.engine === custom.io.engine;
    ctx.data.ids = { main: main.id, custom: custom.id, engine: m.engine.id };
    ctx.data.welcome = {
      main: norm((await main.rec.next("welcome"))[0]),
      custom: norm((await custom.rec.next("welcome"))[0]),
    };
    ctx.data.whoami = { main: norm(await ack(main, "whoami")), custom: norm(await ack(custom, "whoami")) };
    ctx.data.echo = {
      main: norm(await ackAll(main, "echo", "to-main")),
      custom: norm(await ackAll(custom, "echo", "to-custom")),
    };
    custom.emit("echo-emit", "custom-only");
    ctx.data.customEvent = norm(await custom.rec.next("echo"));
    await fence(main);
    ctx.data.mainEchoEvents = main.rec.named("echo");
    // leaving one namespace keeps the other (and the Engine.IO connection) alive
    custom.disconnect();
    ctx.data.mainAfterCustomLeft = norm(await ackAll(main, "echo", "still-here"));
    ctx.data.engineOpen = m.engine.readyState;
    // a namespace left can be joined again on the same connection, with a fresh sid
    custom.connect();
    await ctx.connected(custom);
    ctx.data.rejoined = { id: custom.id, sameEngine: custom.io.engine === m.engine };
    ctx.data.rejoinedWelcome = norm((await custom.rec.next("welcome"))[0]);
    ctx.data.rejoinedEcho = norm(await ackAll(custom, "echo", "again"));
    // /custom alone, on its own connection
    const alone = await ctx.open("/custom", { label: "custom-alone" });
    ctx.data.aloneWelcome = norm((await alone.rec.next("welcome"))[0]);
  },

  async dynamic(ctx) {
    // /dyn-<digits> matches the server's regex: created on demand, removed when empty, created again
    const m = ctx.manager();
    const first = ctx.socket("/dyn-42", { manager: m, label: "dyn-42" });
    await ctx.connected(first);
    ctx.data.echo = norm(await ackAll(first, "echo", 1, "two"));
    first.disconnect();
    await sleep(50);
    const again = ctx.socket("/dyn-42", { manager: m, label: "dyn-42-again" });
    await ctx.connected(again);
    ctx.data.echoAgain = norm(await ackAll(again, "echo", "again"));
    const other = await ctx.open("/dyn-7", { transports: ["polling"], label: "dyn-7" });
    ctx.data.echoOther = norm(await ackAll(other, "echo", Buffer.from([7])));
    const bad = ctx.socket("/dyn-x", { manager: m, label: "dyn-x" });
    try {
      await ctx.connected(bad);
      ctx.data.bad = null;
    } catch (err) {
      ctx.data.bad = { message: err.message };
    }
  },

  async auth(ctx) {
    const auth = { token: "abc", n: 1.5, list: [1, null, "ü"], nested: { ok: true } };
    const s = await ctx.open("/", { auth });
    ctx.data.sent = auth;
    ctx.data.welcome = norm((await s.rec.next("welcome"))[0]);
    const none = await ctx.open("/", { label: "no-auth" });
    ctx.data.welcomeNoAuth = norm((await none.rec.next("welcome"))[0]);
    const custom = await ctx.open("/custom", { auth: { where: "custom" }, label: "custom" });
    ctx.data.welcomeCustom = norm((await custom.rec.next("welcome"))[0]);
  },

  async refused(ctx) {
    const m = ctx.manager();
    const s = ctx.socket("/", { manager: m, auth: { refuse: true } });
    try {
      await ctx.connected(s);
      ctx.data.error = null;
    } catch (err) {
      ctx.data.error = { message: err.message, data: norm(err.data), isError: err instanceof Error };
    }
    ctx.data.connected = s.connected;
    ctx.data.active = s.active;
    // the refusal is for that namespace only: the Engine.IO connection stays and serves another one
    const custom = ctx.socket("/custom", { manager: m, label: "custom-after-refusal" });
    await ctx.connected(custom);
    ctx.data.sameEngineAfter = norm(await ackAll(custom, "echo", "after-refusal"));
    // refused in /custom as well
    const refusedCustom = ctx.socket("/custom", { auth: { refuse: true }, label: "custom-refused" });
    try {
      await ctx.connected(refusedCustom);
      ctx.data.customError = null;
    } catch (err) {
      ctx.data.customError = { message: err.message, data: norm(err.data) };
    }
    // a middleware refusing with data, a middleware returning False, a connect handler returning False
    const others = {};
    for (const [key, auth] of [
      ["middleware", { middleware: "refuse" }],
      ["middlewareFalse", { middleware: "false" }],
      ["handlerFalse", { refuse: "false" }],
    ]) {
      const r = ctx.socket("/", { auth, label: key }); // its own Manager: one caches a socket per namespace
      try {
        await ctx.connected(r);
        others[key] = null;
      } catch (err) {
        others[key] = { message: err.message, data: norm(err.data) };
      }
    }
    ctx.data.others = others;
    await sleep(QUIET_MS);
    ctx.data.eventsWhileRefused = s.rec.events.map((e) => e.name);
  },

  async "invalid-namespace"(ctx) {
    const m = ctx.manager();
    const s = ctx.socket("/nope", { manager: m, label: "nope" });
    try {
      await ctx.connected(s);
      ctx.data.error = null;
    } catch (err) {
      ctx.data.error = { message: err.message, data: norm(err.data) };
    }
    ctx.data.connected = s.connected;
    // the connection stays open: "/" connects on the same Engine.IO connection afterwards
    const main = ctx.socket("/", { manager: m, label: "main-after" });
    await ctx.connected(main);
    ctx.data.engineId = m.engine.id;
    ctx.data.afterAck = norm(await ackAll(main, "echo", "after-invalid"));
  },

  async acks(ctx) {
    const s = await ctx.open("/");
    // client -> server with a deadline: one argument, several, none
    ctx.data.one = norm(await ack(s, "echo", { a: [1, 2] }));
    ctx.data.several = norm(await ackAll(s, "echo", "x", 2, [3], { four: 4 }));
    ctx.data.none = norm(await ackAll(s, "echo"));
    // a handler that never answers: the client's own timeout fires
    const t0 = Date.now();
    try {
      await s.timeout(400).emitWithAck("never-answer", 1);
      ctx.data.timedOut = null;
    } catch (err) {
      ctx.data.timedOut = { message: err.message, ms: Date.now() - t0 };
    }
    // server -> client: sio.call() answered by this listener's callback
    s.on("question", (payload, cb) => cb({ answered: payload, bin: Buffer.from([9, 8, 7]) }));
    ctx.data.serverCallAck = norm(await ack(s, "server-call", { q: "why" }, 3));
    ctx.data.serverCallEvent = norm((await s.rec.next("answer"))[0]);
    // sio.emit(..., callback=fn) answered with several arguments
    s.off("question");
    s.on("question", (payload, cb) => cb("a", 2, { p: payload }));
    s.emit("server-callback", "cb-payload");
    ctx.data.callbackAnswer = norm(await s.rec.next("callback-answer"));
    // sio.call() with a short timeout: this client answers too late; the server reports AckTimeoutError,
    // ignores the late ack, and the connection keeps working
    s.on("question-ignored", (payload, cb) => setTimeout(() => cb("too late"), 700));
    ctx.data.serverTimeoutAck = norm(await ack(s, "server-call-timeout", "ignored", 0.3));
    ctx.data.serverTimeoutEvent = norm((await s.rec.next("answer"))[0]);
    await sleep(600); // the late ack goes out now
    ctx.data.afterLateAck = norm(await ackAll(s, "echo", "still-connected"));
    ctx.data.connectedAtEnd = s.connected;
  },

  async "ack-ids"(ctx) {
    // 150 acks in flight at once in each of two multiplexed namespaces (ids of 1 to 3 digits, after the
    // namespace prefix in "/custom"): every answer reaches the emit it belongs to
    const m = ctx.manager();
    const main = ctx.socket("/", { manager: m, label: "main" });
    const custom = ctx.socket("/custom", { manager: m, label: "custom" });
    await Promise.all([ctx.connected(main), ctx.connected(custom)]);
    const N = 150;
    const wrong = [];
    const jobs = [];
    for (const [s, tag] of [
      [main, "m"],
      [custom, "c"],
    ]) {
      for (let i = 0; i < N; i++) {
        const payload = i % 3 === 0 ? [`${tag}${i}`, i] : i % 3 === 1 ? [i] : [`${i}`, { i }];
        jobs.push(
          ackAll(s, "echo", ...payload).then((answer) => {
            if (!sameValue(answer, payload)) wrong.push({ tag, i, payload, answer });
          }),
        );
      }
    }
    await Promise.all(jobs);
    ctx.data.count = jobs.length;
    ctx.data.wrong = wrong.slice(0, 5);
    ctx.data.wrongCount = wrong.length;
  },

  async reconnect(ctx) {
    // the server closes the connection; the client reconnects by itself (new Engine.IO session, new sids)
    const o = { transports: ["websocket"], reconnection: true, reconnectionDelay: 100, reconnectionDelayMax: 200 };
    if (PARSER) o.parser = PARSER;
    const m = new Manager(URL_, o);
    ctx.managers.push(m);
    const s = ctx.socket("/", { manager: m, auth: { n: 1 }, label: "main" });
    const custom = ctx.socket("/custom", { manager: m, label: "custom" });
    await Promise.all([ctx.connected(s), ctx.connected(custom)]);
    const before = { main: s.id, custom: custom.id, engine: m.engine.id };
    await s.rec.next("welcome");
    const reconnected = new Promise((resolve) => m.once("reconnect", resolve));
    s.emit("close-transport");
    ctx.data.reason = await disconnected(s);
    ctx.data.attempts = await within(STEP_MS, "manager reconnect", reconnected);
    await Promise.all([ctx.connected(s), ctx.connected(custom)]);
    const after = { main: s.id, custom: custom.id, engine: m.engine.id };
    ctx.data.fresh = Object.keys(before).every((k) => before[k] !== after[k] && after[k]);
    ctx.data.recovered = Boolean(s.recovered);
    ctx.data.welcomeAgain = norm((await s.rec.next("welcome"))[0]);
    ctx.data.echo = { main: norm(await ackAll(s, "echo", "back")), custom: norm(await ackAll(custom, "echo", "back")) };
    m.reconnection(false);
  },

  async "connect-timeout"(ctx) {
    // an Engine.IO connection that never connects a namespace is closed after connect_timeout
    const o = { transports: ["websocket"], reconnection: false };
    if (PARSER) o.parser = PARSER;
    const m = new Manager(URL_, o);
    ctx.managers.push(m);
    const t0 = Date.now();
    await within(STEP_MS, "manager open", new Promise((resolve) => m.once("open", resolve)));
    const closed = await within(STEP_MS, "manager close", new Promise((resolve) => m.engine.once("close", resolve)));
    ctx.data.reason = closed;
    ctx.data.ms = Date.now() - t0;
  },

  async binary(ctx) {
    const s = await ctx.open("/", { transports: ctx.transports ?? ["websocket"] });
    const sent = clientBinary();
    const answer = await ackAll(s, "binary", sent, "second", [Buffer.from([0xff])]);
    ctx.data.found = norm(answer[0]);
    ctx.data.echoed = norm(answer.slice(1));
    ctx.check("binary.echo-equal", sameValue(answer[1], sent), sent, answer[1]);
    ctx.check("binary.second-arg", answer[2] === "second", "second", answer[2]);
    ctx.check("binary.third-arg", sameValue(answer[3], [Buffer.from([0xff])]), [Buffer.from([0xff])], answer[3]);
    // server -> client: bytes, bytearray and memoryview nested
    s.emit("binary-emit");
    const [got] = await s.rec.next("binary");
    ctx.data.serverBinary = norm(got);
    ctx.check("binary.server-equal", sameValue(got, SERVER_BINARY), SERVER_BINARY, got);
    ctx.check("binary.server-types", isBinary(got?.bytes) && isBinary(got?.nested?.[1]?.deep), "binary", got);
    // the same through echo-emit (an EVENT, not an ACK) and a large attachment
    const big = Buffer.alloc(200_000, 0xab);
    s.emit("echo-emit", { big }, [Buffer.from("a"), Buffer.from("b")]);
    const [o1, o2] = await s.rec.next("echo");
    ctx.check("binary.event-large", isBinary(o1?.big) && toBuf(o1.big).equals(big), "200000 x ab", o1?.big);
    ctx.check("binary.event-list", sameValue(o2, [Buffer.from("a"), Buffer.from("b")]), ["a", "b"], o2);
    ctx.data.eventLargeLength = isBinary(o1?.big) ? toBuf(o1.big).length : null;
    // a burst of binary events (batched into shared polling payloads), then large multi-byte text
    for (let i = 0; i < 25; i++) s.emit("echo-emit", i, { b: Buffer.from([i, 255 - i]) }, [Buffer.alloc(i, i)]);
    const burst = [];
    for (let i = 0; i < 25; i++) burst.push(await s.rec.next("echo"));
    ctx.data.burstOk = burst.map(([i, o, l]) => sameValue([o, l], [{ b: Buffer.from([i, 255 - i]) }, [Buffer.alloc(i, i)]]));
    ctx.data.burstOrder = burst.map(([i]) => i);
    const text = "é✓中🚀 text ".repeat(20_000);
    const [back] = await ackAll(s, "echo", text);
    ctx.data.largeText = { length: text.length, same: back === text };
    // binary in the client's ack to sio.call()
    s.on("question", (payload, cb) => cb({ got: payload, reply: Buffer.from([1, 0, 1]) }));
    s.emit("server-call", Buffer.from([5, 5]));
    ctx.data.callWithBinary = norm((await s.rec.next("answer"))[0]);
  },

  "binary-polling": (ctx) => {
    ctx.transports = ["polling"];
    return scenarios.binary(ctx);
  },

  async "attachment-limit"(ctx) {
    // ten attachments in one packet are fine (the reference parser's default maxAttachments is 10)
    const s = await ctx.open("/", { label: "ten" });
    const ten = Array.from({ length: 10 }, (_, i) => Buffer.from([i, i]));
    const answer = await ackAll(s, "binary", ten);
    ctx.data.ten = { found: norm(answer[0]).length, echoed: norm(answer[1]) };
    ctx.check("attachment-limit.ten-equal", sameValue(answer[1], ten), ten, answer[1]);
    // eleven: the default parser refuses the packet and closes the connection (with msgpack there is no such
    // limit: binary is not sent as attachments)
    const e = await ctx.open("/", { label: "eleven" });
    const sid = e.id;
    const eleven = Array.from({ length: 11 }, (_, i) => Buffer.from([i]));
    const outcome = e.timeout(1500).emitWithAck("binary", eleven).then(
      (a) => ({ acked: true, found: a.length }),
      (err) => ({ acked: false, error: err.message }),
    );
    const got = await outcome;
    const reason = await disconnected(e, got.acked ? QUIET_MS : 1500).catch(() => null);
    ctx.data.eleven = { ...got, reason, serverReason: null };
    if (ctx.data.eleven.reason) ctx.data.eleven.serverReason = await serverReason(ctx, sid);
  },

  async "payload-limits"(ctx) {
    // maxHttpBufferSize (1 MB): the client sizes its polling batches and the server counts the same way
    const echoAll = async (s, payloads) => {
      for (const [i, p] of payloads.entries()) s.emit("echo-emit", i, p);
      const back = [];
      for (let i = 0; i < payloads.length; i++) back.push(await s.rec.next("echo", STEP_MS));
      return back.every(([i, p]) => sameValue(p, payloads[i])) && back.map(([i]) => i).join() === [...payloads.keys()].join();
    };
    const outcome = async (label, transports, payload) => {
      const s = await ctx.open("/", { transports, label });
      s.emit("echo-emit", 0, payload);
      const first = await s.rec.nextOf(["echo", "$disconnect"]);
      const reason = first.name === "$disconnect" ? first.args[0] : null;
      return { echoed: first.name === "echo" && sameValue(first.args[1], payload), reason };
    };
    const poll = await ctx.open("/", { transports: ["polling"], label: "poll-burst" });
    ctx.data.pollingBurst = await echoAll(poll, Array.from({ length: 30 }, (_, i) => `${i}`.padEnd(100_000, "é")));
    ctx.data.pollingBinaryBurst = await echoAll(poll, Array.from({ length: 20 }, (_, i) => Buffer.alloc(100_000, i)));
    // binary over polling is base64 (4/3): 740 kB fits in a 1 MB body, 760 kB does not (413, "transport error")
    ctx.data.polling740k = await outcome("poll-740k", ["polling"], Buffer.alloc(740_000, 1));
    ctx.data.polling760k = await outcome("poll-760k", ["polling"], Buffer.alloc(760_000, 2));
    // a WebSocket binary frame of exactly 1 MB is accepted, one byte more closes the connection
    ctx.data.ws1M = await outcome("ws-1M", ["websocket"], Buffer.alloc(1_000_000, 3));
    ctx.data.ws1Mplus1 = await outcome("ws-1M+1", ["websocket"], Buffer.alloc(1_000_001, 4));
  },

  async "only-websocket"(ctx) {
    // a server with transports=["websocket"]: WebSocket clients connect at once, polling ones cannot
    const ws = await ctx.open("/", { transports: ["websocket"], label: "ws" });
    ctx.data.handshake = ws.rec.handshake ?? null;
    ctx.data.whoami = norm(await ack(ws, "whoami"));
    for (const [key, transports] of [
      ["polling", ["polling"]],
      ["default", ["polling", "websocket"]],
    ]) {
      const s = ctx.socket("/", { transports, label: key });
      try {
        await ctx.connected(s);
        ctx.data[key] = { connected: true, transport: s.io.engine.transport.name };
      } catch (err) {
        ctx.data[key] = { connected: false, message: err.message };
      }
    }
  },

  async "only-polling"(ctx) {
    // a server with transports=["polling"]: no upgrade is offered, a WebSocket-only client cannot connect
    const s = await ctx.open("/", { transports: ["polling", "websocket"], label: "default" });
    ctx.data.handshake = s.rec.handshake ?? null;
    let upgrading = false;
    s.io.engine.on("upgrading", () => (upgrading = true));
    await sleep(400);
    ctx.data.upgrading = upgrading;
    ctx.data.transport = s.io.engine.transport.name;
    ctx.data.whoami = norm(await ack(s, "whoami"));
    const ws = ctx.socket("/", { transports: ["websocket"], label: "ws" });
    try {
      await ctx.connected(ws);
      ctx.data.websocket = { connected: true };
    } catch (err) {
      ctx.data.websocket = { connected: false, message: err.message };
    }
  },

  async rooms(ctx) {
    // three clients on their own connections; a: r1; b: r1 + r2; c: r2 (+ "/custom" d: r1, a different namespace).
    // b polls, the others use a WebSocket: one broadcast reaches both kinds of transport
    const transports = { a: ["websocket"], b: ["polling"], c: ["websocket"] };
    const [a, b, c] = await Promise.all(
      ["a", "b", "c"].map((n) => ctx.open("/", { label: n, auth: { name: n }, transports: transports[n] })),
    );
    const d = await ctx.open("/custom", { label: "d" });
    ctx.data.transports = Object.fromEntries([a, b, c, d].map((s) => [s.rec.label, s.io.engine.transport.name]));
    for (const [sock, name] of [
      [a, "a"],
      [b, "b"],
      [c, "c"],
      [d, "d"],
    ]) {
      // c does not answer the "silent" survey
      sock.on("survey", (payload, cb) => (payload === "silent" && name === "c" ? null : cb({ from: name, payload })));
    }
    ctx.data.rooms = {
      a: norm(await ack(a, "join", "r1")),
      b1: norm(await ack(b, "join", "r1")),
      b: norm(await ack(b, "join", "r2")),
      c: norm(await ack(c, "join", "r2")),
      d: norm(await ack(d, "join", "r1")),
    };
    ctx.data.ids = { a: a.id, b: b.id, c: c.id, d: d.id };
    const all = [a, b, c, d];
    const fenceAll = () => Promise.all(all.map(fence));
    const got = () => Object.fromEntries(all.map((s) => [s.rec.label, s.rec.named("room-msg")]));
    const reset = () => all.forEach((s) => (s.rec.events = s.rec.events.filter((e) => e.name !== "room-msg")));

    // everyone (no room): the answers of a, b and c, not d ("/custom")
    ctx.data.surveyAll = norm(await ack(a, "broadcast-ack", { payload: "all", timeout: 2 }));
    ctx.data.surveyAllEvent = norm((await a.rec.next("survey-result"))[0]);
    // room r2: b and c answer
    ctx.data.surveyR2 = norm(await ack(a, "broadcast-ack", { room: "r2", payload: "r2", timeout: 2 }));
    // r1 except r2: only a
    ctx.data.surveyR1ExceptR2 = norm(
      await ack(c, "broadcast-ack", { room: "r1", except: "r2", payload: "x", timeout: 2 }),
    );

    // r2 with c silent: b's answer only, once the 0.5 s deadline has passed
    const t0 = Date.now();
    ctx.data.surveySilent = norm(
      await ack(a, "broadcast-ack", { room: "r2", payload: "silent", timeout: 0.5 }),
    );
    ctx.data.surveySilentMs = Date.now() - t0;

    ctx.data.toR1Ack = norm(await ack(c, "to-room", "r1", "hello r1", Buffer.from([1])));
    await fenceAll();
    ctx.data.afterToR1 = got();
    reset();
    ctx.data.toR1ExceptR2Ack = norm(await ack(a, "to-room-except", "r1", "r2", "r1 but not r2"));
    await fenceAll();
    ctx.data.afterToR1ExceptR2 = got();
    reset();
    ctx.data.bLeavesR1 = norm(await ack(b, "leave", "r1"));
    await ack(a, "to-room", "r1", "after b left");
    await fenceAll();
    ctx.data.afterLeave = got();
    reset();

    await ack(b, "join", "r1");
    await ack(a, "to-room-skip", "r1", "not to a", Buffer.from([2, 3]));
    await fenceAll();
    ctx.data.skipSender = got();
    reset();
    await ack(b, "leave", "r1");
    // a sid is a room: to-room <b's sid>
    await ack(c, "to-room", b.id, "private to b");
    await fenceAll();
    ctx.data.toSid = got();
    reset();
    // in "/custom", r1 is d's only
    await ack(d, "to-room", "r1", "custom r1");
    await fenceAll();
    ctx.data.customR1 = got();
  },

  async "server-disconnect"(ctx) {
    const m = ctx.manager();
    const s = ctx.socket("/", { manager: m, label: "main" });
    const custom = ctx.socket("/custom", { manager: m, label: "custom" });
    await Promise.all([ctx.connected(s), ctx.connected(custom)]);
    const sid = s.id;
    s.emit("disconnect-me");
    ctx.data.reason = await disconnected(s);
    ctx.data.active = s.active;
    ctx.data.connected = s.connected;
    // only that namespace: /custom keeps working on the same connection
    ctx.data.customAfter = norm(await ackAll(custom, "echo", "custom still here"));
    ctx.data.serverReason = await serverReason(ctx, sid);
    // the pending acks of a disconnected client fail at once on the client side too
    const p = await ctx.open("/", { label: "pending" });
    const t0 = Date.now();
    const pending = p.timeout(3000).emitWithAck("never-answer").then(
      () => null,
      (err) => ({ message: err.message, ms: Date.now() - t0 }),
    );
    p.emit("disconnect-me");
    ctx.data.pendingReason = await disconnected(p);
    ctx.data.pendingAck = await within(STEP_MS, "pending ack failure", pending);
  },

  async "close-transport"(ctx) {
    for (const transports of [["websocket"], ["polling"]]) {
      const key = transports[0];
      const m = ctx.manager({ transports });
      const s = ctx.socket("/", { manager: m, label: `${key}-main` });
      const custom = ctx.socket("/custom", { manager: m, label: `${key}-custom` });
      await Promise.all([ctx.connected(s), ctx.connected(custom)]);
      const sid = s.id;
      s.emit("close-transport");
      const [r1, r2] = await Promise.all([disconnected(s), disconnected(custom)]);
      ctx.data[key] = { reason: r1, customReason: r2, serverReason: await serverReason(ctx, sid) };
    }
  },

  async heartbeat(ctx) {
    // a healthy client survives several short heartbeats, over both transports
    const [ws, poll] = await Promise.all([
      ctx.open("/", { transports: ["websocket"], label: "ws" }),
      ctx.open("/", { transports: ["polling"], label: "polling" }),
    ]);
    const pings = { ws: 0, polling: 0 };
    ws.io.engine.on("ping", () => pings.ws++);
    poll.io.engine.on("ping", () => pings.polling++);
    await sleep(1600);
    ctx.data.pings = pings;
    ctx.data.connected = { ws: ws.connected, polling: poll.connected };
    ctx.data.acks = { ws: norm(await ack(ws, "echo", 1)), polling: norm(await ack(poll, "echo", 2)) };
    ctx.data.disconnects = { ws: [...ws.rec.disconnects], polling: [...poll.rec.disconnects] };
  },

  async "ping-timeout-client"(ctx) {
    // the client stops *seeing* pings (dropped before the engine does) but still answers them, so the server
    // stays content and only the client's own timer (pingInterval + pingTimeout after the handshake) fires
    const s = await ctx.open("/", { label: "deaf" });
    const engine = s.io.engine;
    const transport = engine.transport;
    const onPacket = transport.onPacket.bind(transport);
    let dropped = 0;
    transport.onPacket = (packet) => {
      if (packet.type !== "ping") return onPacket(packet);
      dropped++;
      engine._sendPacket("pong");
    };
    const t0 = Date.now();
    const sid = s.id;
    ctx.data.reason = await disconnected(s, 5000);
    ctx.data.ms = Date.now() - t0;
    ctx.data.handshake = s.rec.handshake ?? null;
    ctx.data.dropped = dropped;
    ctx.data.serverReason = await serverReason(ctx, sid);
  },

  async "ping-timeout-server"(ctx) {
    // the client receives pings but never answers (pongs dropped; its own ping timer made lenient so it cannot
    // fire first): the server gives up pingTimeout after its ping and closes the connection
    for (const transports of [["websocket"], ["polling"]]) {
      const key = transports[0];
      const s = await ctx.open("/", { transports, label: `mute-${key}` });
      const engine = s.io.engine;
      engine._pingTimeout = 10_000;
      engine._resetPingTimeout();
      const sendPacket = engine._sendPacket.bind(engine);
      let pings = 0;
      engine.on("ping", () => pings++);
      engine._sendPacket = (type, ...rest) => (type === "pong" ? undefined : sendPacket(type, ...rest));
      const t0 = Date.now();
      const sid = s.id;
      const reason = await disconnected(s, 5000);
      ctx.data[key] = { reason, ms: Date.now() - t0, pings, serverReason: await serverReason(ctx, sid) };
    }
  },

  async kill(ctx) {
    // SIGKILL the server process with a WebSocket and a polling client connected
    if (!SERVER_PID) throw new Error("kill needs --server-pid");
    const [ws, poll] = await Promise.all([
      ctx.open("/", { transports: ["websocket"], label: "ws" }),
      ctx.open("/", { transports: ["polling"], label: "polling" }),
    ]);
    process.kill(SERVER_PID, "SIGKILL");
    const [r1, r2] = await Promise.all([disconnected(ws), disconnected(poll)]);
    ctx.data.websocket = { reason: r1, active: ws.active };
    ctx.data.polling = { reason: r2, active: poll.active };
  },

  async shutdown(ctx) {
    // SIGTERM: the server shuts down gracefully; each client is told its transport is closed
    if (!SERVER_PID) throw new Error("shutdown needs --server-pid");
    const [ws, poll] = await Promise.all([
      ctx.open("/", { transports: ["websocket"], label: "ws" }),
      ctx.open("/", { transports: ["polling"], label: "polling" }),
    ]);
    // a round trip each, then time for the polling client's next GET to be waiting on the server
    await Promise.all([fence(ws), fence(poll)]);
    await sleep(200);
    const t0 = Date.now();
    process.kill(SERVER_PID, "SIGTERM");
    const [r1, r2] = await Promise.all([disconnected(ws), disconnected(poll)]);
    ctx.data.websocket = { reason: r1 };
    ctx.data.polling = { reason: r2 };
    ctx.data.ms = Date.now() - t0;
  },
};

// ---------------------------------------------------------------- runner

async function runOne(name) {
  const ctx = new Ctx(name);
  const started = Date.now();
  const out = { scenario: name, parser: PARSER_NAME, ok: false, error: null, failures: ctx.failures, data: ctx.data };
  const fn = scenarios[name];
  try {
    if (!fn) throw new Error(`unknown scenario ${JSON.stringify(name)}`);
    await within(SCENARIO_MS, `scenario ${name}`, fn(ctx));
  } catch (err) {
    out.error = String(err?.stack ?? err);
  } finally {
    ctx.cleanup();
  }
  out.ok = out.error === null && ctx.failures.length === 0;
  out.ms = Date.now() - started;
  return out;
}

// a stray rejection must not kill the run (Node's default): it is reported, the scenarios' own checks decide
process.on("unhandledRejection", (err) => process.stderr.write(`unhandled rejection: ${err?.stack ?? err}\n`));

async function main() {
  if (!URL_ || !SCENARIO_LIST) {
    process.stderr.write(
      `usage: sio_client_scenarios.mjs <url> <scenario,...> [--parser default|msgpack] [--timeout-ms N] ` +
        `[--server-pid PID]\nscenarios: ${Object.keys(scenarios).join(" ")}\n`,
    );
    process.exit(2);
  }
  const names = SCENARIO_LIST.split(",").filter(Boolean);
  const watchdog = setTimeout(() => {
    process.stdout.write(JSON.stringify({ scenario: "$watchdog", ok: false, error: "watchdog fired" }) + "\n");
    process.exit(3);
  }, SCENARIO_MS * names.length + 5000);
  let allOk = true;
  for (const name of names) {
    const out = await runOne(name);
    out.client = `socket.io-client@${CLIENT_VERSION}`;
    allOk &&= out.ok;
    process.stdout.write(JSON.stringify(out) + "\n");
    await sleep(50); // let the closes of this scenario reach the server before the next one starts
  }
  clearTimeout(watchdog);
  process.exit(allOk ? 0 : 1);
}

main();
