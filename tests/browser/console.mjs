// The web console in headless Chromium (Debian's chromium, driven by
// playwright-core). Run by tests/integration/test_console.py, which starts
// sedged and plays the things: this script and the test take turns through
// lines on stdout ("step NAME") and stdin ("go NAME").
//   env: SEDGE_LOGIN_URL, SEDGE_SHOTS (a directory for screenshots),
//        CHROMIUM (default /usr/bin/chromium)
import { chromium } from "playwright-core";
import readline from "node:readline";

const lines = readline.createInterface({ input: process.stdin });
const waiting = [];
const arrived = [];
lines.on("line", (l) => {
  if (waiting.length) waiting.shift()(l);
  else arrived.push(l);
});
const next = () => new Promise((resolve) => {
  if (arrived.length) resolve(arrived.shift());
  else waiting.push(resolve);
});
async function expectGo(name) {
  const l = await next();
  if (l !== "go " + name) throw new Error("expected 'go " + name + "', got '" + l + "'");
}
const step = (name) => console.log("step " + name);
const shots = process.env.SEDGE_SHOTS;
let n = 0;
const shot = async (page, name) => {
  if (shots) await page.screenshot({ path: `${shots}/${String(++n).padStart(2, "0")}-${name}.png`, fullPage: true });
};

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on("pageerror", (e) => { console.error("page error: " + e.message); process.exitCode = 1; });
  page.setDefaultTimeout(15000);

  // Log in with the one-time URL: the token becomes a session cookie.
  await page.goto(process.env.SEDGE_LOGIN_URL);
  await page.waitForURL((u) => !u.search.includes("token"));
  await page.locator("#status-cards .card").first().waitFor();
  await page.waitForFunction(() => document.querySelectorAll("#status-cards .card").length > 5);
  await shot(page, "status");
  step("logged-in");

  // See a thing connect.
  await expectGo("thing-connected");
  await page.goto(new URL("/#things", page.url()).href);
  await page.locator("#things-body tr", { hasText: "lamp" }).filter({ hasText: "connected" }).first().waitFor();
  await shot(page, "things");
  step("saw-thing");

  // Watch a live message arrive.
  await page.click('nav a[href="#topics"]');
  await page.fill("#watch-filter", "demo/#");
  await page.click("#watch-button");
  await page.locator("#watch-state", { hasText: "watching demo/#" }).waitFor();
  step("watching");
  await expectGo("published");
  await page.locator("#messages-body tr", { hasText: "hello-browser" }).waitFor();
  await shot(page, "topics");
  step("saw-message");

  // Edit a shadow's desired state: the test's thing gets the delta.
  await page.click('nav a[href="#shadows"]');
  await page.fill("#shadow-thing", "lamp");
  await page.click("#shadow-load");
  await page.fill("#shadow-desired", JSON.stringify({ on: true, level: 7 }));
  await page.click("#shadow-save");
  await page.locator("#shadow-result.ok").waitFor();
  await shot(page, "shadow");
  step("shadow-saved");
  await expectGo("delta-seen");

  // Invoke a function and see its result.
  await page.click('nav a[href="#functions"]');
  await page.locator("#invoke-function option", { hasText: "echo" }).waitFor({ state: "attached" });
  await page.selectOption("#invoke-function", "echo");
  await page.fill("#invoke-payload", '"from the browser"');
  await page.click("#invoke-button");
  await page.locator("#invoke-result", { hasText: 'echo:"from the browser"' }).waitFor();
  await shot(page, "functions");
  step("invoked");

  // Roll a deployment back.
  await page.click('nav a[href="#deployments"]');
  const button = page.locator('#deployments-body button[data-version="1"]');
  await button.waitFor();
  await button.click();
  await page.locator("#deploy-result.ok").waitFor();
  await page.locator("#deployments-body tr", { hasText: "active" }).first().waitFor();
  await shot(page, "deployments");
  step("rolled-back");
  await page.click('nav a[href="#status"]');
  await page.waitForTimeout(4500); // two refreshes: the chart has points
  await shot(page, "status-chart");
  step("done");
} finally {
  await browser.close();
}
// stdin stays open (the test's pipe): end here.
process.exit(process.exitCode || 0);
