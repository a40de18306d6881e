// Headless Chromium (Debian's /usr/bin/chromium) driven by playwright-core for the tests.
// argv[2]: JSON {executable?, permissions?, viewport?: {width, height}, mobile?}. stdin: JSON line commands, stdout: one JSON answer per command:
//   {"cmd":"open","url":...}  {"cmd":"wait","selector":...,"text"?:...,"timeout"?:ms}
//   {"cmd":"text","selector":...}  {"cmd":"count","selector":...}  {"cmd":"click","selector":...}
//   {"cmd":"press","key":"j"}  {"cmd":"reload"}  {"cmd":"screenshot","path":...}  {"cmd":"eval","js":...}  {"cmd":"close"}
//   {"cmd":"fill","selector":...,"value":...}  {"cmd":"url"}  {"cmd":"urls"} (every page the tab asked for, redirects included)
// No name resolves but localhost (oidc-provider's forms import a web font: refused at once).
import { chromium } from "playwright-core";
import readline from "node:readline";

const cfg = JSON.parse(process.argv[2] || "{}");
const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");
const browser = await chromium.launch({
  executablePath: cfg.executable || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic",
         "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost"],
});
const context = await browser.newContext({
  viewport: cfg.viewport || { width: 1400, height: 900 },
  isMobile: Boolean(cfg.mobile), hasTouch: Boolean(cfg.mobile),
});
if (cfg.permissions) await context.grantPermissions(cfg.permissions);  // e.g. ["notifications"]
const page = await context.newPage();
const visited = [];
page.on("request", (r) => { if (r.isNavigationRequest() && r.frame() === page.mainFrame()) visited.push(r.url()); });
const consoleLines = [];
const refused = [];  // every answer >= 400, "<status> <url>", for a failing test's message
page.on("response", (r) => { if (r.status() >= 400) refused.push(`${r.status()} ${r.url()}`); });
page.on("console", (m) => consoleLines.push(m.text()));
page.on("pageerror", (e) => consoleLines.push(`page error: ${e.message}`));
out({ ok: true, ready: true });

const rl = readline.createInterface({ input: process.stdin });
for await (const line of rl) {
  let c;
  try { c = JSON.parse(line); } catch { continue; }
  try {
    if (c.cmd === "open") { await page.goto(c.url); out({ ok: true }); }
    else if (c.cmd === "reload") { await page.reload(); out({ ok: true }); }
    else if (c.cmd === "wait") {
      const loc = c.text ? page.locator(c.selector, { hasText: c.text }) : page.locator(c.selector);
      await loc.first().waitFor({ timeout: c.timeout || 15000, state: c.state || "visible" });
      out({ ok: true });
    }
    else if (c.cmd === "text") { out({ ok: true, text: await page.locator(c.selector).first().innerText() }); }
    else if (c.cmd === "count") { out({ ok: true, count: await page.locator(c.selector).count() }); }
    else if (c.cmd === "texts") { out({ ok: true, texts: await page.locator(c.selector).allInnerTexts() }); }
    else if (c.cmd === "fill") { await page.locator(c.selector).first().fill(c.value); out({ ok: true }); }
    else if (c.cmd === "url") { out({ ok: true, url: page.url() }); }
    else if (c.cmd === "urls") { out({ ok: true, urls: visited }); }
    else if (c.cmd === "press") { await page.keyboard.press(c.key); out({ ok: true }); }
    else if (c.cmd === "click") { await page.locator(c.selector).first().click(); out({ ok: true }); }
    else if (c.cmd === "eval") { out({ ok: true, value: await page.evaluate(`(${c.js})()`) }); }  // js: a function
    else if (c.cmd === "screenshot") { await page.screenshot({ path: c.path, fullPage: true }); out({ ok: true }); }
    else if (c.cmd === "close") { await browser.close(); out({ ok: true }); process.exit(0); }
    else out({ ok: false, error: "unknown command" });
  } catch (e) {
    out({ ok: false, error: String(e && e.message || e), console: consoleLines.slice(-20), refused: refused.slice(-10) });
  }
}
await browser.close();
