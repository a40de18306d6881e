// @ts-check
// towerco-notify NOC dashboard: ES modules on the official socket.io-client (a classic
// script: `io`) and oidc-client-ts (`oidc`), no build step, no CDN.
import { createIncidentList } from "./dashboard-list.js";
import { createDetail } from "./dashboard-detail.js";
import { createOps } from "./dashboard-ops.js";
import { createSiteMap } from "./dashboard-map.js";
import { createMe } from "./dashboard-me.js";
import { createReport } from "./dashboard-report.js";
import { createSignIn } from "./dashboard-signin.js";
import { TowercoPush } from "./dashboard-push.js";
import { claimsOf, createNotifyClient, createSseClient, createWsClient } from "./notify-client.js";

/** @type {(id: string) => any} the page's elements, by id (inputs, buttons, lists) */
const $ = (id) => document.getElementById(id);
const incidents = new Map();
const sites = new Map();
const unseen = new Set();
let socket = null;  // the connection: notify-client.js, over the transport `kind` names
let muted = localStorage.getItem("towerco.muted") === "1";
let audio = null;

function beep() {
  if (muted) return;
  try {
    audio = audio || new (window.AudioContext || window.webkitAudioContext)();
    const osc = audio.createOscillator(), gain = audio.createGain();
    osc.type = "square"; osc.frequency.value = 880;
    gain.gain.setValueAtTime(0.08, audio.currentTime);
    gain.gain.exponentialRampToValueAtTime(0.0001, audio.currentTime + 0.6);
    osc.connect(gain).connect(audio.destination);
    osc.start(); osc.stop(audio.currentTime + 0.6);
  } catch { /* no audio device: the toast still shows */ }
}
function renderMute() { $("mute").textContent = muted ? "sound off" : "sound on"; $("mute").dataset.muted = muted ? "1" : "0"; }
function renderUnread(now) {
  const b = $("unread"); b.textContent = `${unseen.size} unread`; b.classList.toggle("none", unseen.size === 0);
  if (now) list.now(); else list.refresh();
}
// A burst (a storm at a site) folds into one summary toast instead of a wall of them.
const burst = { events: [], timer: null };
function toast(ev) {
  burst.events.push(ev);
  if (!burst.timer) burst.timer = setTimeout(flushToasts, 400);
}
function flushToasts() {
  const evs = burst.events; burst.events = []; burst.timer = null;
  const show = (cls, text) => {
    const t = el("div", "toast " + cls, text);
    $("toasts").append(t);
    setTimeout(() => t.remove(), 8000);
    while ($("toasts").children.length > 5) $("toasts").firstChild.remove();
  };
  if (evs.length <= 3) {
    for (const ev of evs) show(ev.priority, `${ev.priority.toUpperCase()}: ${ev.incident.title}${ev.site_id ? " @ " + ev.site_id : ""}`);
    return;
  }
  const worst = evs.some((e) => e.priority === "critical") ? "critical" : "major";
  const sites = [...new Set(evs.map((e) => e.site_id || "tenant-wide"))];
  show(worst + " summary", `${evs.length} incidents at ${sites.slice(0, 3).join(", ")}${sites.length > 3 ? "…" : ""}`);
}

// Filters: severity, status, mine (taken by me), and a text search over title/site/id.
const filter = { severity: "", status: "", mine: false, text: "", site: "" };
function visibleInList(inc) {
  if (filter.severity && inc.severity !== filter.severity) return false;
  if (filter.status && inc.status !== filter.status) return false;
  if (filter.mine && inc.assignee !== me) return false;
  if (filter.site && inc.site_id !== filter.site) return false;
  const hay = `${inc.title} ${inc.site_id || ""} ${inc.incident_id}`.toLowerCase();
  return !filter.text || hay.includes(filter.text);
}
function applyFilters() { list.now(); }  // a user action: at once
function setSite(siteId) {
  filter.site = siteId;
  $("filter-site").hidden = !siteId;
  $("filter-site").textContent = siteId ? `site ${siteId} ×` : "";
  for (const t of sites.values()) t.node.classList.toggle("chosen", t.node.dataset.site === siteId);
  applyFilters();
}
const STATUS_RANK = { open: 0, snoozed: 1, acknowledged: 2, resolved: 3 };
const SEV_RANK = { critical: 0, major: 1, minor: 2, warning: 3, info: 4 };
let arrival = 0;
// open first, then the worst severity, then the newest
function compare(a, b) {
  return (STATUS_RANK[a.status] ?? 9) - (STATUS_RANK[b.status] ?? 9) || (SEV_RANK[a.severity] ?? 9) - (SEV_RANK[b.severity] ?? 9) ||
    (b.t || 0) - (a.t || 0) || (b.seq || 0) - (a.seq || 0);
}
let selected = null;
let me = null;
let deepLink = null;  // #incident=<id>: a page's link opens that incident

// `#transport=polling` forces Socket.IO's long-polling fallback (proxies that block
// WebSocket); `ws` is ADR-010's plain WebSocket, `sse` Server-Sent Events. Read again
// after an OIDC sign-in, which brings the fragment back from the issuer.
let hash, kind, transports;
function readHash() {
  hash = new URLSearchParams(location.hash.slice(1));
  kind = hash.get("transport") || "socketio";
  transports = kind === "polling" ? ["polling"] : ["websocket", "polling"];
  deepLink = hash.get("incident");
}
readHash();
function tokenFromPage() {
  const fromHash = hash.get("token");
  if (fromHash) { localStorage.setItem("towerco.token", fromHash); history.replaceState(null, "", location.pathname + (hash.get("transport") ? "#transport=" + hash.get("transport") : "")); }
  // the token stays out of the address bar and history; localStorage keeps it for reloads
  return fromHash || localStorage.getItem("towerco.token");
}
let store = "towerco.unknown";  // per tenant and user: a shared browser keeps them apart
let authToken = null;
function persist() {
  const recent = [...incidents.values()].slice(-200);
  localStorage.setItem(store + ".incidents", JSON.stringify(recent));
}
function restore() {
  try { for (const inc of JSON.parse(localStorage.getItem(store + ".incidents") || "[]")) { incidents.set(inc.incident_id, inc); renderIncident(inc); } }
  catch { /* a corrupt cache is dropped */ }
}
function setStatus(state, text) { const b = $("status"); b.className = "badge " + state; b.dataset.state = state; b.textContent = text || state; }
function el(tag, cls, text) { const e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e; }

function renderIncident(inc) {
  if (!inc.seq) inc.seq = ++arrival;
  list.update(inc);
  if (detail) detail.changed(inc);
  if (inc.site_id) { const t = sites.get(inc.site_id); if (t) scheduleTiles(); }
  countSoon();
}
let countTimer = null;
function countSoon() {
  if (countTimer) return;
  countTimer = setTimeout(() => { countTimer = null; $("incident-count").textContent = String([...incidents.values()].filter((i) => i.status !== "resolved").length); }, 30);
}
function renderRow(li, inc) {
  li.className = `${inc.severity} ${inc.status}${inc.suppressed ? " suppressed" : ""}${unseen.has(inc.incident_id) ? " unseen" : ""}${selected === inc.incident_id ? " selected" : ""}`;
  li.replaceChildren();
  li.append(el("span", "sev", inc.severity));
  const body = el("div");
  body.append(el("div", "title", inc.title));
  body.append(el("div", "meta", `${inc.site_id || "tenant-wide"} · ${inc.incident_id} · ${inc.status}${inc.by ? " by " + inc.by : ""}${inc.assignee ? " · taken by " + inc.assignee : ""}`));
  if (inc.suppressed) body.append(el("div", "quiet", `quiet: ${inc.suppressed.by}${inc.suppressed.until ? " until " + inc.suppressed.until : ""}`));
  li.append(body);
  const actions = el("div");
  if (inc.status === "open") actions.append(button("Acknowledge", inc, "acknowledge"));
  if (inc.status !== "resolved") actions.append(button("Resolve", inc, "resolve"));
  li.append(actions);
  li.onclick = (e) => { if (e.target.tagName !== "BUTTON") { select(inc.incident_id); detail.open(inc); } };
}
function select(id) { selected = id; list.refresh(); if (id) setTimeout(() => list.reveal(id), 40); }
function act(id, action, extra) {
  return socket.action(id, action, extra);
}
async function api(method, path, body) {
  try {
    const r = await fetch(path, { method, headers: { Authorization: `Bearer ${authToken}`, "Content-Type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });
    return { status: r.status, body: await r.json().catch(() => ({})) };
  } catch { return { status: 0, body: {} }; }
}
function button(label, inc, action) {
  const b = el("button", "action-" + action, label);
  b.onclick = async () => {
    const ack = await act(inc.incident_id, action);
    if (!ack || !ack.ok) alert("Action failed: " + (ack && ack.error));
  };
  return b;
}
// Site grid: every site known (statuses, windows, incidents, KPIs) with its worst open severity
const siteInfo = new Map();
let tileTimer = null;
// worst open severity per site: one pass over the incidents per tile refresh (batched),
// read by every tile render (a KPI update re-renders its tile, many a second)
let worstBySite = new Map();
function scheduleTiles() {
  if (tileTimer) return;
  tileTimer = setTimeout(() => {
    tileTimer = null;
    worstBySite = new Map();
    for (const inc of incidents.values()) {
      if (!inc.site_id || inc.status === "resolved") continue;
      const w = worstBySite.get(inc.site_id);
      if (w === undefined || (SEV_RANK[inc.severity] ?? 9) < (SEV_RANK[w] ?? 9)) worstBySite.set(inc.site_id, inc.severity);
    }
    // grouped by region (sites.yaml), then in site order; sites not in the inventory last
    const region = (id) => (siteInfo.get(id) || {}).region || "";
    const order = [...sites.keys()].sort((x, y) => (region(x) || "\uffff").localeCompare(region(y) || "\uffff") || x.localeCompare(y));
    const grid = [];
    let last = null;
    for (const id of order) {
      renderTile(id);
      if (region(id) !== last && (region(id) || last)) {
        last = region(id);
        const head = el("h3", "region", last || "other sites");
        head.dataset.region = last;
        grid.push(head);
      }
      grid.push(sites.get(id).node);
    }
    $("sites").replaceChildren(...grid);
    siteMap.render(siteInfo, worstBySite, (id) => (sites.get(id) && sites.get(id).status) || (siteInfo.get(id) || {}).status);
  }, 100);
}
// new tiles' KPI subscriptions go out together, 500 sites a call (the server's limit),
// not one emit per tile: 10 000 sites are 20 calls
let kpiQueue = [];
function subscribeKpis(siteId) {
  if (kpiQueue.push(siteId) > 1) return;
  setTimeout(() => {
    const all = kpiQueue;
    kpiQueue = [];
    for (let i = 0; i < all.length; i += 500) {
      const part = all.slice(i, i + 500);
      socket.subscribeKpis(part).then((ack) => {  // kept: sent again after a reconnect
        for (const id of part) {
          const snap = ack && ack.snapshot && ack.snapshot[id];
          if (snap && sites.get(id)) { Object.assign(sites.get(id).kpis, snap.kpi_data); renderTile(id); }
        }
      });
    }
  }, 50);
}
function tile(siteId) {
  let t = sites.get(siteId);
  if (!t) {
    t = { node: el("div", "tile"), kpis: {} };
    t.node.dataset.site = siteId;
    t.node.title = "Show only this site's incidents (click again: all sites)";
    t.node.onclick = () => setSite(filter.site === siteId ? "" : siteId);
    sites.set(siteId, t);
    $("sites").append(t.node);
    scheduleTiles();
    subscribeKpis(siteId);
    renderTile(siteId);
  }
  return t;
}
function renderTile(siteId) {
  const t = tile(siteId);
  const info = siteInfo.get(siteId) || {};
  const status = t.status || info.status || "up";
  const worst = worstBySite.get(siteId) || null;
  t.node.replaceChildren(el("strong", null, siteId));
  if (info.name && info.name !== siteId) t.node.append(el("span", "site-name", info.name));
  t.node.dataset.region = info.region || "";
  t.node.className = "tile " + status + (worst ? " worst-" + worst : "") + (info.maintenance ? " in-maintenance" : "");
  t.node.dataset.status = status;
  t.node.dataset.worst = worst || "";
  if (worst) t.node.append(el("span", "worst", worst));
  if (info.maintenance) t.node.append(el("span", "maint-badge", "maintenance" + (info.maintenance.until ? " until " + new Date(info.maintenance.until).toLocaleTimeString() : "")));
  for (const [name, v] of Object.entries(t.kpis)) {
    const row = el("div", "kpi" + (t.breach && t.breach[name] ? " breach" : ""));
    row.append(el("span", null, name), el("span", null, String(v)));
    t.node.append(row);
  }
  const series = t.series && Object.values(t.series)[0];
  if (series && series.length > 1) t.node.append(sparkline(series));
}

const handlers = {
  incident_alert(ev) {
    const known = incidents.get(ev.incident.incident_id);
    incidents.set(ev.incident.incident_id, { ...ev.incident, severity: ev.priority, suppressed: ev.suppressed || null,
      t: (known && known.t) || Date.parse(ev.timestamp) || Date.now(),
      status: known && known.status !== "resolved" ? known.status : "open" });
    renderIncident(incidents.get(ev.incident.incident_id));
    persist();
    if (!known) { unseen.add(ev.incident.incident_id); renderUnread(); }
    if (ev.site_id) tile(ev.site_id);
    // a suppressed incident (maintenance, silence, inhibition) is shown quietly
    const loud = !replaying && !ev.suppressed;
    if (loud && (ev.priority === "critical" || ev.priority === "major")) toast(ev);
    if (loud && ev.priority === "critical") { beep(); TowercoPush.notify(ev).catch(() => {}); }
  },
  incident_update(ev) {
    const inc = incidents.get(ev.incident_id) || { incident_id: ev.incident_id, title: ev.incident_id, severity: "info", site_id: ev.site_id };
    inc.status = ev.status; inc.by = ev.by;
    if ("suppressed" in ev) inc.suppressed = ev.suppressed;
    if ("assignee" in ev) inc.assignee = ev.assignee;
    inc.snoozed_until = ev.status === "snoozed" ? (ev.until || inc.snoozed_until) : null;
    incidents.set(ev.incident_id, inc); renderIncident(inc); persist();
  },
  incident_viewers(ev) { detail.viewers(ev); },
  escalation(ev) {
    const b = $("escalation"); b.hidden = false;
    b.textContent = `Escalation level ${ev.level}: ${ev.incident && ev.incident.title ? ev.incident.title : ev.incident_id} is not acknowledged`;
  },
  site_status(ev) { const t = tile(ev.site_id); t.status = ev.status; renderTile(ev.site_id); scheduleTiles(); if (ev.status === "maintenance" || t.wasMaint) ops.refresh(); t.wasMaint = ev.status === "maintenance"; },
  presence(ev) {
    const n = ev.count ?? ev.users.length;
    const names = ev.users.slice(0, 8).map((u) => u.user_id).join(", ");
    $("presence").textContent = `${n} online: ${names}${n > 8 ? ", …" : ""}`;
    $("presence").dataset.count = String(n);
  },
  kpi_update(ev) {
    const t = tile(ev.site_id); Object.assign(t.kpis, ev.kpi_data);
    t.series = t.series || {};
    for (const [k, v] of Object.entries(ev.kpi_data)) { (t.series[k] = t.series[k] || []).push(v); if (t.series[k].length > 30) t.series[k].shift(); }
    t.breach = {}; for (const b of ev.threshold_breach || []) if (b.level !== "ok") t.breach[b.kpi] = true;
    renderTile(ev.site_id);
  },
  system_notification(ev) { const li = el("li", null, `[${ev.priority}] ${ev.title}: ${ev.message}`); $("system").prepend(li); },
};

// the client's state on the badge: `live`, `live (ws)`, `live (sse)`, `polling fallback`...
function showState(state) {
  if (state.startsWith("live")) setStatus("live", state);
  else setStatus(state === "polling fallback" ? "polling" : state, state);
}
function sparkline(values) {
  const svgNS = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(svgNS, "svg");
  svg.setAttribute("class", "spark"); svg.setAttribute("viewBox", "0 0 100 28"); svg.setAttribute("preserveAspectRatio", "none");
  const lo = Math.min(...values), hi = Math.max(...values), span = hi - lo || 1;
  const pts = values.map((v, i) => `${(i / (values.length - 1)) * 100},${26 - ((v - lo) / span) * 24}`).join(" ");
  const line = document.createElementNS(svgNS, "polyline"); line.setAttribute("points", pts);
  svg.append(line);
  return svg;
}
let replaying = false;

// The open incidents as the daemon knows them (a fresh screen shows them all at once);
// `replace`: the local list may be missing events (recovered: false), drop what is not there.
async function loadIncidents(replace) {
  let body;
  try {
    const r = await fetch("/api/v1/incidents?limit=20000", { headers: { Authorization: `Bearer ${authToken}` } });
    if (!r.ok) return;
    body = await r.json();
  } catch { return; }
  const listed = new Set();
  for (const inc of body.incidents) {
    listed.add(inc.incident_id);
    const known = incidents.get(inc.incident_id) || {};
    incidents.set(inc.incident_id, { ...known, incident_id: inc.incident_id, title: inc.title || known.title || inc.incident_id,
      severity: inc.severity, site_id: inc.site_id, status: inc.status, by: inc.acknowledged_by || known.by,
      assignee: inc.assignee, suppressed: inc.suppressed, snoozed_until: inc.snoozed_until, opened_at: inc.opened_at,
      t: typeof inc.opened_at === "number" ? inc.opened_at : Date.parse(inc.opened_at) || known.t || 0 });
    renderIncident(incidents.get(inc.incident_id));
    if (inc.site_id) tile(inc.site_id);
  }
  if (replace) {
    for (const id of [...incidents.keys()]) {
      if (listed.has(id)) continue;
      incidents.delete(id); unseen.delete(id); list.remove(id);
    }
    for (const siteId of sites.keys()) {  // KPI state again too: the snapshot
      socket.emit("subscribe_kpis", { site_ids: [siteId] }).then((ack) => {
        const snap = ack && ack.snapshot && ack.snapshot[siteId];
        if (snap) { Object.assign(sites.get(siteId).kpis, snap.kpi_data); renderTile(siteId); }
      });
    }
    renderUnread();
  }
  list.now();
  $("incident-count").textContent = String([...incidents.values()].filter((i) => i.status !== "resolved").length);
  persist();
  ops.refresh();
  myPaging.refresh();
  report.refresh();
  const wanted = deepLink;
  if (wanted && incidents.get(wanted)) { deepLink = null; select(wanted); detail.open(incidents.get(wanted)); }
  document.body.dataset.loaded = replace ? "reloaded" : "loaded";
}

// A token in the fragment or pasted (kept in localStorage for a wall screen's reloads),
// or signed in with the daemon's OpenID provider (kept in this tab's sessionStorage and
// renewed: `authToken` changes, and every reconnect of every transport sends the new one).
const signIn = createSignIn({
  onToken: (fresh) => {  // the sign-in's own token arrives through connect()
    if (!authToken || fresh === authToken) return;
    authToken = fresh;
    document.body.dataset.renewals = String(++renewals);
  },
  onFailed: (message) => showSignin(message),
});
let renewals = 0;
function showSignin(message) {
  if (socket) { socket.close(); socket = null; }
  authToken = null;
  setStatus("offline"); $("board").hidden = true; $("signin").hidden = false; $("signout").hidden = true;
  $("signin-form").hidden = signIn.active; $("oidc-signin").hidden = !signIn.active;
  $("auth-error").hidden = !message; $("auth-error").textContent = message || "";
}
$("oidc-signin").onclick = () => signIn.signIn();
$("signout").onclick = async () => {
  if (signIn.active) { if (socket) socket.close(); await signIn.signOut(); return; }
  localStorage.removeItem("towerco.token");
  showSignin("Signed out.");
};

function connect(token) {
  $("signin").hidden = true; $("board").hidden = false; $("signout").hidden = false;
  authToken = token;
  const c = claimsOf(token);
  me = c.sub || null;
  store = `towerco.${c.tenant_id || "unknown"}.${c.sub || "unknown"}`;
  restore();
  // resume from where this browser left off (per tenant and user): missed events first,
  // then live; each event once; every reconnect with the current (renewed) token
  const opts = { token: () => authToken, storage: localStorage, storagePrefix: store };
  const wsUrl = `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}`;
  socket = kind === "ws" ? createWsClient({ ...opts, url: wsUrl })
    : kind === "sse" ? createSseClient({ ...opts, url: "" })
    : createNotifyClient({ ...opts, io, url: location.origin, transports });
  socket.onState(showState);
  socket.on("connect", () => {
    document.body.dataset.connects = String(Number(document.body.dataset.connects || 0) + 1);
  });
  socket.on("auth_failed", () => {
    if (!signIn.active) localStorage.removeItem("towerco.token");
    showSignin("Token refused or expired: sign in again.");
  });
  socket.on("connection_established", (ev) => {
    $("tenant").textContent = `${ev.tenant_id} · ${ev.user_id}`;
    replaying = !!socket.lastId;  // a resume replays first
    loadIncidents(false);
  });
  socket.on("sync_complete", () => { replaying = false; });
  socket.on("reload", () => loadIncidents(true));  // the history could not prove the replay whole
  for (const [name, fn] of Object.entries(handlers)) socket.on(/** @type {any} */ (name), fn);
}

const list = createIncidentList($("incident-scroll"), $("incidents"), { rowHeight: 64, renderRow, compare, visible: visibleInList,
  rendered: (order) => { $("incidents").dataset.rows = String(order.length); } });
const detail = createDetail({ $, el, api: (m, p, b) => api(m, p, b), act, socket: () => socket });
const siteMap = createSiteMap({ $, el });
const ops = createOps({ $, el, api: (m, p, b) => api(m, p, b), onSites: (found) => {
  for (const s of found) { siteInfo.set(s.site_id, s); tile(s.site_id); }
  scheduleTiles();
} });
const myPaging = createMe({ $, el, api: (m, p, b) => api(m, p, b) });
const report = createReport({ $, el, api: (m, p, b) => api(m, p, b) });
setInterval(() => { if (authToken) ops.refresh(); }, 30000);
// Keyboard: j/k or arrows move, Enter opens, a acknowledges, r resolves, t takes, / searches, Esc closes
document.addEventListener("keydown", (e) => {
  const typing = ["INPUT", "TEXTAREA", "SELECT"].includes(document.activeElement && document.activeElement.tagName);
  if (typing) { if (e.key === "Escape") /** @type {HTMLElement} */ (document.activeElement).blur(); return; }
  const order = list.order;
  const at = order.findIndex((i) => i.incident_id === selected);
  const pick = (i) => { const inc = order[Math.max(0, Math.min(order.length - 1, i))]; if (inc) { select(inc.incident_id); if (detail.current) detail.open(inc); } };
  const cur = selected && incidents.get(selected);
  if (e.key === "j" || e.key === "ArrowDown") pick(at + 1);
  else if (e.key === "k" || e.key === "ArrowUp") pick(at - 1);
  else if (e.key === "Enter" && cur) detail.open(cur);
  else if (e.key === "Escape") detail.close();
  else if (e.key === "/") { e.preventDefault(); $("filter-text").focus(); }
  else if (cur && (e.key === "a" || e.key === "r" || e.key === "t")) {
    const action = { a: "acknowledge", r: "resolve", t: cur.assignee ? "release" : "take" }[e.key];
    act(cur.incident_id, action).then((ack) => { if (ack && ack.ok && e.key === "a") pick(at + 1); });
  } else return;
  e.preventDefault();
});
$("unread").onclick = () => { unseen.clear(); renderUnread(true); };
for (const [id, key] of [["filter-severity", "severity"], ["filter-status", "status"]]) {
  $(id).onchange = () => { filter[key] = $(id).value; applyFilters(); };
}
$("filter-mine").onchange = () => { filter.mine = $("filter-mine").checked; applyFilters(); };
$("filter-site").onclick = () => setSite("");
$("filter-text").oninput = () => { filter.text = $("filter-text").value.trim().toLowerCase(); applyFilters(); };
$("push").onclick = async () => {
  const b = $("push"); b.disabled = true;
  const state = await TowercoPush.enable(authToken).catch(() => "unsupported");
  b.dataset.state = state; b.disabled = false;
  b.textContent = { subscribed: "notifying", "notifications-only": "notify (while open)", denied: "notifications blocked", unsupported: "no notifications" }[state] || state;
};
$("mute").onclick = () => { muted = !muted; localStorage.setItem("towerco.muted", muted ? "1" : "0"); renderMute(); };
renderMute(); renderUnread();
$("signin-form").onsubmit = (e) => { e.preventDefault(); const t = $("token-input").value.trim(); if (t) { localStorage.setItem("towerco.token", t); connect(t); } };
async function boot() {
  const token = tokenFromPage();
  if (token) { connect(token); return; }
  const answer = await signIn.start();
  if (answer && answer.token) { readHash(); connect(answer.token); }
  else if (!answer || !answer.redirecting) showSignin(answer && answer.signIn);
}
boot();
