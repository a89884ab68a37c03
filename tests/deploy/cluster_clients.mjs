// Official socket.io-client against the nginx cluster (scripts/cluster.py):
// two clients through nginx (polling only, and default transports that must upgrade), and one sender
// connected straight to each worker. Every chat from every worker must reach both nginx clients once.
// usage: node cluster_clients.mjs NGINX_URL WORKER_URL...   -> one JSON line
import { createRequire } from "module";
const require = createRequire(new URL("../interop/package.json", import.meta.url));
const { io } = require("socket.io-client");

const [nginxUrl, ...workerUrls] = process.argv.slice(2);
const result = { ok: false, checks: {}, received: {} };
const deadline = setTimeout(() => { result.error = "timeout"; finish(1); }, 20000);
const sockets = [];

function finish(code) {
  clearTimeout(deadline);
  for (const s of sockets) s.close();
  console.log(JSON.stringify(result));
  process.exit(code);
}

function connect(url, opts, name) {
  return new Promise((resolve, reject) => {
    const s = io(url, { reconnection: false, auth: { name }, ...opts });
    sockets.push(s);
    s.on("connect_error", (err) => reject(new Error(`${name}: ${err.message}`)));
    s.on("connect", async () => {
      await s.timeout(3000).emitWithAck("join", { name });
      resolve(s);
    });
  });
}

function upgraded(s) {
  return new Promise((resolve) => {
    if (s.io.engine.transport.name === "websocket") return resolve(true);
    s.io.engine.once("upgrade", () => resolve(true));
  });
}

try {
  const polling = await connect(nginxUrl, { transports: ["polling"] }, "via-nginx-polling");
  const upgrading = await connect(nginxUrl, {}, "via-nginx-default");
  await Promise.race([upgraded(upgrading), new Promise((r) => setTimeout(r, 5000))]);
  result.checks.upgraded = upgrading.io.engine.transport.name === "websocket";
  result.checks.polling_stayed = polling.io.engine.transport.name === "polling";
  const expected = workerUrls.map((_, i) => `from-worker-${i + 1}`);
  const got = { polling: [], upgrading: [] };
  polling.on("chat", (m) => got.polling.push(m.text));
  upgrading.on("chat", (m) => got.upgrading.push(m.text));
  for (const [i, url] of workerUrls.entries()) {
    const sender = await connect(url, { transports: ["websocket"] }, `sender-${i + 1}`);
    await sender.timeout(3000).emitWithAck("chat", { text: expected[i] });
  }
  const until = Date.now() + 5000;
  while (Date.now() < until && (got.polling.length < expected.length || got.upgrading.length < expected.length)) {
    await new Promise((r) => setTimeout(r, 50));
  }
  await new Promise((r) => setTimeout(r, 300)); // duplicates would arrive now
  result.received = got;
  const same = (a) => JSON.stringify([...a].sort()) === JSON.stringify([...expected].sort());
  result.checks.polling_got_each_once = same(got.polling);
  result.checks.upgrading_got_each_once = same(got.upgrading);
  result.ok = Object.values(result.checks).every(Boolean);
  finish(result.ok ? 0 : 1);
} catch (err) {
  result.error = String(err);
  finish(1);
}
