// Drives the official Socket.IO Admin UI (the static build shipped in @socket.io/admin-ui) in headless
// Chromium (Debian's, through playwright-core from clients/browser/node_modules) against sioserver
// processes, and prints one JSON line.
//
//   node tests/browser/admin_ui_driver.mjs UI_URL SERVERS_JSON ARTIFACTS_DIR NAME PASSWORD
//
// SERVERS_JSON: [{"url": "http://127.0.0.1:PORT", "id": "server id"}, ...]; the UI logs in to the
// first. Before that, socket.io-client connects two clients to every server: one on the default
// transports (polling, then the upgrade) in "/", one WebSocket-only in "/chat" that joins a room.
// The UI is shown a wrong password first (it must say so), then the right one; then its Servers and
// Sockets pages must list every server and every socket. Screenshots: ARTIFACTS_DIR/NAME-*.png.
import { createRequire } from "node:module";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(HERE, "..", "..", "clients", "browser", "package.json"));
const { chromium } = require("playwright-core");
const { io } = require("socket.io-client");

const [uiUrl, serversJson, artifacts, name, password] = process.argv.slice(2);
if (!password) {
  console.error("usage: node admin_ui_driver.mjs UI_URL SERVERS_JSON ARTIFACTS_DIR NAME PASSWORD");
  process.exit(2);
}
const servers = JSON.parse(serversJson);
mkdirSync(artifacts, { recursive: true });
const WAIT = 15_000;
const log = [];
const result = { ok: false, clients: [] };
let step = "clients";
let browser;
let page;
const sockets = [];

function connected(socket) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("socket.io-client did not connect")), WAIT);
    socket.once("connect", () => { clearTimeout(timer); resolve(); });
    socket.once("connect_error", (err) => { clearTimeout(timer); reject(err); });
  });
}

async function shot(label) {
  if (page) await page.screenshot({ path: path.join(artifacts, `${name}-${label}.png`), fullPage: true });
}

try {
  for (const server of servers) {
    const main = io(server.url, { transports: ["polling", "websocket"], forceNew: true });
    const chat = io(`${server.url}/chat`, { transports: ["websocket"], forceNew: true });
    sockets.push(main, chat);
    await Promise.all([connected(main), connected(chat)]);
    const room = `room-of-${server.id}`;
    if ((await chat.timeout(WAIT).emitWithAck("join", room)) !== room) throw new Error("join not acked");
    if (main.io.engine.transport.name !== "websocket") {
      await new Promise((resolve) => main.io.engine.once("upgrade", resolve));
    }
    result.clients.push({ server: server.id, nsp: "/", id: main.id }, { server: server.id, nsp: "/chat", id: chat.id, room });
  }

  step = "launch";
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
      "--disable-sync", "--no-first-run", "--disable-quic"],
  });
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 }, deviceScaleFactor: 1 });
  page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  page.on("pageerror", (err) => log.push(`page error: ${err.message}`));
  page.on("console", (msg) => {
    // the aborted font and CDN requests below show as "Failed to load resource: net::ERR_FAILED"
    if (msg.type() === "error" && !msg.text().includes("net::ERR_FAILED")) log.push(`console.error: ${msg.text()}`);
  });
  // the build links Google Fonts and a CDN stylesheet: nothing leaves this machine
  const local = [uiUrl, ...servers.map((s) => s.url)];
  result.aborted = [];
  await page.route("**/*", (route) => {
    if (local.some((u) => route.request().url().startsWith(u))) return route.continue();
    result.aborted.push(route.request().url());
    return route.abort();
  });

  step = "login form";
  await page.goto(`${uiUrl}/`);
  const urlField = page.getByLabel("Server URL");
  await urlField.fill(servers[0].url);
  await page.getByLabel("Username").fill("admin");
  await page.getByLabel("Password").fill(`${password}-wrong`);
  await page.getByRole("button", { name: "Connect" }).click();

  step = "wrong password refused";
  await page.getByText(/invalid credentials/i).first().waitFor();
  result.refusedShown = true;
  await shot("refused");

  step = "login";
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Connect" }).click();
  await urlField.waitFor({ state: "hidden" });

  step = "servers page";
  await page.evaluate(() => { window.location.hash = "#/servers/"; });
  for (const server of servers) await page.getByText(server.id, { exact: true }).first().waitFor();
  result.serversText = await page.locator("main").innerText();
  await shot("servers");

  step = "sockets page";
  await page.evaluate(() => { window.location.hash = "#/sockets/"; });
  result.socketsText = "";
  for (const nsp of ["/", "/chat"]) {  // the page lists one namespace at a time
    if (nsp !== "/") {
      await page.locator("main .v-select").first().click();
      await page.getByRole("option", { name: nsp, exact: true }).click();
    }
    for (const c of result.clients.filter((c) => c.nsp === nsp)) {
      await page.getByText(c.id, { exact: true }).first().waitFor();
      c.row = (await page.locator("tr", { hasText: c.id }).first().innerText()).replace(/\s+/g, " ").trim();
    }
    result.socketsText += await page.locator("main").innerText();
    await shot(nsp === "/" ? "sockets" : "sockets-chat");
  }

  step = "dashboard";
  await page.evaluate(() => { window.location.hash = "#/"; });
  await page.getByText("Dashboard").first().waitFor();
  result.dashboardText = await page.locator("main").innerText();
  await shot("dashboard");
  result.ok = true;
} catch (err) {
  result.error = String(err && err.stack || err);
  result.step = step;
  try { await shot("failure"); } catch { /* the page may be gone */ }
} finally {
  result.log = log;
  for (const socket of sockets) socket.disconnect();
  if (browser) await browser.close();
  console.log(JSON.stringify(result));
  process.exit(result.ok ? 0 : 1);
}
