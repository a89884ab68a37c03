// Drives the chat demo in real headless Chromium (Debian's, through playwright-core from
// clients/browser/node_modules) and prints one JSON line: what each page showed.
//
//   node tests/browser/chat_driver.mjs http://127.0.0.1:PORT ARTIFACTS_DIR
//
// Alice (default transports: polling, then the upgrade to websocket) and Bob
// (?transports=polling) chat both ways; then Alice's connection drops and the page reconnects. Every wait has a timeout; a failure prints
// {"ok": false, "error": ..., "step": ...} plus the pages' console output, saves screenshots,
// and exits 1.
import { createRequire } from "node:module";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(HERE, "..", "..", "clients", "browser", "package.json"));
const { chromium } = require("playwright-core");

const [base, artifacts] = process.argv.slice(2);
if (!base || !artifacts) {
  console.error("usage: node chat_driver.mjs BASE_URL ARTIFACTS_DIR");
  process.exit(2);
}
mkdirSync(artifacts, { recursive: true });

const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const WAIT = 10_000;
const ALICE_SAYS = "Hello Bob! <b>not bold</b> & <script>alert(1)</script>";
const BOB_SAYS = "Hi Alice, Bob here — café talk over long-polling";
const AFTER_RECONNECT = "Still there, Alice?";

const log = [];
let step = "launch";
const result = { ok: false };

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  // Playwright gives every launch a fresh temporary --user-data-dir.
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic"],
});

async function open(who, query) {
  const context = await browser.newContext({ viewport: { width: 760, height: 560 }, deviceScaleFactor: 1 });
  // user text must never run: an injected <script>alert()</script> would set this flag
  await context.addInitScript(() => { window.alert = () => { window.__alerted = true; }; });
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  page.on("console", (msg) => log.push(`${who} console.${msg.type()}: ${msg.text()}`));
  page.on("pageerror", (err) => log.push(`${who} page error: ${err.message}`));
  page.on("response", (res) => {
    if (res.status() >= 400) log.push(`${who} HTTP ${res.status()}: ${res.url()}`);
  });
  page.on("requestfailed", (req) => {
    // a long-poll cut short by the upgrade or the page closing is normal; anything else is not
    if (!req.url().includes("/socket.io/")) log.push(`${who} request failed: ${req.url()} ${req.failure()?.errorText}`);
  });
  await page.goto(`${base}/${query}`);
  return page;
}

async function text(page, selector) {
  return (await page.locator(selector).textContent())?.trim() ?? null;
}

async function pageState(page) {
  return page.evaluate(() => ({
    status: document.getElementById("status").dataset.state,
    statusText: document.getElementById("status-text").textContent,
    shownTransport: document.getElementById("transport").textContent,
    engineTransport: window.chatSocket.io.engine.transport.name,
    online: document.getElementById("online-count").textContent,
    names: document.getElementById("names").textContent,
    messages: [...document.querySelectorAll(".msg")].map((m) => ({
      from: m.dataset.from,
      own: m.classList.contains("own"),
      status: m.dataset.status ?? null,
      text: m.querySelector(".bubble").textContent,
      bubbleChildren: m.querySelector(".bubble").children.length,
      meta: m.querySelector(".meta").textContent,
    })),
    scripts: document.scripts.length,
    alerted: window.__alerted === true,
  }));
}

async function send(page, message) {
  await page.locator("#text").fill(message);
  await page.locator("#text").press("Enter");
}

let alice;
let bob;
try {
  step = "open pages";
  alice = await open("alice", "?name=Alice");
  bob = await open("bob", "?name=Bob&transports=polling");

  step = "both connected, 2 online";
  for (const page of [alice, bob]) {
    await page.locator('#status[data-state="connected"]').waitFor();
    await page.waitForFunction(() => document.getElementById("online-count").textContent === "2");
    await page.waitForFunction(() => /Alice/.test(document.getElementById("names").textContent)
      && /Bob/.test(document.getElementById("names").textContent));
  }

  step = "alice upgrades to websocket";
  await alice.waitForFunction(() => window.chatSocket.io.engine.transport.name === "websocket"
    && document.getElementById("transport").textContent === "websocket");

  step = "alice -> bob";
  await send(alice, ALICE_SAYS);
  await bob.locator('.msg[data-from="Alice"]:not(.own) .bubble').filter({ hasText: "Hello Bob!" }).waitFor();
  await alice.locator('.msg.own[data-status="delivered"]').waitFor();

  step = "bob typing -> alice sees it";
  await bob.locator("#text").fill("Hi Alice");
  await alice.waitForFunction(() => document.getElementById("typing").textContent === "Bob is typing…");
  result.typingShown = await text(alice, "#typing");

  step = "bob -> alice";
  await send(bob, BOB_SAYS);
  await alice.locator('.msg[data-from="Bob"]:not(.own) .bubble').filter({ hasText: "Bob here" }).waitFor();
  await bob.locator('.msg.own[data-status="delivered"]').waitFor();
  await alice.waitForFunction(() => document.getElementById("typing").textContent === "");

  step = "bob stayed on polling";
  // a polling-only client never upgrades; give it a moment to (wrongly) try
  await bob.waitForTimeout(300);

  step = "screenshots";
  for (const [who, page] of [["alice", alice], ["bob", bob]]) {
    await page.screenshot({ path: path.join(artifacts, `chat-${who}.png`) });
  }

  step = "alice loses her connection and reconnects";
  const watch = ({ selector, attr }) => { // records every value the element shows from now on
    const node = document.querySelector(selector);
    const read = () => (attr ? node.getAttribute(attr) : node.textContent);
    window.__seen = [read()];
    new MutationObserver(() => window.__seen.push(read()))
      .observe(node, { attributes: true, childList: true, characterData: true, subtree: true });
  };
  await alice.evaluate(watch, { selector: "#status", attr: "data-state" });
  await bob.evaluate(watch, { selector: "#online-count" });
  await alice.evaluate(() => window.chatSocket.io.engine.close()); // as if the network dropped
  await alice.waitForFunction(() => window.chatSocket.connected
    && window.chatSocket.io.engine.transport.name === "websocket"
    && document.getElementById("transport").textContent === "websocket"
    && document.getElementById("online-count").textContent === "2"
    && [...document.querySelectorAll(".system")].some((n) => n.textContent === "Reconnected"));
  await bob.waitForFunction(() => document.getElementById("online-count").textContent === "2"
    && window.__seen.includes("1"));
  result.aliceStates = await alice.evaluate(() => window.__seen);
  result.bobCounts = await bob.evaluate(() => window.__seen);

  step = "bob -> alice after her reconnect";
  await send(bob, AFTER_RECONNECT);
  await alice.locator('.msg[data-from="Bob"]:not(.own) .bubble').filter({ hasText: AFTER_RECONNECT }).waitFor();
  await bob.locator('.msg.own[data-status="delivered"]').nth(1).waitFor();

  step = "read state";
  result.alice = await pageState(alice);
  result.bob = await pageState(bob);
  result.ok = true;
  step = "done";
} catch (err) {
  result.error = String(err && err.message ? err.message : err).split("\n").slice(0, 6).join("\n");
  for (const [who, page] of [["alice", alice], ["bob", bob]]) {
    if (page) result[who] = await pageState(page).catch((e) => `unreadable: ${e.message}`);
  }
} finally {
  result.step = step;
  result.expected = { alice: ALICE_SAYS, bob: BOB_SAYS, afterReconnect: AFTER_RECONNECT };
  for (const [who, page] of [["alice", alice], ["bob", bob]]) {
    const name = result.ok ? `chat-${who}-after-reconnect.png` : `chat-${who}-failed.png`;
    if (page) await page.screenshot({ path: path.join(artifacts, name) }).catch(() => {});
  }
  result.log = log;
  await browser.close();
}
console.log(JSON.stringify(result));
process.exit(result.ok ? 0 : 1);
