// The staff page in Debian's chromium, headless, driven by Playwright for tests/dashboard.rs.
// The Rust test owns NATS and `vigil run`; this script owns the browser. They talk in lines:
// this script prints `ready`, `shown MS`, ... on stdout and waits for `published` and
// `stopped` on stdin. Any failure prints `failed: WHY` and exits non-zero.
import readline from "node:readline";
import { chromium } from "playwright-core";

const { BASE_URL, NURSE_TOKEN, VIEWER_TOKEN, CHROMIUM, SHOTS } = process.env;
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
  const open = async (token, watch) => {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    if (watch) {
      page.on("console", (m) => { if (counting && m.type() === "error") errors.push(m.text()); });
      page.on("pageerror", (e) => errors.push(String(e)));
    }
    await page.goto(`${BASE_URL}/?token=${encodeURIComponent(token)}`);
    return page;
  };

  // A token the server does not accept: refused, with the reason, and never "No open alerts".
  const stranger = await open("not-a-token", false);
  await stranger.locator("#status", { hasText: "Refused: token not accepted" }).waitFor({ timeout: 10000 });
  say("refused", JSON.stringify(await stranger.locator("#status").textContent()),
    JSON.stringify(await stranger.locator("#alerts").textContent()));
  await stranger.close();

  const nurse = await open(NURSE_TOKEN, true);
  const viewer = await open(VIEWER_TOKEN, true);
  for (const page of [nurse, viewer]) {
    await page.locator("#status", { hasText: "Live" }).waitFor({ timeout: 10000 });
  }
  say("ready");

  await expectLine("published");
  const started = Date.now();
  const row = nurse.locator("#alerts tr.alert", { hasText: "news2.high" });
  await row.waitFor({ timeout: 5000 });
  say("shown", Date.now() - started);
  say("times", JSON.stringify({
    age: await row.locator(".age").textContent(),
    escalation: await row.locator("td.escalation").textContent(),
    zone: await nurse.locator("#zone").textContent(),
    counts: await nurse.locator("#counts").textContent(),
    announced: await nurse.locator("#announce").textContent(),
    level: await row.locator("td.level").textContent(),
  }));

  const seen = viewer.locator("#alerts tr.alert", { hasText: "news2.high" });
  await seen.waitFor({ timeout: 5000 });
  say("viewer-buttons", await viewer.locator("#alerts button").count());

  await row.getByRole("button", { name: "Acknowledge" }).click();
  await nurse.locator("#action-preset").selectOption("Seen, plan in place");
  await nurse.locator("#action-text").fill("fluids started");
  await nurse.getByRole("button", { name: "Confirm" }).click();
  await nurse.locator("#alerts tr.alert", { hasText: "acknowledged" }).waitFor({ timeout: 5000 });
  say("acked");
  await nurse.screenshot({ path: `${SHOTS}/ward.png`, fullPage: true });
  say("console-errors", JSON.stringify(errors));

  // The server goes away: the banner says so, with the data's age, and nothing can be sent.
  counting = false;
  await expectLine("stopped");
  await nurse.locator("#status", { hasText: "Reconnecting" }).waitFor({ timeout: 10000 });
  await nurse.locator("#status", { hasText: "s old" }).waitFor({ timeout: 5000 });
  say("offline", JSON.stringify(await nurse.locator("#status").textContent()),
    await nurse.locator("#alerts button:enabled").count(),
    await nurse.locator("#alerts button").count());
  await nurse.screenshot({ path: `${SHOTS}/ward-reconnecting.png`, fullPage: true });
  say("done");
} catch (e) {
  say("failed:", String(e).split("\n")[0]);
  process.exitCode = 1;
} finally {
  await browser.close();
  lines.close();
}
