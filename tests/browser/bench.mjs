// How long the ward view takes to render 500 patients with 200 open alerts, in Debian's
// chromium, headless (scripts/bench-page runs it against `vigil demo`). Frames are fed to the
// page's own frame handler, as the WebSocket would: a snapshot of 200 alerts, 500 patient
// frames, then bursts of updates; one update is also timed with every row rebuilt, the way the
// page drew before it kept unchanged rows. Prints one line of JSON, timings in milliseconds.
import { chromium } from "playwright-core";

const { BASE_URL, TOKEN, CHROMIUM } = process.env;
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  await page.goto(`${BASE_URL}/?token=${encodeURIComponent(TOKEN)}`);
  await page.locator("#status", { hasText: "Live" }).waitFor({ timeout: 15000 });
  const result = await page.evaluate(async () => {
    const at = (s) => new Date(Date.now() - s * 1000).toISOString();
    const patient = (i, n) => ({ type: "patient", patientId: "bench-" + i, unitId: "bench-" + (i % 5), at: at(0),
      news2: n, qsofa: n > 6 ? 2 : 0, sirs: 1, partial: false, single3: n === 3, sepsisRisk: 0.01 * (i % 7),
      vitals: { hr: 80 + n, rr: 14 + n, spo2: 97 - n } });
    const alert = (i) => ({ alertId: "bench-alert-" + i, rule: i % 2 ? "news2.high" : "news2.trend", category: "deterioration",
      level: i % 3 ? "warning" : "critical", state: "open", message: "bench", patientId: "bench-" + (i * 2),
      unitId: "bench-" + ((i * 2) % 5), meta: {}, explanation: { why: "w", whyNow: "n", components: [] },
      escalation: { level: 1, nextAt: at(-300), targets: ["role:nurse@bench"] },
      transition: { from: "open", to: "open", by: "engine", at: at(60) }, openedAt: at(60), emittedAt: at(60), version: 1 });
    const frame = () => new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));
    const timed = async (fn) => { const t = performance.now(); fn(); render(); await frame(); return performance.now() - t; };
    const out = {};
    out.snapshot = await timed(() => onFrame({ type: "snapshot", alerts: Array.from({ length: 200 }, (_, i) => alert(i)) }));
    out.first500 = await timed(() => { for (let i = 0; i < 500; i++) onFrame(patient(i, i % 10)); });
    out.rows = document.querySelectorAll("#patients tr.patient").length;
    const updates = [];
    for (let k = 0; k < 20; k++) updates.push(await timed(() => onFrame(patient(k * 7, (k % 9) + 1))));
    updates.sort((a, b) => a - b);
    out.oneUpdateMedian = updates[10];
    out.oneUpdateMax = updates[19];
    // The same update when every row is rebuilt (what the page did before rows were kept).
    const rebuilt = [];
    for (let k = 0; k < 20; k++) rebuilt.push(await timed(() => { rowCache.clear(); onFrame(patient(k * 7, (k % 9) + 2)); }));
    rebuilt.sort((a, b) => a - b);
    out.oneUpdateRebuildAllMedian = rebuilt[10];
    // A burst: every patient updated five times, as frames arrive within one flush.
    out.burst2500 = await timed(() => { for (let r = 0; r < 5; r++) for (let i = 0; i < 500; i++) onFrame(patient(i, (i + r) % 10)); });
    out.newAlert = await timed(() => onFrame({ type: "alert", alert: { ...alert(250), patientId: "bench-499" } }));
    return out;
  });
  for (const k of Object.keys(result)) if (typeof result[k] === "number" && k !== "rows") result[k] = Math.round(result[k] * 10) / 10;
  console.log(JSON.stringify(result));
} finally {
  await browser.close();
}
