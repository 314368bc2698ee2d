"use strict";
// What every staff view shares (contracts.md section 5): one WebSocket with reconnection and a
// fresh snapshot each time, a banner that says whether what is shown is live, who the token is
// (GET /api/me), times in one named zone, and the inline action form with reason presets.
// Every frame is rendered as text, never as HTML.

const $ = (id) => document.getElementById(id);
function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}
const ICON = { critical: "▲", warning: "◆", info: "●" };
const RANK = { critical: 0, warning: 1, info: 2 };
// The level as an icon and the word, coloured: colour is never the only cue.
function levelText(level) { return (ICON[level] || "") + " " + level; }
function levelEl(tag, level) { return el(tag, levelText(level), "level " + level); }
// What an alert is about: its patient, resource or provider.
function subject(a) { return a.patientId || a.resourceId || a.providerId || ""; }

// Times are the browser's, in one zone named in the header; ages and countdowns are relative
// ("open 4 min", "escalates in 2:10") and kept current every second.
const ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone || "local time";
function time(t) { return t ? new Date(t).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" }) : ""; }
function dateTime(t) { return t ? new Date(t).toLocaleString() : ""; }
function age(since) {
  const min = Math.floor((Date.now() - Date.parse(since)) / 60000);
  return min < 1 ? "<1 min" : min < 60 ? min + " min" : Math.floor(min / 60) + " h " + (min % 60) + " min";
}
function countdown(until) {
  const s = Math.max(0, Math.round((Date.parse(until) - Date.now()) / 1000));
  return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
}
// A risk (0..1) as a percentage with one decimal; "–" when there is none.
function percent(r) { return r === null || r === undefined ? "–" : (r * 100).toFixed(1) + " %"; }
// An element whose text is "PREFIX <age of since>" or "PREFIX <time left to until>".
function relative(tag, prefix, attr, at, cls) {
  const e = el(tag, null, cls);
  e.dataset.prefix = prefix;
  e.dataset[attr] = at;
  e.title = dateTime(at) + " (" + ZONE + ")";
  refreshRelative(e);
  return e;
}
function refreshRelative(e) {
  e.textContent = e.dataset.prefix + (e.dataset.since ? age(e.dataset.since) : countdown(e.dataset.until));
}
setInterval(() => { for (const e of document.querySelectorAll("[data-prefix]")) refreshRelative(e); }, 1000);

function log(text, cls) {
  const box = $("log");
  if (!box) return;
  box.prepend(el("div", time(Date.now()) + "  " + text, cls));
  while (box.childNodes.length > 100) box.lastChild.remove();
}

// The connection. `live` once the socket is open and the snapshot has arrived; `dataAt` is when
// the data shown was last known current. Views register `onFrame` and `onLiveChange`.
const conn = {
  ws: null, retry: 0, seq: 0, wanted: false, live: false, dataAt: null, me: null,
  channels: [], onFrame: () => {}, onLiveChange: () => {},
  token: () => $("token").value.trim(),
};
function setStatus(text, cls) {
  $("status").textContent = text;
  $("status").className = cls;
}
// Live, or not: every action button follows.
function setLive(on) {
  conn.live = on;
  for (const b of document.querySelectorAll("button.act")) b.disabled = !on;
  if ($("action-confirm")) $("action-confirm").disabled = !on;
  if (on) { conn.dataAt = Date.now(); setStatus("Live", "live"); }
  conn.onLiveChange(on);
}
function showStale() {
  if (conn.live || !conn.wanted) return;
  const secs = conn.dataAt ? Math.round((Date.now() - conn.dataAt) / 1000) : null;
  setStatus("Reconnecting (attempt " + conn.retry + ")" + (secs === null ? ": no data yet"
    : ": showing data from " + time(conn.dataAt) + ", " + secs + " s old"), "stale");
}
setInterval(showStale, 1000);
function send(frame) {
  if (conn.live && conn.ws && conn.ws.readyState === WebSocket.OPEN) { conn.ws.send(JSON.stringify(frame)); return true; }
  log("not live: command not sent", "error");
  return false;
}
function nextId() { return "c" + (++conn.seq); }
// An action button: disabled while not live (and kept so by `setLive`).
function actButton(label, onclick, title) {
  const b = el("button", label, "act");
  b.type = "button";
  b.disabled = !conn.live;
  b.onclick = onclick;
  if (title) b.setAttribute("aria-label", title);
  return b;
}
function mayAct(a) { return !!conn.me && (conn.me.acts || []).includes(a.category); }

// Who the token is, and whether the server refused it: the WebSocket cannot say why its upgrade
// failed, so the page asks /api/me (401 with a reason for a token not accepted).
async function whoAmI(token) {
  let r;
  try { r = await fetch("/api/me", { headers: { Authorization: "Bearer " + token } }); }
  catch (e) { return { down: true }; }
  if (r.ok) return { me: await r.json() };
  let why = "HTTP " + r.status;
  try { const body = await r.json(); why = body.code + ": " + body.message; } catch (e) { /* keep the status */ }
  return r.status === 401 || r.status === 403 ? { refused: why } : { down: true };
}
// A JSON GET with the token; `{ok, status, body}`.
async function api(path) {
  try {
    const r = await fetch(path, { headers: { Authorization: "Bearer " + conn.token() } });
    let body = null;
    try { body = await r.json(); } catch (e) { /* not JSON */ }
    return { ok: r.ok, status: r.status, body };
  } catch (e) {
    return { ok: false, status: 0, body: { message: "the server cannot be reached" } };
  }
}
function refuse(why) {
  conn.wanted = false;
  setLive(false);
  setStatus("Refused: token not accepted (" + why + ")", "down");
  log("the server refused the token: " + why, "error");
}
async function connect() {
  const token = conn.token();
  if (!token) { setStatus("Not connected: enter a token", "down"); return; }
  sessionStorage.setItem("vigil-token", token);
  conn.wanted = true;
  if (conn.ws) { conn.ws.onclose = null; conn.ws.close(); conn.ws = null; }
  if (conn.retry === 0) setStatus("Connecting", "stale");
  const who = await whoAmI(token);
  if (who.refused) { refuse(who.refused); return; }
  if (who.me) { conn.me = who.me; if ($("who")) $("who").textContent = who.me.name + " (" + who.me.role + ")"; }
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const sock = new WebSocket(scheme + "//" + location.host + "/ws?token=" + encodeURIComponent(token));
  conn.ws = sock;
  sock.onopen = () => {
    conn.retry = 0;
    sock.send(JSON.stringify({ type: "subscribe", id: "s" + (++conn.seq), channels: conn.channels }));
  };
  sock.onmessage = (m) => {
    let f;
    try { f = JSON.parse(m.data); } catch (e) { log("unreadable frame", "error"); return; }
    if (conn.live) conn.dataAt = Date.now();
    if (f.type === "snapshot") setLive(true);
    conn.onFrame(f);
  };
  sock.onclose = (e) => {
    if (conn.ws !== sock) return;
    setLive(false);
    if (!conn.wanted) return;
    // Alerts are never dropped: a slow client is closed with 1013 and resynced from a snapshot.
    conn.retry++;
    showStale();
    const delay = Math.min(10000, 500 * 2 ** Math.min(conn.retry, 5));
    log("connection lost (" + e.code + "); reconnecting in " + (delay / 1000).toFixed(1) + " s");
    setTimeout(() => { if (conn.wanted && conn.ws === sock) connect(); }, delay);
  };
}
function startConnection(channels, onFrame, onLiveChange) {
  conn.channels = channels;
  conn.onFrame = onFrame;
  conn.onLiveChange = onLiveChange || (() => {});
  $("zone").textContent = "times: " + ZONE;
  $("connect").onclick = connect;
  $("token").addEventListener("keydown", (e) => { if (e.key === "Enter") connect(); });
  const fromUrl = new URLSearchParams(location.search).get("token");
  const saved = fromUrl || sessionStorage.getItem("vigil-token");
  if (saved) { $("token").value = saved; connect(); }
  setInterval(() => { if (conn.ws && conn.ws.readyState === WebSocket.OPEN) conn.ws.send('{"type":"ping"}'); }, 25000);
}

// Actions: acknowledge, snooze and resolve (and a pager's decline), each with a reason from
// presets and free text, in one inline form (never window.prompt).
const PRESETS = {
  ack: ["Assessing now", "Seen, plan in place", "Known to the team"],
  snooze: ["Reassess after intervention", "Awaiting results", "Expected, being treated"],
  resolve: ["Treated", "Condition improved", "Artefact: false alarm", "Patient transferred"],
  decline: ["With another patient", "Not my patient", "Off duty"],
};
const VERB = { ack: "Acknowledge", snooze: "Snooze", resolve: "Resolve", decline: "Decline the page of" };
const pending = new Map();   // command id -> { alertId, type }
let acting = null;           // { type, alertId, pageId, back }
function openAction(type, a, pageId) {
  acting = { type, alertId: a.alertId, pageId, back: document.activeElement };
  $("action-what").textContent = VERB[type] + " " + a.rule + " for " + subject(a) + ":";
  $("action-minutes-label").hidden = type !== "snooze";
  const preset = $("action-preset");
  preset.replaceChildren(...PRESETS[type].map((r) => el("option", r)), el("option", "Other (details)"));
  $("action-text").value = "";
  $("action-error").textContent = "";
  $("action").classList.add("shown");
  preset.focus();
}
function closeAction() {
  const back = acting && acting.back;
  acting = null;
  $("action").classList.remove("shown");
  if (back && document.contains(back)) back.focus();
}
// The form's fields, built once into the page's empty `<form id="action">`.
function buildActionForm() {
  const form = $("action");
  const minutes = el("select"); minutes.id = "action-minutes";
  for (const [v, text] of [["15", "15 min"], ["30", "30 min"], ["60", "1 h"], ["120", "2 h"]]) {
    const o = el("option", text); o.value = v; o.selected = v === "30"; minutes.append(o);
  }
  const minutesLabel = el("label", "for "); minutesLabel.id = "action-minutes-label"; minutesLabel.append(minutes);
  const preset = el("select"); preset.id = "action-preset";
  const presetLabel = el("label", "reason "); presetLabel.append(preset);
  const text = el("input"); text.id = "action-text"; text.type = "text"; text.maxLength = 500;
  text.placeholder = "details (optional)"; text.setAttribute("aria-label", "details");
  const confirm = el("button", "Confirm"); confirm.id = "action-confirm"; confirm.type = "submit";
  const cancel = el("button", "Cancel"); cancel.id = "action-cancel"; cancel.type = "button";
  const error = el("span", null, "error"); error.id = "action-error"; error.setAttribute("role", "alert");
  const what = el("strong"); what.id = "action-what";
  form.replaceChildren(what, minutesLabel, presetLabel, text, confirm, cancel, error);
}
function setupActionForm(onSent) {
  buildActionForm();
  $("action-cancel").onclick = closeAction;
  $("action").addEventListener("keydown", (e) => { if (e.key === "Escape") closeAction(); });
  $("action").onsubmit = (e) => {
    e.preventDefault();
    if (!acting) return;
    const preset = $("action-preset").value, text = $("action-text").value.trim();
    const reason = preset.startsWith("Other") ? text : text ? preset + ": " + text : preset;
    if (!reason) { $("action-error").textContent = "Give a reason in the details."; return; }
    const frame = acting.type === "decline"
      ? { type: "decline", id: nextId(), pageId: acting.pageId, reason }
      : { type: acting.type, id: nextId(), alertId: acting.alertId, reason };
    if (acting.type === "snooze") frame.minutes = Number($("action-minutes").value);
    if (!send(frame)) { $("action-error").textContent = "Not live: nothing was sent."; return; }
    pending.set(frame.id, { alertId: acting.alertId, type: acting.type });
    log(acting.type + " " + acting.alertId + " sent (" + frame.id + ")");
    if (onSent) onSent(acting.alertId);
    closeAction();
  };
}
