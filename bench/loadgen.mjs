// The load generator: raw `ws` (no socket.io-client) and a hand-written HTTP/1.1 keep-alive client,
// speaking Engine.IO v4 / Socket.IO v5 by hand so that the generator costs as little as possible:
//   handshake  GET /socket.io/?EIO=4&transport=websocket  -> "0{...}"   we send "40" -> "40{sid}"
//   heartbeat  "2" -> "3"
//   events     42["ev",...]   with an ack id 42N["ev",...] -> 43N[...]
//   polling    GET/POST /socket.io/?EIO=4&transport=polling[&sid=...], packets joined by \x1e
//
// One scenario per run (`--scenario A|B|C|D|E|F`). It talks to the driver (bench/run.py) in JSON
// lines on stdout: {"event":"mark","name":"start"|"end"} (the driver samples the server's CPU time),
// {"event":"rss","label":..} (the driver reads the server's RSS, then writes a line on stdin), and
// finally {"event":"result",...} with the generator's own CPU time over the measured window.
import { performance } from "node:perf_hooks";
import net from "node:net";
import readline from "node:readline";
import WebSocket from "ws";

// ------------------------------------------------------------------------------------------ args
const opts = {
  scenario: "B",
  host: "127.0.0.1",
  port: 0,
  port2: 0,
  clients: 100,
  inflight: 100,
  duration: 10, // s, measured window of B and E
  warmup: 1, // s, before the window of B and E
  broadcasts: 200, // C, F
  counts: "1000,5000", // D
  settle: 1, // s, D: wait after connecting, before reading the RSS
  timeout: 120, // s, hard limit for the whole scenario
};
for (let i = 2; i < process.argv.length; i += 2) {
  const key = process.argv[i].replace(/^--/, "");
  if (!(key in opts)) fail(`unknown option --${key}`);
  const value = process.argv[i + 1];
  opts[key] = typeof opts[key] === "number" ? Number(value) : value;
}

const ECHO_PAYLOAD = '{"text":"hello world","n":12345,"ok":true}';
const BCAST_TEXT = "hello everyone, this is a broadcast";
const WS_OPTIONS = { perMessageDeflate: false, skipUTF8Validation: true, maxPayload: 16 * 1024 * 1024 };

let stopping = false;

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

function fail(message) {
  if (stopping) return;
  stopping = true;
  process.stdout.write(JSON.stringify({ event: "error", scenario: opts.scenario, message: String(message) }) + "\n",
    () => process.exit(1));
}

function finish(result) {
  stopping = true;
  process.stdout.write(JSON.stringify({ event: "result", scenario: opts.scenario, ...result }) + "\n",
    () => process.exit(0));
}

setTimeout(() => fail(`scenario ${opts.scenario} did not finish within ${opts.timeout}s`), opts.timeout * 1000).unref();

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// The measured window: wall and the generator's own CPU time.
class Window {
  start() {
    emit({ event: "mark", name: "start" });
    this.cpu0 = process.cpuUsage();
    this.t0 = performance.now();
  }

  stop() {
    this.wall = (performance.now() - this.t0) / 1000;
    const cpu = process.cpuUsage(this.cpu0);
    this.cpu = (cpu.user + cpu.system) / 1e6;
    emit({ event: "mark", name: "end" });
    return { wall_s: this.wall, loadgen_cpu_s: this.cpu, loadgen_cpu_frac: this.cpu / this.wall };
  }
}

// Latencies in 5 microsecond buckets up to 2 s, the rest kept as they are.
class Histogram {
  constructor() {
    this.step = 0.005; // ms
    this.buckets = new Uint32Array(400000);
    this.over = [];
    this.count = 0;
  }

  add(ms) {
    const i = Math.floor(ms / this.step);
    if (i < this.buckets.length) this.buckets[i]++;
    else this.over.push(ms);
    this.count++;
  }

  percentile(p) {
    if (!this.count) return null;
    const rank = Math.ceil((p / 100) * this.count);
    let seen = 0;
    for (let i = 0; i < this.buckets.length; i++) {
      seen += this.buckets[i];
      if (seen >= rank) return (i + 0.5) * this.step;
    }
    this.over.sort((a, b) => a - b);
    return this.over[rank - seen - 1];
  }
}

// --------------------------------------------------------------------------------- WebSocket client
class WsClient {
  constructor(port, onReady) {
    this.onReady = onReady;
    this.onEvent = null;
    this.onAck = null;
    this.ready = false;
    this.ws = new WebSocket(`ws://${opts.host}:${port}/socket.io/?EIO=4&transport=websocket`, WS_OPTIONS);
    this.ws.on("message", (data) => this.message(data));
    this.ws.on("error", (err) => fail(`websocket error: ${err.message}`));
    this.ws.on("close", (code) => {
      if (!stopping) fail(`the server closed a websocket (code ${code})`);
    });
  }

  message(data) {
    const c0 = data[0];
    if (c0 === 0x34) {
      // "4": a Socket.IO packet
      const c1 = data[1];
      if (c1 === 0x32) {
        if (this.onEvent !== null) this.onEvent(data);
      } else if (c1 === 0x33) {
        if (this.onAck !== null) this.onAck(data);
      } else if (c1 === 0x30) {
        this.ready = true;
        this.onReady(this);
      } else {
        fail(`unexpected packet ${data.toString()}`);
      }
    } else if (c0 === 0x32) {
      this.ws.send("3"); // ping -> pong
    } else if (c0 === 0x30) {
      this.ws.send("40"); // OPEN -> CONNECT to "/"
    } else if (c0 === 0x31) {
      fail("the server closed an Engine.IO session");
    }
  }

  send(text) {
    this.ws.send(text);
  }
}

// Connect `count` clients, at most `inflight` handshakes at a time; resolves with them all.
function connectMany(count, port, inflight = opts.inflight, ports = null) {
  return new Promise((resolve) => {
    const clients = [];
    let started = 0;
    let done = 0;
    if (count === 0) resolve(clients);
    const onReady = () => {
      done++;
      if (started < count) startOne();
      if (done === count) resolve(clients);
    };
    const startOne = () => {
      const p = ports === null ? port : ports[started % ports.length];
      started++;
      const client = new WsClient(p, onReady);
      client.port = p;
      clients.push(client);
    };
    for (let i = 0; i < Math.min(inflight, count); i++) startOne();
  });
}

// Ask the server to collect garbage (an acked "gc" event) and wait for it.
function collect(client) {
  return new Promise((resolve) => {
    client.onAck = () => {
      client.onAck = null;
      resolve();
    };
    client.send('429999["gc"]');
  });
}

// Ask the driver to read the server's RSS now; it answers with a line on stdin.
const stdinLines = readline.createInterface({ input: process.stdin });
const stdinWaiters = [];
let stdinCredit = 0; // lines that came before anyone waited for them
stdinLines.on("line", () => {
  const waiter = stdinWaiters.shift();
  if (waiter) waiter();
  else stdinCredit++;
});
function askRss(label) {
  return new Promise((resolve) => {
    emit({ event: "rss", label });
    if (stdinCredit > 0) {
      stdinCredit--;
      resolve();
    } else {
      stdinWaiters.push(resolve);
    }
  });
}

// ---------------------------------------------------------------------------------------- scenarios

// A: connections per second, `clients` Socket.IO connections with `inflight` handshakes in flight.
async function scenarioA() {
  const w = new Window();
  w.start();
  const t0 = performance.now();
  const clients = await connectMany(opts.clients, opts.port);
  const elapsed = (performance.now() - t0) / 1000;
  const win = w.stop();
  finish({ connections: clients.length, conns_per_s: clients.length / elapsed, ...win });
}

// B: `clients` clients, each in a closed loop of echo-with-ack.
async function scenarioB() {
  const clients = await connectMany(opts.clients, opts.port);
  const hist = new Histogram();
  let measuring = false;
  let running = true;
  let acks = 0;
  const send = (c) => {
    c.id++;
    c.sentAt = performance.now();
    c.send(`42${c.id}["echo",${ECHO_PAYLOAD}]`);
  };
  for (const c of clients) {
    c.id = 0;
    c.checked = false;
    c.onAck = (data) => {
      const now = performance.now();
      if (!c.checked) {
        c.checked = true;
        const expected = `43${c.id}[${ECHO_PAYLOAD}]`;
        if (data.toString() !== expected) fail(`echo ack ${data.toString()} instead of ${expected}`);
      }
      if (measuring) {
        acks++;
        hist.add(now - c.sentAt);
      }
      if (running) send(c);
    };
    send(c);
  }
  await sleep(opts.warmup * 1000);
  const w = new Window();
  measuring = true;
  w.start();
  await sleep(opts.duration * 1000);
  measuring = false;
  running = false;
  const win = w.stop();
  finish({
    clients: clients.length,
    acks,
    acks_per_s: acks / win.wall_s,
    p50_ms: hist.percentile(50),
    p99_ms: hist.percentile(99),
    ...win,
  });
}

// C (and F with two ports): one client sends `broadcasts` bcast events, everyone receives each.
async function scenarioC() {
  const ports = opts.port2 ? [opts.port, opts.port2] : [opts.port];
  const clients = await connectMany(opts.clients, opts.port, opts.inflight, ports);
  await sleep(300);
  const sender = clients[0];
  const expected = clients.length * opts.broadcasts;
  const crossExpected = clients.filter((c) => c.port !== sender.port).length * opts.broadcasts;
  const first = `42["bcast",{"seq":0,"text":"${BCAST_TEXT}"}]`;
  let total = 0;
  let cross = 0;
  let lastCross = 0;
  const w = new Window();
  let t0 = 0;
  let firstDelivery = 0;
  const done = new Promise((resolve) => {
    for (const c of clients) {
      const isCross = c.port !== sender.port;
      c.onEvent = (data) => {
        if (total === 0) {
          firstDelivery = performance.now();
          if (data.toString() !== first) fail(`broadcast ${data.toString()} instead of ${first}`);
        }
        total++;
        if (isCross) {
          cross++;
          if (cross === crossExpected) lastCross = performance.now();
        }
        if (total === expected) resolve();
      };
    }
  });
  w.start();
  t0 = performance.now();
  for (let i = 0; i < opts.broadcasts; i++) sender.send(`42["bcast",{"seq":${i},"text":"${BCAST_TEXT}"}]`);
  await done;
  const drain = (performance.now() - t0) / 1000;
  const win = w.stop();
  const result = {
    clients: clients.length,
    deliveries: total,
    drain_s: drain,
    deliveries_per_s: total / drain,
    first_delivery_ms: firstDelivery - t0,
    ...win,
  };
  if (opts.port2) {
    result.cross_deliveries = cross;
    result.cross_deliveries_per_s = crossExpected ? cross / ((lastCross - t0) / 1000) : null;
  }
  finish(result);
}

// D: resident memory per idle connection at each of `counts` connections (cumulative).
async function scenarioD() {
  const warm = await connectMany(10, opts.port);
  await collect(warm[0]);
  await sleep(opts.settle * 1000);
  await askRss("before");
  let connected = 0;
  const result = {};
  for (const count of opts.counts.split(",").map(Number)) {
    await connectMany(count - connected, opts.port);
    connected = count;
    await collect(warm[0]);
    await sleep(opts.settle * 1000);
    await askRss(String(count));
    result[`connected_${count}`] = count;
  }
  finish(result);
}

// ------------------------------------------------------------------------------- polling (scenario E)

// One keep-alive HTTP/1.1 connection, one request at a time.
class HttpConn {
  constructor(port) {
    this.port = port;
    this.sock = net.connect({ port, host: opts.host });
    this.sock.setNoDelay(true);
    this.buf = null;
    this.cb = null;
    this.sock.on("data", (chunk) => this.data(chunk));
    this.sock.on("error", (err) => fail(`http error: ${err.message}`));
    this.sock.on("close", () => {
      if (!stopping) fail("the server closed a polling connection");
    });
  }

  request(method, path, body, cb) {
    this.cb = cb;
    this.buf = null;
    let head = `${method} ${path} HTTP/1.1\r\nHost: ${opts.host}:${this.port}\r\n`;
    if (body === null) {
      head += "\r\n";
    } else {
      head += `Content-Type: text/plain;charset=UTF-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
    }
    this.sock.write(head);
  }

  data(chunk) {
    const buf = this.buf === null ? chunk : Buffer.concat([this.buf, chunk]);
    this.buf = buf;
    const end = buf.indexOf("\r\n\r\n");
    if (end < 0) return;
    const head = buf.toString("latin1", 0, end);
    const status = Number(head.slice(9, 12));
    let body;
    const length = /\r\ncontent-length: *(\d+)/i.exec(head);
    if (length) {
      const n = Number(length[1]);
      if (buf.length < end + 4 + n) return;
      body = buf.toString("utf8", end + 4, end + 4 + n);
    } else if (/\r\ntransfer-encoding: *chunked/i.test(head)) {
      const parts = [];
      let pos = end + 4;
      for (;;) {
        const eol = buf.indexOf("\r\n", pos);
        if (eol < 0) return;
        const size = parseInt(buf.toString("latin1", pos, eol), 16);
        if (size === 0) {
          if (buf.length < eol + 4) return;
          break;
        }
        if (buf.length < eol + 2 + size + 2) return;
        parts.push(buf.subarray(eol + 2, eol + 2 + size));
        pos = eol + 2 + size + 2;
      }
      body = Buffer.concat(parts).toString("utf8");
    } else {
      fail(`polling response without a length: ${head}`);
      return;
    }
    this.buf = null;
    const cb = this.cb;
    this.cb = null;
    cb(status, body);
  }
}

// A polling-only Socket.IO client: one GET always parked, POSTs one at a time (queued behind).
class PollClient {
  constructor(port, onReady) {
    this.port = port;
    this.onReady = onReady;
    this.onAck = null;
    this.get = new HttpConn(port);
    this.post = new HttpConn(port);
    this.posting = false;
    this.pending = [];
    this.path = "/socket.io/?EIO=4&transport=polling";
    this.get.request("GET", this.path, null, (status, body) => {
      if (status !== 200 || body[0] !== "0") return fail(`polling handshake: ${status} ${body}`);
      this.path += `&sid=${JSON.parse(body.slice(1)).sid}`;
      this.send("40");
      this.poll();
    });
  }

  poll() {
    this.get.request("GET", this.path, null, (status, body) => {
      if (status !== 200) return fail(`polling GET: ${status} ${body}`);
      for (const packet of body.split("\x1e")) this.packet(packet);
      if (!stopping) this.poll();
    });
  }

  packet(p) {
    const c0 = p.charCodeAt(0);
    if (c0 === 0x34) {
      const c1 = p.charCodeAt(1);
      if (c1 === 0x33) {
        if (this.onAck !== null) this.onAck(p);
      } else if (c1 === 0x30) {
        this.onReady(this);
      } else if (c1 !== 0x32) {
        fail(`unexpected packet ${p}`);
      }
    } else if (c0 === 0x32) {
      this.send("3");
    } else if (c0 === 0x31) {
      fail("the server closed a polling session");
    }
  }

  send(packet) {
    if (this.posting) {
      this.pending.push(packet);
      return;
    }
    this.posting = true;
    this.post.request("POST", this.path, packet, (status, body) => {
      if (status !== 200) return fail(`polling POST: ${status} ${body}`);
      this.posting = false;
      if (this.pending.length) {
        const next = this.pending.join("\x1e");
        this.pending = [];
        this.send(next);
      }
    });
  }
}

// E: `clients` polling-only clients, each in a closed loop of echo-with-ack.
async function scenarioE() {
  const clients = await new Promise((resolve) => {
    const all = [];
    let started = 0;
    let ready = 0;
    const onReady = () => {
      ready++;
      if (started < opts.clients) startOne();
      if (ready === opts.clients) resolve(all);
    };
    const startOne = () => {
      started++;
      all.push(new PollClient(opts.port, onReady));
    };
    for (let i = 0; i < Math.min(50, opts.clients); i++) startOne();
  });
  const hist = new Histogram();
  let measuring = false;
  let running = true;
  let acks = 0;
  const send = (c) => {
    c.id++;
    c.sentAt = performance.now();
    c.send(`42${c.id}["echo",${ECHO_PAYLOAD}]`);
  };
  for (const c of clients) {
    c.id = 0;
    c.checked = false;
    c.onAck = (p) => {
      const now = performance.now();
      if (!c.checked) {
        c.checked = true;
        const expected = `43${c.id}[${ECHO_PAYLOAD}]`;
        if (p !== expected) fail(`polling echo ack ${p} instead of ${expected}`);
      }
      if (measuring) {
        acks++;
        hist.add(now - c.sentAt);
      }
      if (running) send(c);
    };
    send(c);
  }
  await sleep(opts.warmup * 1000);
  const w = new Window();
  measuring = true;
  w.start();
  await sleep(opts.duration * 1000);
  measuring = false;
  running = false;
  const win = w.stop();
  finish({
    clients: clients.length,
    acks,
    acks_per_s: acks / win.wall_s,
    p50_ms: hist.percentile(50),
    p99_ms: hist.percentile(99),
    ...win,
  });
}

const scenarios = { A: scenarioA, B: scenarioB, C: scenarioC, D: scenarioD, E: scenarioE, F: scenarioC };
const run = scenarios[opts.scenario];
if (!run) fail(`unknown scenario ${opts.scenario}`);
else run().catch((err) => fail(err.stack || err));
