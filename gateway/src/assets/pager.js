"use strict";
// The pager view (GET /pager), phone-sized first: one card per paged alert, with the patient,
// unit, rule, score and the one-line why. A card's page is receipted as soon as the card is on
// a visible screen and shows as delivered once the engine says so; accept acknowledges the
// alert, decline (with a reason) escalates it to the next level at once. A page sent again
// (same page id, one more attempt) updates its card; it never makes a second one.

const cards = new Map();       // alertId -> { pageId, alert, note, error, declined }
const receipted = new Set();   // "pageId#attempt" receipts sent
let renderTimer = null;
function schedule() { if (!renderTimer) renderTimer = setTimeout(render, 100); }

function pageOf(card) {
  const p = card.alert.escalation && card.alert.escalation.page;
  return p && p.pageId === card.pageId ? p : null;
}
function score(a) {
  const m = a.meta || {};
  const parts = [];
  if (m.news2 !== undefined && m.news2 !== null) parts.push("NEWS2 " + m.news2);
  if (m.qsofa !== undefined && m.qsofa !== null) parts.push("qSOFA " + m.qsofa);
  if (m.sepsisRisk !== undefined && m.sepsisRisk !== null) parts.push("sepsis risk " + percent(m.sepsisRisk));
  return parts.join(" · ");
}
// Receipts go out for the cards on a visible screen (and again for a page sent again).
function receiptShown() {
  if (document.hidden || !conn.live) return;
  for (const card of cards.values()) {
    const p = pageOf(card);
    const attempt = p ? p.attempts : 1;
    const key = card.pageId + "#" + attempt;
    if ((p && p.state !== "sent") || receipted.has(key)) continue;
    const id = nextId();
    if (send({ type: "receipt", id, pageId: card.pageId })) {
      receipted.add(key);
      pending.set(id, { alertId: card.alert.alertId, type: "receipt" });
      card.note = "receipt sent";
    }
  }
}
function card(c) {
  const a = c.alert;
  const p = pageOf(c);
  const box = el("article", null, "card " + a.level);
  box.dataset.alertId = a.alertId;
  box.dataset.pageId = c.pageId;
  box.append(el("h2", levelText(a.level) + " " + (a.patientId || subject(a)) + (a.bedId ? " · bed " + a.bedId : "") +
    (a.unitId ? " · " + a.unitId : "")));
  box.append(el("div", a.rule + (score(a) ? " · " + score(a) : "")));
  box.append(el("div", (a.explanation && a.explanation.why) || a.message, "facts why"));
  const state = p ? p.state : c.declined ? "declined" : "moved on";
  const line = el("div", null, "facts");
  line.append(el("span", "Page " + state, "state page-state"), " · sent " + (p ? p.attempts : 1) + " time(s)" +
    (p ? " · last at " + time(p.sentAt) : "") + " · alert " + a.state + " · ");
  line.append(relative("span", "open ", "since", a.openedAt, "age"));
  box.append(line);
  if (c.declined && a.escalation) box.append(el("div", "You declined: escalated to level " + a.escalation.level + " (" + (a.escalation.targets || []).join(", ") + ")", "facts"));
  if (c.note) box.append(el("div", c.note, "muted"));
  const actions = el("div", null, "actions");
  if (a.state === "open" && mayAct(a)) {
    actions.append(actButton("Accept", () => {
      const id = nextId();
      if (send({ type: "ack", id, alertId: a.alertId, reason: "Accepted on pager" })) {
        pending.set(id, { alertId: a.alertId, type: "ack" });
        c.note = "accepting…"; schedule();
      }
    }, "Accept " + a.rule + " for " + subject(a)));
  }
  if (p && (p.state === "sent" || p.state === "delivered")) {
    actions.append(actButton("Decline", () => { c.declining = true; openAction("decline", a, c.pageId); },
      "Decline the page for " + subject(a)));
  }
  if (!p || a.state !== "open") actions.append(actButton("Dismiss", () => { cards.delete(a.alertId); schedule(); }));
  box.append(actions);
  if (c.error) box.append(el("div", c.error, "error"));
  return box;
}
function render() {
  renderTimer = null;
  const list = [...cards.values()].sort((x, y) =>
    (RANK[x.alert.level] ?? 9) - (RANK[y.alert.level] ?? 9) || String(y.alert.openedAt).localeCompare(String(x.alert.openedAt)));
  const main = $("cards");
  if (!list.length) {
    main.replaceChildren(el("p", conn.live ? "No pages for you." : conn.dataAt ? "No pages as of " + time(conn.dataAt) + " (not live)."
      : "Not connected: no pages shown.", "muted"));
    return;
  }
  main.replaceChildren(...list.map(card));
}

function onFrame(f) {
  switch (f.type) {
    case "subscribed": log("subscribed"); break;
    case "snapshot": {
      // Cards whose alert is resolved go; the others take the snapshot's version.
      const open = new Map((f.alerts || []).map((a) => [a.alertId, a]));
      for (const [id, c] of cards) { if (open.has(id)) c.alert = open.get(id); else cards.delete(id); }
      // Pages this token already receipted (unreceipted ones are sent again as `page` frames).
      for (const a of open.values()) {
        const p = a.escalation && a.escalation.page;
        if (p && conn.me && p.by === conn.me.name && !cards.has(a.alertId)) cards.set(a.alertId, { pageId: p.pageId, alert: a });
      }
      schedule(); break;
    }
    case "page": {
      const a = f.alert, had = cards.get(a.alertId);
      cards.set(a.alertId, { pageId: f.pageId, alert: a, note: had && had.pageId === f.pageId ? had.note : null });
      if (!had || had.pageId !== f.pageId) {
        $("announce").textContent = "Page: " + levelText(a.level) + " " + a.rule + " for " + subject(a) + (a.unitId ? " in " + a.unitId : "");
      }
      receiptShown();
      schedule(); break;
    }
    case "alert": {
      const c = cards.get(f.alert.alertId);
      if (c) {
        if (f.alert.state === "resolved") cards.delete(f.alert.alertId);
        else { c.alert = f.alert; const p = pageOf(c); if (p && p.state !== "sent") c.note = null; }
        schedule();
      }
      break;
    }
    case "result": {
      const p = pending.get(f.id);
      pending.delete(f.id);
      if (p && cards.has(p.alertId)) {
        const c = cards.get(p.alertId);
        c.error = null;
        if (p.type === "decline") c.declined = true;
        schedule();
      }
      log("result " + f.id + ": ok"); break;
    }
    case "error": {
      log("error " + (f.id || "") + " " + f.code + ": " + f.message, "error");
      const p = pending.get(f.id);
      if (p) { pending.delete(f.id); const c = cards.get(p.alertId); if (c) { c.error = f.message; c.note = null; schedule(); } }
      break;
    }
    case "pong": break;
    default: log("unknown frame " + f.type);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  setupActionForm(() => schedule());
  document.addEventListener("visibilitychange", receiptShown);
  startConnection(["alerts", "pages"], onFrame, (on) => { if (on) receiptShown(); schedule(); });
});
