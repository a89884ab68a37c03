// socket.io-client 2.5's browser bundle in headless Chromium (Debian's, through playwright-core from
// clients/browser/node_modules): a browser has XHR2, so long-polling carries binary as XHR2 binary payloads
// (no b64=1), which engine.io-client 3 in Node never does. Prints one JSON line.
//
//   node tests/interop/eio3/v2_browser_driver.mjs URL
//
// A page at the server's origin (a 404 page: same origin, no CORS) loads the bundle and, over polling only and
// then with the upgrade: binary both ways with acks, a binary event from the server, a namespace.
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(HERE, "..", "..", "..", "clients", "browser", "package.json"));
const { chromium } = require("playwright-core");
const bundle = readFileSync(path.join(HERE, "..", "node_modules", "socket.io-client-v2", "dist", "socket.io.js"), "utf8");

const [url] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run", "--disable-quic"],
});
const out = { ok: false, log: [], binaryPosts: 0, binaryGets: 0 };
try {
  const page = await browser.newPage();
  page.on("console", (msg) => out.log.push(`console.${msg.type()}: ${msg.text()}`));
  page.on("pageerror", (err) => out.log.push(`page error: ${err.message}`));
  page.on("request", (req) => {
    if (req.method() === "POST" && req.headers()["content-type"] === "application/octet-stream") out.binaryPosts += 1;
  });
  page.on("response", (res) => {
    if (res.url().includes("/socket.io/") && res.headers()["content-type"] === "application/octet-stream") {
      out.binaryGets += 1;
    }
  });
  await page.goto(`${url}/not-socket-io`);
  await page.addScriptTag({ content: bundle });
  out.results = await page.evaluate(async (url) => {
    const hex = (b) => Array.from(new Uint8Array(b), (x) => x.toString(16).padStart(2, "0")).join("");
    const once = (em, ev) => new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no ${ev}`)), 8000);
      em.once(ev, (...a) => { clearTimeout(t); resolve(a); });
    });
    const call = (s, ev, ...args) => new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no ack for ${ev}`)), 8000);
      s.emit(ev, ...args, (...a) => { clearTimeout(t); resolve(a); });
    });
    const results = {};
    for (const [name, transports] of [["polling", ["polling"]], ["upgrade", ["polling", "websocket"]]]) {
      const r = (results[name] = {});
      const socket = io(url, { transports, forceNew: true, reconnection: false });
      try {
        await once(socket, "connect");
        const engine = socket.io.engine;
        r.supportsBinary = engine.transport.supportsBinary;
        if (name === "upgrade" && engine.transport.name !== "websocket") await once(engine, "upgrade");
        const bin = once(socket, "bin");
        const [back, text] = await call(socket, "binary", new Uint8Array([0, 1, 2, 0xfe, 0xff]).buffer, "text");
        r.binaryAck = [hex(back), text];
        const [event] = await bin;
        r.binaryEvent = [hex(event.bytes), hex(event.nested[0]), hex(event.nested[1].deep).length, event.text];
        const custom = socket.io.socket("/custom", { query: { token: "t-1" } });
        await once(custom, "connect");
        r.customId = custom.id === `/custom#${engine.id}`;
        r.customAck = (await call(custom, "binary", new Uint8Array([9]).buffer)).map(hex);
        r.transport = engine.transport.name;
        custom.close();
      } catch (err) {
        r.error = String(err);
      } finally {
        socket.close();
      }
    }
    return results;
  }, url);
  out.ok = true;
} catch (err) {
  out.error = String(err && err.stack || err);
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(out) + "\n");
process.exit(0);
