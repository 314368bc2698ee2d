"use strict";
// The ward and practice views (GET /): one row per patient, worst first, with every open alert
// of that patient in the row; a patient panel one click away (GET /api/patients/{id} and the
// alerts' audit trail); the practice's waiting areas, providers, chairs and rooms. Updates are
// coalesced: at most one render per RENDER_MS, and a row whose data did not change keeps its
// element, so 500 patients and 200 alerts stay responsive.

const RENDER_MS = 250;          // patient and resource frames
const ALERT_RENDER_MS = 50;     // alert, page and command frames: staff see them sooner
const MAX_ROWS = 500;
const alerts = new Map();      // alertId -> alert (non-resolved)
const patients = new Map();    // patientId -> latest `patient` frame
const spark = new Map();       // patientId -> [[ms, news2], ...] over the window
const seeded = new Set();      // patients whose window was asked for
const resources = new Map();   // kind:id -> latest `resource` frame
const pages = new Map();       // alertId -> { pageId, alert }: pages to this token
const rowErrors = new Map();   // alertId -> last refused command's message
const fresh = new Set();       // alertIds of new critical alerts (flashed)
const rowCache = new Map();    // row key -> { sig, tr }
let view = "ward";
let renderTimer = null;
let panelFor = null;           // patientId shown in the panel

let renderDue = Infinity;
function schedule(urgent) {
  const due = performance.now() + (urgent ? ALERT_RENDER_MS : RENDER_MS);
  if (renderTimer && due >= renderDue) return;
  clearTimeout(renderTimer);
  renderDue = due;
  renderTimer = setTimeout(render, due - performance.now());
}

// The RCP NEWS2 bands: 0, low (1-4), low-medium (a single parameter at 3), medium (5-6),
// high (7+). The band is named in words beside its colour.
function band(n, single3) {
  if (n === null || n === undefined) return { cls: "band-0", word: "no score" };
  if (n >= 7) return { cls: "band-high", word: "high" };
  if (n >= 5) return { cls: "band-medium", word: "medium" };
  if (single3) return { cls: "band-single3", word: "low-medium: a 3 in one parameter" };
  if (n >= 1) return { cls: "band-low", word: "low" };
  return { cls: "band-0", word: "zero" };
}
function news2Cell(p) {
  const b = band(p.news2, p.single3);
  const td = el("td");
  const badge = el("span", (p.news2 ?? "–") + (p.single3 && p.news2 < 5 ? " ‼" : ""), "news2 " + b.cls);
  badge.title = "NEWS2 " + (p.news2 ?? "not scored") + ": " + b.word + (p.partial ? " (partial: a parameter is missing)" : "");
  td.append(badge, el("div", b.word + (p.partial ? ", partial" : ""), "muted"));
  return td;
}
function sparkSvg(points) {
  const w = 120, h = 28;
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("width", w); svg.setAttribute("height", h); svg.setAttribute("class", "spark");
  svg.setAttribute("role", "img");
  if (!points || points.length === 0) { svg.setAttribute("aria-label", "no NEWS2 yet"); return svg; }
  const t0 = points[0][0], t1 = points[points.length - 1][0], span = Math.max(1, t1 - t0);
  // A fixed 0-20 scale, with faint lines at the medium (5) and high (7) thresholds.
  const x = (t) => ((t - t0) / span * (w - 6) + 2).toFixed(1);
  const y = (v) => (h - 2 - Math.min(20, v) / 20 * (h - 4)).toFixed(1);
  for (const at of [5, 7]) {
    const rule = document.createElementNS("http://www.w3.org/2000/svg", "line");
    rule.setAttribute("x1", 0); rule.setAttribute("x2", w); rule.setAttribute("y1", y(at)); rule.setAttribute("y2", y(at));
    rule.setAttribute("class", "threshold");
    svg.append(rule);
  }
  const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  line.setAttribute("points", points.map(([t, v]) => x(t) + "," + y(v)).join(" "));
  const [lt, lv] = points[points.length - 1];
  const dot = document.createElementNS("http://www.w3.org/2000/svg", "circle");
  dot.setAttribute("cx", x(lt)); dot.setAttribute("cy", y(lv)); dot.setAttribute("r", 2.5);
  svg.append(line, dot);
  const lo = Math.min(...points.map((p) => p[1])), hi = Math.max(...points.map((p) => p[1]));
  svg.setAttribute("aria-label", "NEWS2 from " + points[0][1] + " to " + points[points.length - 1][1] +
    " (lowest " + lo + ", highest " + hi + ") since " + time(t0));
  return svg;
}
function addSpark(id, at, n) {
  if (n === null || n === undefined) return;
  const t = Date.parse(at);
  const s = spark.get(id) || [];
  if (s.length && t <= s[s.length - 1][0]) return;
  s.push([t, n]);
  const horizon = t - 6 * 3600 * 1000;
  while (s.length > 400 || (s.length && s[0][0] < horizon)) s.shift();
  spark.set(id, s);
}
// A patient with open alerts gets its NEWS2 over the window from the engine once; live frames
// extend it. Two requests at a time, so a reconnect does not flood the server.
const seedQueue = [];
let seeding = 0;
function seed(id) {
  if (seeded.has(id)) return;
  seeded.add(id);
  seedQueue.push(id);
  pumpSeeds();
}
async function pumpSeeds() {
  while (seeding < 2 && seedQueue.length) {
    const id = seedQueue.shift();
    seeding++;
    api("/api/patients/" + encodeURIComponent(id)).then((r) => {
      seeding--;
      if (r.ok && r.body && r.body.series) {
        const live = spark.get(id) || [];
        const window = r.body.series.news2.map((p) => [Date.parse(p.at), p.value]);
        const last = window.length ? window[window.length - 1][0] : -Infinity;
        spark.set(id, window.concat(live.filter(([t]) => t > last)));
        schedule();
      }
      pumpSeeds();
    });
  }
}

// "Mine": paged to my role, or acted on by me.
function isMine(a) {
  const me = conn.me;
  if (!me) return false;
  if (a.transition && a.transition.by === me.name) return true;
  const targets = (a.escalation && a.escalation.targets) || [];
  return targets.some((t) => t.startsWith("role:" + me.role + "@") || t === "role:" + me.role);
}
function filters() {
  return { unit: $("f-unit").value, level: $("f-level").value, state: $("f-state").value,
    mine: $("f-mine").checked, alerting: $("f-alerting").checked };
}
function alertPasses(a, f) {
  if (f.level && (RANK[a.level] ?? 9) > RANK[f.level]) return false;
  if (f.state && a.state !== f.state) return false;
  if (f.mine && !isMine(a)) return false;
  return true;
}

function pageText(p) {
  return "page " + p.state + (p.attempts > 1 ? " (sent " + p.attempts + " times)" : "") +
    (p.by ? " by " + p.by : "");
}
function alertItem(a) {
  const li = el("li", null, "alert " + a.level);
  li.dataset.alertId = a.alertId;
  li.append(levelEl("span", a.level), " ", el("strong", a.rule), " ", el("span", a.state, "state"), " · ");
  li.append(relative("span", "open ", "since", a.openedAt, "age"));
  const esc = a.escalation || {};
  const facts = el("div", null, "facts escalation");
  facts.append(el("span", "level " + (esc.level ?? "-") + " · " + (esc.targets || []).join(", ")));
  if (esc.nextAt && a.state === "open") facts.append(" · ", relative("span", "escalates in ", "until", esc.nextAt));
  if (esc.page) facts.append(" · ", el("span", pageText(esc.page), "page-state"));
  if (a.snoozedUntil) facts.append(" · ", el("span", "snoozed until " + time(a.snoozedUntil)));
  if (a.ackExpiresAt) facts.append(" · ", el("span", "acknowledgement expires " + time(a.ackExpiresAt)));
  li.append(el("div", a.message, "facts"), facts);
  if (mayAct(a)) {
    const actions = el("span", null, "actions");
    for (const type of ["ack", "snooze", "resolve"]) {
      if (type === "ack" && a.state !== "open") continue;
      actions.append(actButton(VERB[type], () => openAction(type, a), VERB[type] + " " + a.rule + " for " + subject(a)));
    }
    li.append(actions);
  }
  if (rowErrors.has(a.alertId)) li.append(el("div", rowErrors.get(a.alertId), "error"));
  return li;
}

// Rows: one per patient (its frame and its non-delay alerts), and one per other subject with
// a non-delay alert (signal loss of a device without a patient, say).
function rows() {
  const byKey = new Map();
  const row = (key) => {
    let r = byKey.get(key);
    if (!r) { r = { key, frame: null, alerts: [] }; byKey.set(key, r); }
    return r;
  };
  for (const [id, p] of patients) row(id).frame = p;
  for (const a of alerts.values()) {
    if (a.category === "delay") continue;
    row(a.patientId || "subject:" + subject(a)).alerts.push(a);
  }
  return [...byKey.values()];
}
function worst(r) { return Math.min(3, ...r.alerts.map((a) => RANK[a.level] ?? 3)); }
function renderWard() {
  const f = filters();
  const all = rows();
  const units = new Set();
  const shown = [];
  for (const r of all) {
    const unit = (r.frame && r.frame.unitId) || (r.alerts[0] && r.alerts[0].unitId) || "";
    if (unit) units.add(unit);
    if (f.unit && unit !== f.unit) continue;
    const filtering = f.level || f.state || f.mine;
    const visible = r.alerts.filter((a) => alertPasses(a, f));
    if ((filtering || f.alerting) && visible.length === 0) continue;
    shown.push({ ...r, unit, visible });
  }
  shown.sort((a, b) => worst(a) - worst(b) || ((b.frame && b.frame.news2) ?? -1) - ((a.frame && a.frame.news2) ?? -1) ||
    a.key.localeCompare(b.key));
  const body = $("patients");
  const trs = [];
  for (const r of shown.slice(0, MAX_ROWS)) {
    const p = r.frame || {};
    if (r.alerts.length && !r.key.startsWith("subject:")) seed(r.key);
    const s = spark.get(r.key) || [];
    const sig = JSON.stringify([p.at, p.bedId, p.news2, p.qsofa, p.sirs, p.sepsisRisk, r.unit, s.length,
      r.visible.map((a) => [a.alertId, a.version, rowErrors.get(a.alertId), fresh.has(a.alertId)]),
      conn.live, !!conn.me]);
    const cached = rowCache.get(r.key);
    if (cached && cached.sig === sig) { trs.push(cached.tr); continue; }
    const tr = el("tr", null, "patient" + (r.alerts.length ? " " + ["critical", "warning", "info", ""][worst(r)] : ""));
    tr.dataset.patient = r.key;
    if (r.visible.some((a) => fresh.has(a.alertId))) tr.classList.add("new");
    const who = el("td");
    const bed = p.bedId || (r.alerts.find((a) => a.bedId) || {}).bedId;
    who.append(el("strong", r.key.replace(/^subject:/, "")), el("div", r.unit + (bed ? " · bed " + bed : ""), "muted"));
    const list = el("ul", null, "alerts");
    for (const a of r.visible.sort((x, y) => (RANK[x.level] ?? 9) - (RANK[y.level] ?? 9))) list.append(alertItem(a));
    const alertsTd = el("td");
    alertsTd.append(r.visible.length ? list : el("span", r.alerts.length ? "" : "none", "muted"));
    const sparkTd = el("td", null, "wide");
    sparkTd.append(sparkSvg(s));
    const details = el("td");
    if (!r.key.startsWith("subject:")) {
      const b = el("button", "Details");
      b.type = "button";
      b.setAttribute("aria-label", "Details for " + r.key);
      b.onclick = () => openPanel(r.key);
      details.append(b);
    }
    tr.append(who, news2Cell(p), sparkTd, el("td", p.qsofa ?? "–"), el("td", p.sirs ?? "–"),
      el("td", percent(p.sepsisRisk)), alertsTd, details);
    rowCache.set(r.key, { sig, tr });
    trs.push(tr);
  }
  if (trs.length === 0) {
    const text = !conn.live && !conn.dataAt ? "Not connected: no patients or alerts shown."
      : (conn.live ? "No patients or open alerts match." : "Nothing shown as of " + time(conn.dataAt) + " (not live).");
    const tr = el("tr"); const td = el("td", text, "muted"); td.colSpan = 8; tr.append(td); trs.push(tr);
  }
  place(body, trs);
  const present = new Set(all.map((r) => r.key));
  for (const key of rowCache.keys()) if (!present.has(key)) rowCache.delete(key);
  $("shown").textContent = "showing " + Math.min(shown.length, MAX_ROWS) + " of " + all.length + " rows";
  const unitSel = $("f-unit");
  const have = new Set([...unitSel.options].map((o) => o.value));
  for (const u of [...units].sort()) if (!have.has(u)) unitSel.append(el("option", u));
}

// Puts `rows` into `body` in order, moving only what moved: a row whose data did not change
// keeps its element and its place, so one update costs one row, not a relayout of all.
function place(body, rows) {
  const keep = new Set(rows);
  for (const child of [...body.children]) if (!keep.has(child)) child.remove();
  let cursor = body.firstElementChild;
  for (const tr of rows) {
    if (tr === cursor) { cursor = cursor.nextElementSibling; continue; }
    body.insertBefore(tr, cursor);
  }
}

function renderPages() {
  const list = $("pages");
  const items = [];
  for (const [alertId, { pageId, alert }] of pages) {
    const li = el("li", null, "alert " + alert.level);
    const p = (alert.escalation && alert.escalation.page) || {};
    li.append(levelEl("span", alert.level), " ", el("strong", alert.rule), " for " + subject(alert) +
      (alert.unitId ? " in " + alert.unitId : "") + " · " + (p.pageId === pageId ? pageText(p) : "page sent"));
    li.append(el("div", alert.message, "facts"));
    // Receipt while the page waits for one, decline while it is this page's turn.
    const state = p.pageId === pageId ? p.state : "superseded";
    const actions = el("span", null, "actions");
    if (state === "sent") actions.append(actButton("Receipt", () => send({ type: "receipt", id: nextId(), pageId })));
    if (state === "sent" || state === "delivered") actions.append(actButton("Decline", () => openAction("decline", alert, pageId)));
    if (alert.state === "open" && mayAct(alert)) actions.append(actButton("Acknowledge", () => openAction("ack", alert)));
    li.append(actions);
    if (rowErrors.has(alertId)) li.append(el("div", rowErrors.get(alertId), "error"));
    items.push(li);
  }
  if (!items.length) items.push(el("li", "No pages for this token.", "muted"));
  list.replaceChildren(...items);
}

function delayAlertsFor(r) {
  return [...alerts.values()].filter((a) => a.category === "delay" && (
    a.resourceId === r.resourceId || a.providerId === r.resourceId ||
    (r.kind === "location" && !a.resourceId && !a.providerId && a.unitId === r.resourceId)));
}
function alertList(list) {
  const td = el("td");
  if (!list.length) { td.append(el("span", "none", "muted")); return td; }
  const ul = el("ul", null, "alerts");
  for (const a of list) ul.append(alertItem(a));
  td.append(ul);
  return td;
}
// Who waits in an area, the longest first, with the minutes waited (from the later of
// check-in and the scheduled start).
function waitingCell(r) {
  const td = el("td");
  const list = r.waitingPatients || [];
  td.append(el("div", (r.waiting ?? 0) + " waiting" + (list.length < (r.waiting ?? 0) ? " (longest " + list.length + " listed)" : "")));
  if (list.length) {
    const ul = el("ul", null, "waiters");
    for (const w of list) ul.append(el("li", w.patientId + " · " + w.waitedMinutes + " min (" + w.appointmentId + ", checked in " + time(w.checkedInAt) + ")"));
    td.append(ul);
  }
  return td;
}
function renderPractice() {
  const byKind = { location: [], provider: [], resource: [] };
  for (const r of resources.values()) (byKind[r.kind] || byKind.resource).push(r);
  const sorted = (list) => list.sort((a, b) => (b.delayMinutes || 0) - (a.delayMinutes || 0) || a.resourceId.localeCompare(b.resourceId));
  const fill = (id, list, cells) => {
    const trs = sorted(list).map((r) => { const tr = el("tr"); tr.append(...cells(r), alertList(delayAlertsFor(r))); return tr; });
    if (!trs.length) { const tr = el("tr"); const td = el("td", "None reported yet.", "muted"); td.colSpan = 6; tr.append(td); trs.push(tr); }
    $(id).replaceChildren(...trs);
  };
  fill("waiting", byKind.location, (r) => [el("td", r.resourceId), el("td", r.status),
    waitingCell(r), el("td", r.delayMinutes ? r.delayMinutes + " min" : "–")]);
  fill("providers", byKind.provider, (r) => [el("td", r.resourceId), el("td", r.unitId || ""),
    el("td", r.status), el("td", r.delayMinutes ? r.delayMinutes + " min late on average" : "on time")]);
  fill("rooms", byKind.resource, (r) => [el("td", r.resourceId), el("td", r.unitId || ""), el("td", r.status),
    el("td", r.expectedFreeAt ? time(r.expectedFreeAt) : "–"), el("td", r.delayMinutes ? r.delayMinutes + " min over" : "–")]);
}

function showCounts() {
  const by = { critical: 0, warning: 0, info: 0 };
  for (const a of alerts.values()) by[a.level] = (by[a.level] || 0) + 1;
  $("counts").textContent = alerts.size + " open: " + by.critical + " critical, " + by.warning +
    " warning, " + by.info + " info · " + patients.size + " patient(s)";
}
function render() {
  renderTimer = null;
  renderDue = Infinity;
  if (view === "ward") { renderWard(); renderPages(); } else renderPractice();
  showCounts();
}

// A new critical alert (opened, or upgraded to critical) is announced to screen readers, its
// row flashes and, when asked for, a tone sounds (made here: no audio file to fetch).
let audio = null;
function tone() {
  try {
    audio = audio || new AudioContext();
    const o = audio.createOscillator(), g = audio.createGain();
    o.frequency.value = 880; g.gain.value = 0.2;
    o.connect(g).connect(audio.destination);
    o.start(); o.stop(audio.currentTime + 0.4);
  } catch (e) { log("cannot sound the alert tone: " + e, "error"); }
}
function arrived(a) {
  const t = a.transition || {};
  const critical = a.level === "critical" && a.state === "open" && (t.from === null || /upgrad/i.test(t.reason || ""));
  if (!critical) return;
  fresh.add(a.alertId);
  setTimeout(() => { fresh.delete(a.alertId); schedule(); }, 6000);
  $("announce").textContent = "New critical alert: " + a.rule + " for " + subject(a) +
    (a.unitId ? " in " + a.unitId : "") + ". " + a.message;
  if ($("sound").checked) tone();
}

function upsertAlert(a) {
  if (a.state === "resolved") alerts.delete(a.alertId); else alerts.set(a.alertId, a);
  const paged = pages.get(a.alertId);
  if (paged) { if (a.state === "resolved") pages.delete(a.alertId); else paged.alert = a; }
  if (panelFor && a.patientId === panelFor) refreshPanel();
}
function onFrame(f) {
  switch (f.type) {
    case "subscribed": log("subscribed"); break;
    case "snapshot":
      // A fresh snapshot replaces whatever was shown before (a reconnect starts here).
      alerts.clear();
      for (const a of f.alerts || []) upsertAlert(a);
      rowCache.clear();
      schedule(true); break;
    case "alert": upsertAlert(f.alert); arrived(f.alert); schedule(true); break;
    case "patient":
      patients.set(f.patientId, f);
      addSpark(f.patientId, f.at, f.news2);
      schedule(); break;
    case "resource": resources.set(f.kind + ":" + f.resourceId, f); schedule(); break;
    case "page": pages.set(f.alert.alertId, { pageId: f.pageId, alert: f.alert }); log("page " + f.pageId); schedule(true); break;
    case "result": pending.delete(f.id); log("result " + f.id + ": ok"); break;
    case "error": {
      log("error " + (f.id || "") + " " + f.code + ": " + f.message, "error");
      const p = pending.get(f.id);
      if (p) { pending.delete(f.id); rowErrors.set(p.alertId, f.message); rowCache.clear(); schedule(true); }
      break;
    }
    case "pong": break;
    default: log("unknown frame " + f.type);
  }
}

// The patient panel: scores, every open alert's explanation, NEWS2 and each vital over the
// window, labs, and each alert's timeline from the audit trail.
function chart(title, points, fmt) {
  const box = el("div", null, "chart");
  const last = points.length ? points[points.length - 1] : null;
  box.append(el("div", title + (last ? ": " + fmt(last.value) + " at " + time(last.at) : ": no readings"), "muted"));
  if (points.length === 0) return box;
  const ns = "http://www.w3.org/2000/svg", w = 240, h = 100, left = 34, right = 6, top = 8, bottom = 16;
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 " + w + " " + h);
  svg.setAttribute("role", "img");
  const ts = points.map((p) => Date.parse(p.at)), vs = points.map((p) => Number(p.value));
  const t0 = ts[0], t1 = ts[ts.length - 1], lo = Math.min(...vs), hi = Math.max(...vs);
  const x = (t) => left + (t1 === t0 ? 0.5 : (t - t0) / (t1 - t0)) * (w - left - right);
  const y = (v) => h - bottom - (hi === lo ? 0.5 : (v - lo) / (hi - lo)) * (h - top - bottom);
  const axis = document.createElementNS(ns, "polyline");
  axis.setAttribute("points", left + "," + top + " " + left + "," + (h - bottom) + " " + (w - right) + "," + (h - bottom));
  axis.setAttribute("class", "axis");
  const line = document.createElementNS(ns, "polyline");
  line.setAttribute("points", points.map((p, i) => x(ts[i]).toFixed(1) + "," + y(vs[i]).toFixed(1)).join(" "));
  svg.append(axis, line);
  for (let i = 0; i < points.length; i++) {
    const dot = document.createElementNS(ns, "circle");
    dot.setAttribute("cx", x(ts[i]).toFixed(1)); dot.setAttribute("cy", y(vs[i]).toFixed(1)); dot.setAttribute("r", 1.8);
    svg.append(dot);
  }
  const label = (text, lx, ly, anchor) => {
    const t = document.createElementNS(ns, "text");
    t.setAttribute("x", lx); t.setAttribute("y", ly); t.setAttribute("text-anchor", anchor);
    t.textContent = text; svg.append(t);
  };
  if (hi === lo) label(fmt(hi), left - 3, y(hi) + 3, "end");
  else { label(fmt(hi), left - 3, top + 4, "end"); label(fmt(lo), left - 3, h - bottom, "end"); }
  label(time(t0), left, h - 3, "start"); if (t1 !== t0) label(time(t1), w - right, h - 3, "end");
  svg.setAttribute("aria-label", title + " from " + fmt(vs[0]) + " at " + time(t0) + " to " + fmt(vs[vs.length - 1]) +
    " at " + time(t1) + "; lowest " + fmt(lo) + ", highest " + fmt(hi));
  box.append(svg);
  return box;
}
function explanation(a) {
  const box = el("div", null, "explanation");
  box.append(el("h3", levelText(a.level) + " " + a.rule + " (" + a.state + ")"), el("div", a.message));
  const x = a.explanation || {};
  // The engine writes the times inside these sentences in UTC.
  box.append(el("div", "Why: " + (x.why || "")), el("div", "Why now (times in UTC): " + (x.whyNow || "")));
  // The first eight inputs (the sepsis model lists its largest contributions first); the
  // others one click away.
  const table = (rows) => {
    const t = el("table");
    const head = el("tr");
    for (const h of ["Input", "Value", "Points / contribution", "Observed"]) head.append(el("th", h));
    t.append(head, ...rows);
    return t;
  };
  const shown = (v) => typeof v === "number" && !Number.isInteger(v) ? String(Number(v.toFixed(2)))
    : typeof v === "object" && v !== null ? JSON.stringify(v) : v;
  const rows = (x.components || []).map((c) => {
    const tr = el("tr");
    const weight = c.contribution !== undefined && c.contribution !== null
      ? (c.contribution >= 0 ? "+" : "") + Number(c.contribution).toFixed(2) + " log-odds" : c.points;
    tr.append(el("td", c.name), el("td", shown(c.value)), el("td", weight), el("td", c.observedAt ? dateTime(c.observedAt) : ""));
    return tr;
  });
  box.append(table(rows.slice(0, 8)));
  if (rows.length > 8) {
    const more = el("details");
    more.append(el("summary", "the other " + (rows.length - 8) + " inputs"), table(rows.slice(8)));
    box.append(more);
  }
  return box;
}
async function timeline(a) {
  const box = el("div", null, "timeline");
  box.append(el("h3", "Timeline of " + a.rule));
  const r = await api("/api/alerts/" + encodeURIComponent(a.alertId) + "/history");
  if (!r.ok) { box.append(el("div", "Audit trail not available: " + ((r.body && r.body.message) || "HTTP " + r.status), "error")); return box; }
  const ul = el("ul");
  for (const h of r.body.history || []) {
    const t = h.transition || {};
    const page = h.escalation && h.escalation.page ? " · " + pageText(h.escalation.page) : "";
    ul.append(el("li", time(t.at) + "  " + (t.from || "new") + " → " + t.to + " · " + h.level +
      " · level " + ((h.escalation && h.escalation.level) ?? "-") + " · by " + (t.by || "") +
      (t.reason ? " (" + t.reason + ")" : "") + page));
  }
  box.append(ul);
  return box;
}
async function refreshPanel() {
  const id = panelFor;
  if (!id) return;
  const r = await api("/api/patients/" + encodeURIComponent(id));
  if (panelFor !== id) return;
  const scores = $("panel-scores"), body = $("panel-body");
  const mine = [...alerts.values()].filter((a) => a.patientId === id);
  const parts = [];
  if (!r.ok) {
    scores.replaceChildren(el("div", (r.body && r.body.message) || "HTTP " + r.status, "error"));
  } else {
    const v = r.body, s = v.scores || {};
    $("panel-title").textContent = v.patientId + " · " + v.unitId + (v.bedId ? " · bed " + v.bedId : "");
    const n = s.news2 || {};
    scores.replaceChildren(el("div", "NEWS2 " + (n.total ?? "–") + " (" + band(n.total, n.single3).word + ")" +
      (n.at ? " at " + time(n.at) : "") + " · qSOFA " + (s.qsofa ? s.qsofa.value : "–") + " · SIRS " +
      (s.sirs ? s.sirs.value : "–") + " · sepsis risk " + percent(s.sepsisRisk && s.sepsisRisk.value) +
      " · window " + v.horizonMinutes + " min"));
    const sr = v.series, whole = (x) => String(x);
    const charts = el("div", null, "charts");
    // The window keeps each minute's lowest NEWS2; the current score follows it.
    const news2 = sr.news2.slice();
    if (n.at && (!news2.length || Date.parse(n.at) > Date.parse(news2[news2.length - 1].at))) news2.push({ at: n.at, value: n.total });
    charts.append(chart("NEWS2 (each minute's lowest, then now)", news2, whole), chart("Heart rate /min", sr.hr, whole), chart("Resp. rate /min", sr.rr, whole),
      chart("SpO2 %", sr.spo2, whole), chart("Systolic BP mmHg", sr.sbp, whole), chart("Temperature °C", sr.temp, (x) => Number(x).toFixed(1)),
      chart("GCS", sr.gcs, whole));
    const avpu = sr.consciousness.filter((p) => p.value !== "A").map((p) => p.value + " at " + time(p.at));
    const o2 = sr.onOxygen.filter((p) => p.value).length;
    parts.push(el("h3", "Over the window"), charts,
      el("div", "Consciousness: " + (avpu.length ? avpu.join(", ") : "alert (A) throughout")),
      el("div", "Supplemental oxygen: " + (o2 ? "given in " + o2 + " minute(s)" : "none recorded")));
    if (v.labs.length) {
      const t = el("table"); const head = el("tr");
      for (const h of ["Lab", "Results (collected)"]) head.append(el("th", h));
      t.append(head);
      for (const l of v.labs) { const tr = el("tr"); tr.append(el("td", l.code), el("td", l.results.map((x) => x.value + " at " + time(x.at)).join(", "))); t.append(tr); }
      parts.push(el("h3", "Labs"), t);
    }
  }
  const explanations = el("div");
  for (const a of mine) explanations.append(explanation(a));
  const timelines = await Promise.all(mine.map(timeline));
  if (panelFor !== id) return;
  body.replaceChildren(el("h3", mine.length ? "Open alerts" : "No open alerts"), explanations, ...parts, ...timelines);
}
function openPanel(id) {
  panelFor = id;
  $("panel-title").textContent = id;
  $("panel-scores").replaceChildren(el("div", "Loading…", "muted"));
  $("panel-body").replaceChildren();
  $("panel").hidden = false;
  $("panel").dataset.back = id;
  $("panel-title").focus();
  refreshPanel();
}
function closePanel() {
  const id = panelFor;
  panelFor = null;
  $("panel").hidden = true;
  const back = document.querySelector('button[aria-label="Details for ' + CSS.escape(id || "") + '"]');
  if (back) back.focus();
}

function setView(v) {
  view = v;
  $("ward").hidden = v !== "ward";
  $("practice").hidden = v !== "practice";
  $("filters").hidden = v !== "ward";
  $("view-ward").setAttribute("aria-pressed", String(v === "ward"));
  $("view-practice").setAttribute("aria-pressed", String(v === "practice"));
  rowCache.clear();
  render();
}

document.addEventListener("DOMContentLoaded", () => {
  setupActionForm((alertId) => { rowErrors.delete(alertId); rowCache.clear(); schedule(true); });
  $("view-ward").onclick = () => setView("ward");
  $("view-practice").onclick = () => setView("practice");
  $("panel-close").onclick = closePanel;
  document.addEventListener("keydown", (e) => { if (e.key === "Escape" && panelFor) closePanel(); });
  for (const id of ["f-unit", "f-level", "f-state", "f-mine", "f-alerting"]) $(id).onchange = () => { rowCache.clear(); schedule(true); };
  $("pager-link").onclick = () => { $("pager-link").href = "/pager" + (conn.token() ? "?token=" + encodeURIComponent(conn.token()) : ""); };
  if (location.hash === "#practice") setView("practice");
  startConnection(["alerts", "patients", "resources", "pages"], onFrame, () => { rowCache.clear(); schedule(true); });
});
