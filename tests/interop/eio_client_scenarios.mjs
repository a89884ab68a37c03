#!/usr/bin/env node
// Engine.IO interop scenarios driven by the official Node client (engine.io-client 6.6).
//
//   node eio_client_scenarios.mjs <server-url> <scenario> [--timeout-ms N] [--idle-ms N] [--large-bytes N]
//
// scenarios: polling websocket upgrade large heartbeat server-close oversize
//
// Prints exactly one JSON line on stdout:
//   {"scenario", "url", "client", "ok", "failures": [{"check", "expected", "seen"}], "cases": {...}, "ms"}
// and exits 0 when every check passed, 1 otherwise (2 on bad usage). The checks encode what the reference
// server (Node engine.io 6.6) does; the pytest side decides which named checks a lax peer may fail.
// Every wait has its own deadline and a watchdog bounds the whole run, so a scenario never hangs.

import { createRequire } from "node:module";
import { Socket } from "engine.io-client";

import { deadline, isBinary, parseArgs, toBuf, within } from "../_support/scenario.mjs";

const require = createRequire(import.meta.url);
const CLIENT_VERSION = require("engine.io-client/package.json").version;

const USAGE =
  "usage: eio_client_scenarios.mjs <url> <polling|websocket|upgrade|large|heartbeat|server-close|oversize>" +
  " [--timeout-ms N] [--idle-ms N] [--large-bytes N]";

const { positional, opts } = parseArgs(process.argv.slice(2), {
  "timeout-ms": "20000",
  "idle-ms": "1500",
  "large-bytes": String(1 << 20),
});
const [URL_, SCENARIO] = positional;
const TOTAL_TIMEOUT_MS = Number(opts["timeout-ms"]);
const IDLE_MS = Number(opts["idle-ms"]);
const LARGE_BYTES = Number(opts["large-bytes"]);
const STEP_MS = 5000; // default deadline for one wait (open, one echo)
const CLOSE_MS = 3000; // deadline for a close the server initiates (the reference takes a few ms)
const LARGE_MS = 8000; // deadline for one 1 MiB echo (the reference takes well under 100 ms)

const started = Date.now();
const result = { scenario: SCENARIO, url: URL_, client: `engine.io-client@${CLIENT_VERSION}`, ok: false, failures: [], cases: {} };
const sockets = new Set();
let finished = false;

function finish(code) {
  if (finished) return;
  finished = true;
  result.ms = Date.now() - started;
  result.ok = code === 0 && result.failures.length === 0;
  for (const s of sockets) {
    try {
      s.close();
    } catch {
      // already closed
    }
  }
  process.stdout.write(JSON.stringify(result) + "\n", () => process.exit(result.ok ? 0 : 1));
}

function fail(check, expected, seen) {
  result.failures.push({ check, expected, seen });
}

function check(name, cond, expected, seen) {
  if (!cond) fail(name, expected, seen);
  return cond;
}

// ---------------------------------------------------------------- payloads

function allBytes() {
  const u = new Uint8Array(256);
  for (let i = 0; i < 256; i++) u[i] = i;
  return u; // a plain Uint8Array, not a Buffer: exercises the client's ArrayBufferView path
}

function largeText(n) {
  // mixed ASCII and multi-byte characters (2, 3 and 4 UTF-8 bytes, one astral pair), n UTF-16 code units
  const unit = "The quick brown fox 0123456789 é ✓ 中 🚀 jumps over the lazy dog\n";
  return unit.repeat(Math.ceil(n / unit.length)).slice(0, n - 2) + "🚀";
}

function largeBinary(n) {
  const b = Buffer.alloc(n);
  let x = 0x12345678;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

// text messages whose echo must come back byte-identical, plus binary ones
const ECHO_SET = [
  ["ascii", "hello"],
  ["unicode", "héllo ✓ — ünïcödé 中文 🚀"],
  ["empty", ""],
  ["b-prefixed-text", "bAAECAw=="], // text that looks like a base64 polling binary
  ["digits", "42"],
  ["json-like", '{"a": 1, "b": [true, null], "c": "x"}'],
  ["binary-256", allBytes()],
  ["binary-1", Buffer.from([0])],
];

// ---------------------------------------------------------------- helpers

function describe(d) {
  if (isBinary(d)) {
    const b = toBuf(d);
    return { type: "binary", length: b.length, head: b.subarray(0, 16).toString("hex") };
  }
  if (typeof d === "string") {
    return { type: "text", length: d.length, head: d.length > 64 ? d.slice(0, 64) + "…" : d };
  }
  return { type: typeof d, value: String(d) };
}

// null when equal, else a short description of the first difference
function diff(sent, got) {
  // engine.io-parser decodes the bare packet "4" as a message whose data is undefined, so that is how an
  // empty text message comes back to this client (the reference server behaves the same)
  if (sent === "" && got === undefined) return null;
  if (typeof sent === "string") {
    if (typeof got !== "string") return { expected: "text", seen: describe(got) };
    if (sent === got) return null;
    let i = 0;
    while (i < sent.length && sent[i] === got[i]) i++;
    return {
      expected: { ...describe(sent), at: i, around: sent.slice(i, i + 16) },
      seen: { ...describe(got), at: i, around: got.slice(i, i + 16) },
    };
  }
  if (!isBinary(got)) return { expected: "binary", seen: describe(got) };
  const a = toBuf(sent);
  const b = toBuf(got);
  if (a.equals(b)) return null;
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return {
    expected: { type: "binary", length: a.length, firstDiffAt: i, bytes: a.subarray(i, i + 8).toString("hex") },
    seen: { type: "binary", length: b.length, firstDiffAt: i, bytes: b.subarray(i, i + 8).toString("hex") },
  };
}

// An engine.io-client Socket with everything it emits recorded.
class Peer {
  constructor(name, options) {
    this.name = name;
    this.events = [];
    this.inbox = [];
    this.waiters = [];
    this.pings = [];
    this.packets = {}; // engine.io packet types received, by name (wire detail for failure reports)
    this.handshake = null;
    this.closed = null; // {reason, description, atMs}
    this.errors = [];
    this.openedAt = null;
    this.socket = new Socket(URL_, options);
    sockets.add(this.socket);
    const s = this.socket;
    s.on("packet", (p) => {
      this.packets[p.type] = (this.packets[p.type] ?? 0) + 1;
    });
    s.on("handshake", (h) => {
      this.handshake = h;
    });
    s.on("open", () => {
      this.openedAt = Date.now();
      this.log("open", s.transport.name);
    });
    s.on("message", (d) => {
      this.inbox.push({ data: d, transport: s.transport.name });
      this.wake();
    });
    s.on("ping", () => {
      this.pings.push(Date.now() - (this.openedAt ?? started));
    });
    s.on("upgrading", (t) => this.log("upgrading", t.name));
    s.on("upgrade", (t) => this.log("upgrade", t.name));
    s.on("upgradeError", (e) => this.log("upgradeError", String(e && e.message)));
    s.on("error", (e) => {
      const err = { message: String(e && e.message), description: errDescription(e) };
      this.errors.push(err);
      this.log("error", err);
    });
    s.on("close", (reason, description) => {
      this.closed = { reason, description: closeDescription(description), atMs: this.sinceOpen() };
      this.log("close", reason);
      this.wake();
    });
  }

  sinceOpen() {
    return Date.now() - (this.openedAt ?? started);
  }

  log(event, detail) {
    this.events.push(detail === undefined ? [event, this.sinceOpen()] : [event, this.sinceOpen(), detail]);
    this.wake();
  }

  wake() {
    for (const w of this.waiters.splice(0)) w();
  }

  async until(pred, ms, what) {
    const d = deadline(ms, `${this.name}: ${what}`);
    try {
      while (!pred()) {
        await Promise.race([new Promise((r) => this.waiters.push(r)), d.promise]);
      }
    } finally {
      d.cancel();
    }
  }

  async open(ms = STEP_MS) {
    await within(
      ms,
      `${this.name}: open`,
      new Promise((resolve, reject) => {
        if (this.openedAt !== null) return resolve();
        this.socket.once("open", resolve);
        this.socket.once("close", (reason, desc) =>
          reject(new Error(`closed before open: ${reason} ${JSON.stringify(closeDescription(desc))}`)),
        );
      }),
    );
  }

  async next(ms = STEP_MS, what = "a message") {
    await this.until(() => this.inbox.length > 0 || this.closed, ms, what);
    if (this.inbox.length === 0) {
      throw new Error(`${this.name}: closed (${this.closed.reason}) while waiting for ${what}`);
    }
    return this.inbox.shift();
  }

  async closeSeen(ms = STEP_MS) {
    await this.until(() => this.closed !== null, ms, "close");
    return this.closed;
  }

  summary() {
    return {
      transport: this.socket.transport ? this.socket.transport.name : null,
      readyState: this.socket.readyState,
      handshake: this.handshake,
      pings: this.pings.length,
      packets: this.packets,
      events: this.events.slice(0, 40),
      errors: this.errors,
      closed: this.closed,
    };
  }
}

function errDescription(e) {
  if (!e) return null;
  const d = e.description;
  if (d === undefined || d === null) return null;
  if (typeof d === "number" || typeof d === "string") return d;
  return String(d.message ?? d);
}

function closeDescription(desc) {
  if (desc === undefined || desc === null) return null;
  if (desc instanceof Error) {
    return { error: desc.message, description: errDescription(desc) };
  }
  const out = {};
  if (desc.description !== undefined) out.description = String(desc.description?.message ?? desc.description);
  const ctx = desc.context;
  if (ctx && typeof ctx === "object") {
    if (ctx.code !== undefined) out.code = ctx.code;
    if (ctx.reason !== undefined && ctx.reason !== "") out.wsReason = String(ctx.reason);
    if (ctx.wasClean !== undefined) out.wasClean = ctx.wasClean;
  }
  return out;
}

function checkHandshake(prefix, peer, { upgrades }) {
  const h = peer.handshake;
  if (!check(`${prefix}.handshake`, h !== null, "a handshake", null)) return;
  const keys = Object.keys(h).sort();
  check(
    `${prefix}.handshake.keys`,
    JSON.stringify(keys) === JSON.stringify(["maxPayload", "pingInterval", "pingTimeout", "sid", "upgrades"]),
    ["maxPayload", "pingInterval", "pingTimeout", "sid", "upgrades"],
    keys,
  );
  check(`${prefix}.handshake.sid`, typeof h.sid === "string" && h.sid.length > 0, "a non-empty string", h.sid);
  for (const k of ["pingInterval", "pingTimeout", "maxPayload"]) {
    check(`${prefix}.handshake.${k}`, Number.isInteger(h[k]) && h[k] > 0, "a positive integer", h[k]);
  }
  if (upgrades !== undefined) {
    check(`${prefix}.handshake.upgrades`, JSON.stringify(h.upgrades) === JSON.stringify(upgrades), upgrades, h.upgrades);
  }
}

// Sends each message and waits for its echo (one at a time), then the whole set again as one burst
// (so polling has to carry several packets per request and response).
async function echoSet(prefix, peer, set = ECHO_SET) {
  const out = {};
  for (const [name, payload] of set) {
    peer.socket.send(payload);
    let got;
    try {
      got = await peer.next(STEP_MS, `echo of ${name}`);
    } catch (e) {
      fail(`${prefix}.echo.${name}`, "an echo", String(e.message));
      out[name] = { ok: false, error: String(e.message) };
      return out;
    }
    const d = diff(payload, got.data);
    out[name] = { ok: d === null, via: got.transport, ...(d ? d : {}) };
    if (d) fail(`${prefix}.echo.${name}`, d.expected, d.seen);
  }
  for (const [, payload] of set) peer.socket.send(payload);
  const burst = [];
  for (const [name, payload] of set) {
    let got;
    try {
      got = await peer.next(STEP_MS, `burst echo of ${name}`);
    } catch (e) {
      fail(`${prefix}.burst.${name}`, "an echo", String(e.message));
      burst.push(name);
      break;
    }
    const d = diff(payload, got.data);
    if (d) {
      fail(`${prefix}.burst.${name}`, d.expected, d.seen);
      burst.push(name);
    }
  }
  out.burstMismatches = burst;
  return out;
}

// Runs one named case; an exception becomes a failure named after the case, never a crash.
async function runCase(name, fn) {
  const rec = {};
  result.cases[name] = rec;
  try {
    await fn(rec);
  } catch (e) {
    fail(`${name}.error`, "no error", String(e && e.message));
    rec.error = String(e && e.message);
  }
  return rec;
}

// ---------------------------------------------------------------- scenarios

async function simple(name, options, upgrades, transport) {
  await runCase(name, async (rec) => {
    const peer = new Peer(name, options);
    try {
      await peer.open();
      rec.transportAtOpen = peer.socket.transport.name;
      rec.echo = await echoSet(name, peer);
      checkHandshake(name, peer, { upgrades });
      check(`${name}.transport`, peer.socket.transport.name === transport, transport, peer.socket.transport.name);
      check(`${name}.open`, peer.socket.readyState === "open" && !peer.closed, "open", peer.closed ?? peer.socket.readyState);
      check(`${name}.errors`, peer.errors.length === 0, [], peer.errors);
    } finally {
      Object.assign(rec, peer.summary());
      peer.socket.close();
    }
  });
}

const SCENARIOS = {
  async polling() {
    await simple("polling", { transports: ["polling"], upgrade: false }, ["websocket"], "polling");
  },

  async websocket() {
    await simple("websocket", { transports: ["websocket"] }, [], "websocket");
  },

  async upgrade() {
    await runCase("upgrade", async (rec) => {
      const peer = new Peer("upgrade", {}); // default: transports ["polling", "websocket"], upgrade true
      const before = [
        ["before-text", "before ✓"],
        ["before-binary", allBytes()],
      ];
      const during = [
        ["during-text", "during the upgrade"],
        ["during-binary", Buffer.from([1, 2, 3, 254, 255])],
      ];
      // send before the upgrade starts (the open handler runs before the probe is sent) ...
      peer.socket.on("open", () => {
        for (const [, p] of before) peer.socket.send(p);
      });
      // ... and while it is in progress (buffered by the client, flushed over the WebSocket)
      peer.socket.on("upgrading", () => {
        for (const [, p] of during) peer.socket.send(p);
      });
      try {
        await peer.open();
        rec.transportAtOpen = peer.socket.transport.name;
        check("upgrade.transportAtOpen", rec.transportAtOpen === "polling", "polling", rec.transportAtOpen);
        checkHandshake("upgrade", peer, { upgrades: ["websocket"] });
        const early = [];
        for (const [name, payload] of [...before, ...during]) {
          const got = await peer.next(STEP_MS, `echo of ${name}`);
          const d = diff(payload, got.data);
          early.push({ name, ok: d === null, via: got.transport });
          if (d) fail(`upgrade.echo.${name}`, d.expected, d.seen);
        }
        rec.early = early;
        await peer.until(
          () => peer.events.some((e) => e[0] === "upgrade" || e[0] === "upgradeError") || peer.closed,
          STEP_MS,
          "the upgrade event",
        );
        const up = peer.events.find((e) => e[0] === "upgrade");
        rec.upgradeEvent = up ? up[2] : null;
        check("upgrade.event", rec.upgradeEvent === "websocket", "upgrade event with the websocket transport", rec.upgradeEvent);
        check(
          "upgrade.upgradeError",
          !peer.events.some((e) => e[0] === "upgradeError"),
          "no upgradeError",
          peer.events.filter((e) => e[0] === "upgradeError"),
        );
        rec.echo = await echoSet("upgrade.after", peer);
        rec.finalTransport = peer.socket.transport.name;
        check("upgrade.finalTransport", rec.finalTransport === "websocket", "websocket", rec.finalTransport);
        const late = Object.entries(rec.echo).filter(([k, v]) => k !== "burstMismatches" && v.via !== "websocket");
        check("upgrade.after.via", late.length === 0, "every echo after the upgrade over websocket", late.map(([k]) => k));
        check("upgrade.open", peer.socket.readyState === "open" && !peer.closed, "open", peer.closed ?? peer.socket.readyState);
        check("upgrade.errors", peer.errors.length === 0, [], peer.errors);
      } finally {
        Object.assign(rec, peer.summary());
        peer.socket.close();
      }
    });
  },

  async large() {
    const text = largeText(LARGE_BYTES);
    const bin = largeBinary(LARGE_BYTES);
    const one = (name, options) =>
      runCase(name, async (rec) => {
        const peer = new Peer(name, options);
        try {
          await peer.open();
          rec.maxPayload = peer.handshake && peer.handshake.maxPayload;
          for (const [kind, payload] of [
            ["text", text],
            ["binary", bin],
          ]) {
            const t0 = Date.now();
            peer.socket.send(payload);
            const got = await peer.next(LARGE_MS, `echo of the large ${kind}`);
            const d = diff(payload, got.data);
            rec[kind] = {
              ok: d === null,
              ms: Date.now() - t0,
              sent: typeof payload === "string" ? Buffer.byteLength(payload) : payload.length,
              ...(d ? d : {}),
            };
            if (d) fail(`${name}.${kind}`, d.expected, d.seen);
          }
          check(`${name}.transport`, peer.socket.transport.name === options.transports[0], options.transports[0], peer.socket.transport.name);
          check(`${name}.open`, peer.socket.readyState === "open" && !peer.closed, "open", peer.closed ?? peer.socket.readyState);
        } finally {
          Object.assign(rec, peer.summary());
          peer.socket.close();
        }
      });
    await Promise.all([
      one("polling", { transports: ["polling"], upgrade: false }),
      one("websocket", { transports: ["websocket"] }),
    ]);
  },

  async heartbeat() {
    // An idle client answering pings stays open; one that never answers is closed by the server.
    const idle = (name, options) =>
      runCase(name, async (rec) => {
        const peer = new Peer(name, options);
        try {
          await peer.open();
          await new Promise((r) => setTimeout(r, IDLE_MS));
          rec.idleMs = IDLE_MS;
          rec.pingTimes = peer.pings.slice();
          rec.stillOpen = peer.socket.readyState === "open" && !peer.closed;
          check(`${name}.open`, rec.stillOpen, "open after idling", peer.closed ?? peer.socket.readyState);
          if (rec.stillOpen) {
            peer.socket.send("after idle");
            const got = await peer.next(STEP_MS, "echo after idling");
            rec.echoAfterIdle = got.data === "after idle";
            check(`${name}.echoAfterIdle`, rec.echoAfterIdle, "after idle", describe(got.data));
          }
          const gaps = rec.pingTimes.slice(1).map((t, i) => t - rec.pingTimes[i]);
          rec.pingGaps = gaps;
        } finally {
          Object.assign(rec, peer.summary());
          peer.socket.close();
        }
      });
    const silent = (name, options) =>
      runCase(name, async (rec) => {
        const peer = new Peer(name, options);
        const s = peer.socket;
        if (typeof s._sendPacket !== "function" || typeof s._resetPingTimeout !== "function") {
          throw new Error("engine.io-client internals changed: no _sendPacket/_resetPingTimeout to patch");
        }
        // drop every pong, and switch off the client's own ping-timeout timer so that only the server can
        // end this session
        const send = s._sendPacket.bind(s);
        s._sendPacket = (type, ...rest) => (type === "pong" ? undefined : send(type, ...rest));
        s.once("open", () => {
          s.clearTimeoutFn(s._pingTimeoutTimer);
          s._resetPingTimeout = () => {};
        });
        try {
          await peer.open();
          const h = peer.handshake;
          const budget = (h.pingInterval + h.pingTimeout) * 4 + 2000;
          await peer.closeSeen(budget);
          rec.pingTimes = peer.pings.slice();
          const lastPing = rec.pingTimes.length ? rec.pingTimes[rec.pingTimes.length - 1] : null;
          rec.closeAfterLastPingMs = lastPing === null ? null : peer.closed.atMs - lastPing;
          check(`${name}.reason`, peer.closed.reason === "transport close", "transport close", peer.closed.reason);
          check(`${name}.pingsBeforeClose`, rec.pingTimes.length === 1, 1, rec.pingTimes.length);
        } finally {
          Object.assign(rec, peer.summary());
        }
      });
    await Promise.all([
      idle("polling", { transports: ["polling"], upgrade: false }),
      idle("websocket", { transports: ["websocket"] }),
      silent("polling-no-pong", { transports: ["polling"], upgrade: false }),
      silent("websocket-no-pong", { transports: ["websocket"] }),
    ]);
  },

  async "server-close"() {
    const one = (name, options, waitUpgrade) =>
      runCase(name, async (rec) => {
        const peer = new Peer(name, options);
        try {
          await peer.open();
          if (waitUpgrade) {
            await peer.until(() => peer.events.some((e) => e[0] === "upgrade") || peer.closed, STEP_MS, "upgrade");
          }
          peer.socket.send("ping-before-close");
          const got = await peer.next(STEP_MS, "an echo before close-me");
          check(`${name}.echoBeforeClose`, got.data === "ping-before-close", "ping-before-close", describe(got.data));
          rec.transportAtClose = peer.socket.transport.name;
          const t0 = Date.now();
          peer.socket.send("close-me");
          const closed = await peer.closeSeen(CLOSE_MS);
          rec.closeMs = Date.now() - t0;
          rec.reason = closed.reason;
          rec.description = closed.description;
          check(`${name}.reason`, closed.reason === "transport close", "transport close", closed.reason);
          check(`${name}.errors`, peer.errors.length === 0, [], peer.errors);
          if (peer.inbox.length) rec.unexpectedMessages = peer.inbox.map((m) => describe(m.data));
          check(`${name}.noEchoOfCloseMe`, peer.inbox.length === 0, [], rec.unexpectedMessages ?? []);
        } finally {
          Object.assign(rec, peer.summary());
        }
      });
    await Promise.all([
      one("polling", { transports: ["polling"], upgrade: false }, false),
      one("websocket", { transports: ["websocket"] }, false),
      one("upgraded", {}, true),
    ]);
  },

  async oversize() {
    // The server was started with a small maxHttpBufferSize; sizes derive from the handshake's maxPayload.
    // Polling: a POST body is the packet type plus the text ("4" + text), so text of maxPayload - 1 characters
    // is exactly at the limit, and maxPayload characters is one byte over. WebSocket: the frame payload is
    // "4" + text for text and the raw bytes for binary.
    const one = (name, options, makePayload, expectEnd) =>
      runCase(name, async (rec) => {
        const peer = new Peer(name, options);
        try {
          await peer.open();
          const max = peer.handshake.maxPayload;
          rec.maxPayload = max;
          const payload = makePayload(max);
          rec.sent = describe(payload);
          rec.sent.bytes = typeof payload === "string" ? Buffer.byteLength(payload) : payload.length;
          const t0 = Date.now();
          peer.socket.send(payload);
          if (expectEnd) {
            await peer.until(() => peer.closed || peer.inbox.length > 0, CLOSE_MS, "the connection to end");
            rec.endMs = Date.now() - t0;
            if (peer.inbox.length) {
              rec.echoed = describe(peer.inbox[0].data);
              fail(`${name}.refused`, "no echo of an oversize message", rec.echoed);
              await peer.closeSeen(CLOSE_MS).catch(() => {});
            }
            check(`${name}.ended`, peer.closed !== null, "close", peer.socket.readyState);
            if (peer.closed) {
              rec.reason = peer.closed.reason;
              rec.description = peer.closed.description;
            }
          } else {
            const got = await peer.next(STEP_MS, "echo of a message under the limit");
            const d = diff(payload, got.data);
            rec.echoOk = d === null;
            if (d) fail(`${name}.echo`, d.expected, d.seen);
            check(`${name}.open`, peer.socket.readyState === "open" && !peer.closed, "open", peer.closed ?? peer.socket.readyState);
          }
        } finally {
          Object.assign(rec, peer.summary());
          peer.socket.close();
        }
      });
    const P = { transports: ["polling"], upgrade: false };
    const W = { transports: ["websocket"] };
    await Promise.all([
      one("polling-at-limit", P, (max) => "x".repeat(max - 1), false),
      one("polling-over", P, (max) => "x".repeat(max), true),
      one("polling-over-binary", P, (max) => Buffer.alloc(max, 7), true),
      one("websocket-at-limit", W, (max) => "x".repeat(max - 1), false),
      one("websocket-over", W, (max) => "x".repeat(max), true),
      one("websocket-over-binary", W, (max) => Buffer.alloc(max + 1, 7), true),
    ]);
    // What the client reports when the server refuses: over polling the POST fails (an "error" event with
    // the HTTP status, then close "transport error"); over WebSocket the socket is closed (close code).
    for (const name of ["polling-over", "polling-over-binary"]) {
      const rec = result.cases[name];
      if (!rec || !rec.closed) continue;
      check(`${name}.reason`, rec.closed.reason === "transport error", "transport error", rec.closed.reason);
      const status = rec.errors.length ? rec.errors[0].description : null;
      rec.httpStatus = status;
      check(`${name}.status`, status === 413, 413, status);
    }
    for (const name of ["websocket-over", "websocket-over-binary"]) {
      const rec = result.cases[name];
      if (!rec || !rec.closed) continue;
      check(`${name}.reason`, rec.closed.reason === "transport close", "transport close", rec.closed.reason);
      const code = rec.closed.description ? rec.closed.description.code : null;
      rec.wsCloseCode = code;
      check(`${name}.wsCloseCode`, code === 1009, 1009, code);
    }
  },
};

// ---------------------------------------------------------------- main

if (!URL_ || !SCENARIO || !Object.hasOwn(SCENARIOS, SCENARIO)) {
  process.stderr.write(USAGE + "\n");
  process.exit(2);
}

const watchdog = setTimeout(() => {
  fail("watchdog", `finished within ${TOTAL_TIMEOUT_MS} ms`, "still running");
  finish(1);
}, TOTAL_TIMEOUT_MS);

process.on("uncaughtException", (e) => {
  fail("uncaughtException", "none", String(e && e.stack));
  finish(1);
});

SCENARIOS[SCENARIO]()
  .then(() => {
    clearTimeout(watchdog);
    finish(0);
  })
  .catch((e) => {
    fail("scenario", "no exception", String(e && e.stack));
    finish(1);
  });
