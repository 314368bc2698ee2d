// The staff pages in Debian's chromium, headless, driven by Playwright for tests/dashboard.rs.
// The Rust test owns NATS and `vigil run`; this script owns the browser. They talk in lines:
// this script prints `ready`, `shown MS`, ... on stdout and waits for `published`, `practice`,
// `paged`, `paged-again` and `stopped` on stdin. Any failure prints `failed: WHY` and exits
// non-zero.
import readline from "node:readline";
import { chromium } from "playwright-core";

const { BASE_URL, NURSE_TOKEN, VIEWER_TOKEN, PAGER_TOKEN, ADMIN_TOKEN, CHROMIUM, SHOTS } = process.env;
const lines = readline.createInterface({ input: process.stdin });
const input = lines[Symbol.asyncIterator]();
const say = (...parts) => console.log(parts.join(" "));
async function expectLine(word) {
  const { value } = await input.next();
  if (value !== word) throw new Error(`expected \`${word}\` from the test, got \`${value}\``);
}

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  // As the machine's notes say: without these, chromium reaches for Google's hosts.
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const errors = [];
  let counting = true;
  const open = async (path, token, watch, viewport) => {
    const page = await browser.newPage({ viewport: viewport || { width: 1400, height: 900 } });
    if (watch) {
      page.on("console", (m) => { if (counting && m.type() === "error") errors.push(m.text()); });
      page.on("pageerror", (e) => errors.push(String(e)));
      page.on("requestfailed", (r) => { if (counting) errors.push("request failed: " + r.url()); });
      // Every request stays on the engine's own address: no CDN, nothing external.
      page.on("request", (r) => { if (!r.url().startsWith(BASE_URL) && !r.url().startsWith("data:")) errors.push("external request: " + r.url()); });
    }
    const [where, hash] = path.split("#");
    await page.goto(`${BASE_URL}${where}?token=${encodeURIComponent(token)}${hash ? "#" + hash : ""}`);
    return page;
  };

  // A token the server does not accept: refused, with the reason, and never "No open alerts".
  const stranger = await open("/", "not-a-token", false);
  await stranger.locator("#status", { hasText: "Refused: token not accepted" }).waitFor({ timeout: 10000 });
  say("refused", JSON.stringify(await stranger.locator("#status").textContent()),
    JSON.stringify(await stranger.locator("#patients").textContent()));
  await stranger.close();

  const nurse = await open("/", NURSE_TOKEN, true);
  const viewer = await open("/", VIEWER_TOKEN, true);
  // The pager starts on a hidden screen (so it receipts nothing yet): `document.hidden` is
  // what the page reads, and this script flips it.
  const pagerContext = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true });
  await pagerContext.addInitScript(() => {
    window.__hidden = true;
    Object.defineProperty(Document.prototype, "hidden", { get() { return window.__hidden; }, configurable: true });
  });
  const pager = await pagerContext.newPage();
  pager.on("console", (m) => { if (counting && m.type() === "error") errors.push(m.text()); });
  pager.on("pageerror", (e) => errors.push(String(e)));
  await pager.goto(`${BASE_URL}/pager?token=${encodeURIComponent(PAGER_TOKEN)}`);
  for (const page of [nurse, viewer, pager]) {
    await page.locator("#status", { hasText: "Live" }).waitFor({ timeout: 10000 });
  }
  say("ready");

  await expectLine("published");
  const started = Date.now();
  const row = nurse.locator("#patients tr.patient", { hasText: "news2.high" });
  await row.waitFor({ timeout: 5000 });
  say("shown", Date.now() - started);
  // The live score follows with the next coalesced `patient` frame.
  await row.locator(".news2", { hasText: "8" }).waitFor({ timeout: 5000 });
  const item = row.locator("li.alert", { hasText: "news2.high" });
  say("times", JSON.stringify({
    age: await item.locator(".age").textContent(),
    escalation: await item.locator(".escalation").textContent(),
    zone: await nurse.locator("#zone").textContent(),
    counts: await nurse.locator("#counts").textContent(),
    announced: await nurse.locator("#announce").textContent(),
    level: await item.locator(".level").textContent(),
    news2: await row.locator(".news2").textContent(),
    patient: await row.locator("td").first().textContent(),
  }));

  const seen = viewer.locator("#patients tr.patient", { hasText: "news2.high" });
  await seen.waitFor({ timeout: 5000 });
  say("viewer-buttons", await viewer.locator("#patients button.act").count());

  // Filters: only critical keeps the row; a unit that is not its own hides it.
  await nurse.locator("#f-level").selectOption("critical");
  await row.waitFor({ timeout: 2000 });
  await nurse.locator("#f-level").selectOption("");

  await item.getByRole("button", { name: /^Acknowledge/ }).click();
  await nurse.locator("#action-preset").selectOption("Seen, plan in place");
  await nurse.locator("#action-text").fill("fluids started");
  await nurse.getByRole("button", { name: "Confirm" }).click();
  await nurse.locator("#patients li.alert", { hasText: "acknowledged" }).waitFor({ timeout: 5000 });
  say("acked");
  await nurse.screenshot({ path: `${SHOTS}/ward.png` });

  // The patient panel: scores, the explanation, the window charted, the audit trail.
  await row.getByRole("button", { name: "Details for p-browser" }).click();
  const panel = nurse.locator("#panel");
  await panel.locator(".timeline li", { hasText: "acknowledged" }).waitFor({ timeout: 5000 });
  say("panel", JSON.stringify({
    title: await panel.locator("#panel-title").textContent(),
    scores: await panel.locator("#panel-scores").textContent(),
    charts: await panel.locator(".chart svg").count(),
    components: await panel.locator(".explanation tr").count(),
    timeline: await panel.locator(".timeline").allTextContents(),
    focused: await nurse.evaluate(() => document.activeElement && document.activeElement.id),
  }));
  await nurse.setViewportSize({ width: 1400, height: 1500 });
  await nurse.screenshot({ path: `${SHOTS}/patient-panel.png` });
  await nurse.setViewportSize({ width: 1400, height: 900 });
  // Escape closes it and gives the focus back to the button that opened it.
  await nurse.keyboard.press("Escape");
  await panel.waitFor({ state: "hidden", timeout: 2000 });
  say("focus-back", JSON.stringify(await nurse.evaluate(() => document.activeElement.getAttribute("aria-label"))));

  // The practice view, for a coordinator.
  await expectLine("practice");
  const desk = await open("/#practice", ADMIN_TOKEN, true);
  const chair = desk.locator("#rooms tr", { hasText: "chair-7" });
  await chair.waitFor({ timeout: 10000 });
  await desk.locator("#providers tr", { hasText: "prov-3" }).waitFor({ timeout: 10000 });
  const area = desk.locator("#waiting tr", { hasText: "p-wait" });
  await area.waitFor({ timeout: 10000 });
  say("practice", JSON.stringify({ chair: await chair.textContent(), waiting: await area.textContent() }));
  await desk.screenshot({ path: `${SHOTS}/practice.png` });
  await desk.close();

  // The pager: a page not receipted is sent again and stays one card; shown, it is receipted
  // and says delivered; accept acknowledges the alert.
  await expectLine("paged");
  const card = pager.locator("article.card", { hasText: "p-pager-1" });
  await card.waitFor({ timeout: 5000 });
  await card.locator(".facts", { hasText: "sent 2 time(s)" }).waitFor({ timeout: 10000 });
  say("resent", await pager.locator("article.card", { hasText: "p-pager-1" }).count(),
    JSON.stringify(await card.locator(".page-state").textContent()));
  await pager.evaluate(() => { window.__hidden = false; document.dispatchEvent(new Event("visibilitychange")); });
  await card.locator(".page-state", { hasText: "Page delivered" }).waitFor({ timeout: 5000 });
  say("delivered");
  await card.getByRole("button", { name: /^Accept/ }).click();
  await card.locator(".facts", { hasText: "alert acknowledged" }).waitFor({ timeout: 5000 });
  say("accepted", JSON.stringify(await card.locator(".page-state").textContent()),
    JSON.stringify(await card.locator("h2").textContent()));

  // Decline, with a reason: the alert escalates to the next level at once.
  await expectLine("paged-again");
  const second = pager.locator("article.card", { hasText: "p-pager-2" });
  await second.locator(".page-state", { hasText: "Page delivered" }).waitFor({ timeout: 5000 });
  await second.getByRole("button", { name: /^Decline/ }).click();
  await pager.locator("#action-preset").selectOption("With another patient");
  await pager.getByRole("button", { name: "Confirm" }).click();
  await second.locator("div", { hasText: "You declined: escalated to level 2" }).first().waitFor({ timeout: 5000 });
  say("declined", JSON.stringify(await second.textContent()));
  await pager.screenshot({ path: `${SHOTS}/pager.png`, fullPage: true });
  say("console-errors", JSON.stringify(errors));

  // The server goes away: the banner says so, with the data's age, and nothing can be sent.
  counting = false;
  await expectLine("stopped");
  await nurse.locator("#status", { hasText: "Reconnecting" }).waitFor({ timeout: 10000 });
  await nurse.locator("#status", { hasText: "s old" }).waitFor({ timeout: 5000 });
  say("offline", JSON.stringify(await nurse.locator("#status").textContent()),
    await nurse.locator("#patients button.act:enabled").count(),
    await nurse.locator("#patients button.act").count());
  await nurse.screenshot({ path: `${SHOTS}/ward-reconnecting.png` });
  say("done");
} catch (e) {
  say("failed:", String(e).split("\n")[0]);
  process.exitCode = 1;
} finally {
  await browser.close();
  lines.close();
}
