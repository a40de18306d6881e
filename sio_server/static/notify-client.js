// @ts-check
// towerco-notify client: one implementation of the connection for browsers and Node, over
// the official socket.io-client, ADR-010's plain WebSocket, or Server-Sent Events.
//
//   import { io } from "socket.io-client";
//   import { createNotifyClient } from "./notify-client.js";
//   const client = createNotifyClient({ io, url: "https://noc.example.com", token });
//   client.on("incident_alert", (ev) => ...);      // typed events, each delivered once
//   client.onState((s) => ...);                    // "live" | "reconnecting" | "polling fallback" | "offline"
//   client.action("INC-1", "acknowledge");         // resolves with the server's ack
//
// It keeps the last event id and the history's epoch (localStorage in browsers, any
// {getItem, setItem} elsewhere) and resumes with both, so a reconnect replays what was
// missed, in order, before live events. When the server cannot prove the replay complete
// (`sync_complete {recovered: false}`: the history was reset or trimmed) it tells
// `client.on("reload", ...)`: load the open incidents (GET /api/v1/incidents) and KPI
// snapshot again instead of trusting the local list; it drops duplicates by id; it
// reconnects with exponential backoff and jitter (socket.io-client's own, capped) and
// re-subscribes KPI sites after each reconnect. `token` may be a function: a signed-in
// screen renews its token, and every reconnect sends the current one (the server ends a
// session whose token expired; the client comes back with the new token).
// `createSseClient` and `createWsClient` are the same interface over Server-Sent Events and
// the plain WebSocket, for networks that block one or the other.
// Served by the daemon at /static/notify-client.js (an ES module, no dependencies).

const EVENTS = ["incident_alert", "kpi_update", "site_status", "system_notification", "presence", "incident_viewers",
  "escalation", "incident_update", "sync_complete", "connection_established"];

/** @returns {{getItem(k: string): string | null, setItem(k: string, v: string): void, removeItem(k: string): void}} */
function memoryStorage() {
  const data = new Map();
  return { getItem: (k) => (data.has(k) ? data.get(k) : null), setItem: (k, v) => data.set(k, String(v)), removeItem: (k) => data.delete(k) };
}

/** The token's claims, unverified (the server verifies): tenant and user for keys and paths. */
export function claimsOf(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const json = typeof atob === "function" ? atob(payload) : globalThis.Buffer.from(payload, "base64").toString();
    return JSON.parse(json) || {};
  } catch { return {}; }
}

function compareIds(a, b) {
  const [am, as] = a.split("-").map(Number);
  const [bm, bs] = b.split("-").map(Number);
  return am === bm ? as - bs : am - bm;
}

/** @param {string | (() => string)} token */
function tokenGetter(token) {
  return typeof token === "function" ? token : () => token;
}

// What every transport's client shares: the resume point (last id and epoch) in storage,
// duplicates dropped by id, local handlers, the "reload" signal on recovered: false.
function clientCore(tokenOf, storage, storagePrefix) {
  const store = storage || (typeof localStorage !== "undefined" ? localStorage : memoryStorage());
  const prefix = storagePrefix || `towerco.${claimsOf(tokenOf()).tenant_id || "unknown"}`;
  const key = `${prefix}.last_id`;
  const epochKey = `${prefix}.epoch`;
  const handlers = new Map();
  const stateHandlers = new Set();
  const core = {
    tokenOf,
    lastId: store.getItem(key),
    epoch: store.getItem(epochKey),
    state: "offline",
    setEpoch(next) {
      core.epoch = next || null;
      if (core.epoch) store.setItem(epochKey, core.epoch); else if (store.removeItem) store.removeItem(epochKey);
    },
    setState(next) {
      if (next === core.state) return;
      core.state = next;
      for (const fn of stateHandlers) fn(next);
    },
    emitLocal(name, data) { for (const fn of handlers.get(name) || []) fn(data); },
    // an event from the server: false when it is a duplicate (already delivered)
    accept(name, ev) {
      if (ev && ev.id && !["connection_established", "sync_complete"].includes(name)) {
        if (core.lastId && compareIds(ev.id, core.lastId) <= 0) return false;
        core.lastId = ev.id;
        store.setItem(key, ev.id);
      }
      // a fresh start adopts the history's epoch; a resume learns it from sync_complete
      if (name === "connection_established" && !core.lastId) core.setEpoch(ev.epoch);
      if (name === "sync_complete") {
        core.setEpoch(ev.epoch);
        if (!ev.recovered) core.emitLocal("reload", ev);
      }
      return true;
    },
    // the query of the plain WebSocket and the stream: token, and where to resume
    resumeQuery() {
      const q = new URLSearchParams({ token: tokenOf() });
      if (core.lastId) q.set("last_id", core.lastId);
      if (core.lastId && core.epoch) q.set("epoch", core.epoch);
      return q;
    },
    api: {
      on(name, fn) {
        if (!handlers.has(name)) handlers.set(name, new Set());
        handlers.get(name).add(fn);
        return () => handlers.get(name).delete(fn);
      },
      onState(fn) { stateHandlers.add(fn); fn(core.state); return () => stateHandlers.delete(fn); },
      get state() { return core.state; },
      get lastId() { return core.lastId; },
      get epoch() { return core.epoch; },
    },
  };
  return core;
}

function deliver(core, name, ev, received) {
  if (!core.accept(name, ev)) return;
  if (name === "incident_alert" && ev.requires_acknowledgment) received(ev.id);
  core.emitLocal(name, ev);
}

export function createNotifyClient({ io, url, token, storage, storagePrefix, transports, maxBackoffMs = 30000 }) {
  const core = clientCore(tokenGetter(token), storage, storagePrefix);
  const sites = new Set();
  function resumeAuth() {
    const t = core.tokenOf();
    if (!core.lastId) return { token: t };
    return core.epoch ? { token: t, last_id: core.lastId, epoch: core.epoch } : { token: t, last_id: core.lastId };
  }

  const socket = io(url, {
    forceNew: true,
    transports: transports || ["websocket", "polling"],
    reconnection: true,
    reconnectionDelay: 1000,
    reconnectionDelayMax: maxBackoffMs,
    randomizationFactor: 0.5,
    auth: (cb) => cb(resumeAuth()),
  });
  let closed = false;

  function showTransport() {
    core.setState(socket.io.engine && socket.io.engine.transport.name === "websocket" ? "live" : "polling fallback");
  }

  socket.on("connect", () => {
    showTransport();
    socket.io.engine.on("upgrade", showTransport);
    if (sites.size) socket.emit("subscribe_kpis", { site_ids: [...sites] }, () => {});
    core.emitLocal("connect", null);
  });
  socket.on("disconnect", (reason) => {
    core.setState("reconnecting");
    // the server ended the session (its token expired or was revoked): Socket.IO does not
    // come back by itself; try with the current token (a renewed one is accepted, the same
    // expired one is refused: auth_failed)
    if (reason === "io server disconnect" && !closed) setTimeout(() => { if (!closed) socket.connect(); }, 300);
  });
  socket.io.on("reconnect_attempt", () => core.setState("reconnecting"));
  socket.io.on("reconnect_failed", () => core.setState("offline"));
  socket.on("connect_error", (err) => {
    if (String(err && err.message) === "authentication failed") {
      socket.io.opts.reconnection = false;
      core.setState("offline");
      core.emitLocal("auth_failed", err);
    }
  });

  const received = (id) => socket.emit("received", { id }, () => {});
  for (const name of EVENTS) socket.on(name, (ev) => deliver(core, name, ev, received));

  const ack = (event, data) => new Promise((resolve) => socket.emit(event, data, resolve));

  return Object.assign(core.api, {
    async subscribeKpis(siteIds) {
      const answer = await ack("subscribe_kpis", { site_ids: siteIds });
      if (answer && answer.ok) for (const s of answer.granted) sites.add(s);
      return answer;
    },
    action: (incidentId, action, extra) => ack("incident_action", { incident_id: incidentId, action, ...(extra || {}) }),
    // any client event, answered as the server answers it (view_incident, comment, ...)
    emit: (name, data) => ack(name, data),
    transport: "socketio",
    close() { closed = true; socket.close(); core.setState("offline"); },
    socket,
  });
}

// Actions over the HTTP API (the stream carries nothing back).
async function httpAction(http, url, token, incidentId, action, extra) {
  try {
    const r = await http(`${url}/api/v1/incidents/${encodeURIComponent(incidentId)}/${encodeURIComponent(action)}`, {
      method: "POST",
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
      body: extra && Object.keys(extra).length ? JSON.stringify(extra) : undefined,
    });
    const body = await r.json().catch(() => ({}));
    return { ok: r.ok, ...body };
  } catch (e) { return { ok: false, error: String(e) }; }
}

// The fallback for networks that block WebSockets but pass `text/event-stream`: the same
// interface over Server-Sent Events (GET /api/v1/notifications/stream) and the HTTP API for
// actions. The browser's EventSource reconnects by itself and resumes with Last-Event-ID.
//   const client = createSseClient({ url: "https://noc.example.com", token });
export function createSseClient({ url = "", token, storage, storagePrefix, EventSource: ES, fetch: doFetch, kpiSites = [] }) {
  const core = clientCore(tokenGetter(token), storage, storagePrefix);
  const Source = ES || globalThis.EventSource;
  const http = doFetch || globalThis.fetch.bind(globalThis);
  const sites = new Set(kpiSites);
  let source = null;
  let closed = false;
  let used = null;
  let backoff = 1000;

  async function refusesToken() {
    try {
      const r = await http(`${url}/api/v1/notifications?limit=1`, { headers: { Authorization: `Bearer ${core.tokenOf()}` } });
      return r.status === 401;
    } catch { return false; }  // no answer: not a refusal, try again
  }

  function open() {
    if (source) source.close();
    const q = core.resumeQuery();
    used = q.get("token");
    if (sites.size) q.set("kpi_sites", [...sites].join(","));
    const mine = new Source(`${url}/api/v1/notifications/stream?${q}`);
    source = mine;
    mine.onopen = () => { backoff = 1000; core.setState("live (sse)"); core.emitLocal("connect", null); };
    mine.onerror = () => {
      if (closed || source !== mine) return;
      core.setState("reconnecting");
      if (mine.readyState !== 2) return;  // the browser reconnects by itself (Last-Event-ID)
      // CLOSED: the answer was not a stream (refused, a 503, the page going away): an
      // EventSource cannot tell which, so ask the API whether the token is the reason
      if (core.tokenOf() !== used) { open(); return; }  // renewed meanwhile: the new one
      refusesToken().then((refused) => {
        if (closed || source !== mine) return;
        if (refused) {
          core.setState("offline");
          core.emitLocal("auth_failed", new Error("authentication failed"));
        } else {
          setTimeout(() => { if (!closed && source === mine) open(); }, backoff * (0.5 + Math.random()));
          backoff = Math.min(backoff * 2, 30000);
        }
      });
    };
    for (const name of EVENTS) {
      mine.addEventListener(name, (m) => {
        let ev;
        try { ev = JSON.parse(m.data); } catch { return; }
        deliver(core, name, ev, () => {});
      });
    }
  }
  open();

  async function subscribeKpis(siteIds) {
    const added = siteIds.filter((s) => !sites.has(s));
    for (const s of added) sites.add(s);
    if (added.length) open();  // from where it stands: last id and epoch
    return { ok: true, granted: siteIds, denied: [], snapshot: {} };
  }
  const action = (incidentId, act, extra) => httpAction(http, url, core.tokenOf(), incidentId, act, extra);
  return Object.assign(core.api, {
    subscribeKpis,
    action,
    async emit(name, data) {
      if (name === "incident_action") {
        const { incident_id: id, action: act, ...extra } = data;
        return action(id, act, extra);
      }
      if (name === "subscribe_kpis") return subscribeKpis(data.site_ids);
      return { ok: true };  // nothing else travels up a stream
    },
    transport: "sse",
    close() { closed = true; if (source) source.close(); core.setState("offline"); },
  });
}

// ADR-010's plain WebSocket: JSON frames, `?token=` and the resume point in the URL, client
// events answered as `<name>_result` frames (in order).
//   const client = createWsClient({ url: "wss://noc.example.com", token });
export function createWsClient({ url, token, storage, storagePrefix, WebSocket: WS, maxBackoffMs = 30000 }) {
  const core = clientCore(tokenGetter(token), storage, storagePrefix);
  const Socket = WS || globalThis.WebSocket;
  const waiting = new Map();  // answer type -> acks, in order
  const claims = claimsOf(core.tokenOf());
  const sites = new Set();
  let ws = null, backoff = 500, closed = false, used = null;

  function open() {
    const q = core.resumeQuery();
    used = q.get("token");
    const path = `/api/v1/notifications/ws/${encodeURIComponent(claims.tenant_id)}/${encodeURIComponent(claims.sub)}`;
    const mine = new Socket(`${url}${path}?${q}`);
    ws = mine;
    mine.onopen = () => {
      backoff = 500;
      core.setState("live (ws)");
      if (sites.size) send("subscribe_kpis", { site_ids: [...sites] });
      core.emitLocal("connect", null);
    };
    mine.onmessage = (m) => {
      let data;
      try { data = JSON.parse(m.data); } catch { return; }
      const acks = waiting.get(data.type);
      if (acks && acks.length) { acks.shift()(data); return; }
      if (EVENTS.includes(data.type)) deliver(core, data.type, data, (id) => send("received", { id }));
    };
    mine.onclose = (e) => {
      for (const acks of waiting.values()) while (acks.length) acks.shift()({ ok: false, error: "disconnected" });
      if (closed) return;
      // 1008: refused, or the session ended (token expired, revoked): with the same token
      // it is over; a token renewed meanwhile tries again
      if (e.code === 1008 && core.tokenOf() === used) {
        core.setState("offline");
        core.emitLocal("auth_failed", new Error("authentication failed"));
        return;
      }
      core.setState("reconnecting");
      setTimeout(open, backoff * (0.5 + Math.random()));
      backoff = Math.min(backoff * 2, maxBackoffMs);
    };
  }
  function send(name, data) {
    if (ws && ws.readyState === 1) { ws.send(JSON.stringify({ type: name, ...(data || {}) })); return true; }
    return false;
  }
  function emit(name, data) {
    return new Promise((resolve) => {
      const answer = name === "heartbeat" ? "heartbeat_ack" : `${name}_result`;
      if (!send(name, data)) { resolve({ ok: false, error: "not connected" }); return; }
      if (!waiting.has(answer)) waiting.set(answer, []);
      waiting.get(answer).push(resolve);
    });
  }
  open();

  return Object.assign(core.api, {
    async subscribeKpis(siteIds) {
      const answer = await emit("subscribe_kpis", { site_ids: siteIds });
      if (answer && answer.ok) for (const s of answer.granted || []) sites.add(s);
      return answer;
    },
    action: (incidentId, action, extra) => emit("incident_action", { incident_id: incidentId, action, ...(extra || {}) }),
    emit,
    transport: "ws",
    close() { closed = true; if (ws) ws.close(1000); core.setState("offline"); },
  });
}

// React: const { state, events } = useNotifications(React, client, ["incident_alert"]);
// (React is passed in so this file needs no bundler and no React at import time.)
export function useNotifications(React, client, names, limit = 200) {
  const [state, setState] = React.useState(client.state);
  const [events, setEvents] = React.useState([]);
  React.useEffect(() => client.onState(setState), [client]);
  React.useEffect(() => {
    const offs = names.map((n) => client.on(n, (ev) => setEvents((xs) => [ev, ...xs].slice(0, limit))));
    return () => offs.forEach((off) => off());
  }, [client, names.join(","), limit]);
  return { state, events };
}
