// towerco-notify client: a small layer over the official socket.io-client.
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
// snapshot again instead of trusting the local list; it drops duplicates by id; it reconnects with exponential backoff and jitter
// (socket.io-client's own, capped) and re-subscribes KPI sites after each reconnect.
// `createSseClient` is the same interface over Server-Sent Events, for networks that block
// WebSockets but pass text/event-stream.
// Served by the daemon at /static/notify-client.js (an ES module, no dependencies).

const EVENTS = ["incident_alert", "kpi_update", "site_status", "system_notification", "presence", "incident_viewers",
  "escalation", "incident_update", "sync_complete", "connection_established"];

function memoryStorage() {
  const data = new Map();
  return { getItem: (k) => (data.has(k) ? data.get(k) : null), setItem: (k, v) => data.set(k, String(v)) };
}

function tenantOf(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const json = typeof atob === "function" ? atob(payload) : Buffer.from(payload, "base64").toString();
    return JSON.parse(json).tenant_id || "unknown";
  } catch { return "unknown"; }
}

function compareIds(a, b) {
  const [am, as] = a.split("-").map(Number);
  const [bm, bs] = b.split("-").map(Number);
  return am === bm ? as - bs : am - bm;
}

// What every transport's client shares: the resume point (last id and epoch) in storage,
// duplicates dropped by id, local handlers, the "reload" signal on recovered: false.
function clientCore(token, storage) {
  const store = storage || (typeof localStorage !== "undefined" ? localStorage : memoryStorage());
  const key = `towerco.${tenantOf(token)}.last_id`;
  const epochKey = `towerco.${tenantOf(token)}.epoch`;
  const handlers = new Map();
  const stateHandlers = new Set();
  const core = {
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

export function createNotifyClient({ io, url, token, storage, transports, maxBackoffMs = 30000 }) {
  const core = clientCore(token, storage);
  const sites = new Set();
  function resumeAuth() {
    if (!core.lastId) return { token };
    return core.epoch ? { token, last_id: core.lastId, epoch: core.epoch } : { token, last_id: core.lastId };
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

  function showTransport() {
    core.setState(socket.io.engine && socket.io.engine.transport.name === "websocket" ? "live" : "polling fallback");
  }

  socket.on("connect", () => {
    showTransport();
    socket.io.engine.on("upgrade", showTransport);
    if (sites.size) socket.emit("subscribe_kpis", { site_ids: [...sites] }, () => {});
  });
  socket.on("disconnect", () => core.setState("reconnecting"));
  socket.io.on("reconnect_attempt", () => core.setState("reconnecting"));
  socket.io.on("reconnect_failed", () => core.setState("offline"));
  socket.on("connect_error", (err) => {
    if (String(err && err.message) === "authentication failed") {
      socket.io.opts.reconnection = false;
      core.setState("offline");
      core.emitLocal("auth_failed", err);
    }
  });

  for (const name of EVENTS) {
    socket.on(name, (ev) => {
      if (!core.accept(name, ev)) return;
      if (name === "incident_alert" && ev.requires_acknowledgment) {
        socket.emit("received", { id: ev.id }, () => {});
      }
      core.emitLocal(name, ev);
    });
  }

  const ack = (event, data) => new Promise((resolve) => socket.emit(event, data, resolve));

  return Object.assign(core.api, {
    async subscribeKpis(siteIds) {
      const answer = await ack("subscribe_kpis", { site_ids: siteIds });
      if (answer && answer.ok) for (const s of answer.granted) sites.add(s);
      return answer;
    },
    action: (incidentId, action) => ack("incident_action", { incident_id: incidentId, action }),
    close() { socket.close(); core.setState("offline"); },
    socket,
  });
}

// The fallback for networks that block WebSockets but pass `text/event-stream`: the same
// interface over Server-Sent Events (GET /api/v1/notifications/stream) and the HTTP API for
// actions. The browser's EventSource reconnects by itself and resumes with Last-Event-ID.
//   const client = createSseClient({ url: "https://noc.example.com", token });
export function createSseClient({ url = "", token, storage, EventSource: ES, fetch: doFetch, kpiSites = [] }) {
  const core = clientCore(token, storage);
  const Source = ES || globalThis.EventSource;
  const http = doFetch || globalThis.fetch.bind(globalThis);
  const sites = new Set(kpiSites);
  let source = null;
  let closed = false;

  function open() {
    if (source) source.close();
    const q = new URLSearchParams({ token });
    if (sites.size) q.set("kpi_sites", [...sites].join(","));
    if (core.lastId) q.set("last_id", core.lastId);
    if (core.lastId && core.epoch) q.set("epoch", core.epoch);
    source = new Source(`${url}/api/v1/notifications/stream?${q}`);
    source.onopen = () => core.setState("live (sse)");
    source.onerror = () => {
      if (closed) return;
      if (source.readyState === 2) {  // CLOSED: refused (401/403), it will not retry
        core.setState("offline");
        core.emitLocal("auth_failed", new Error("authentication failed"));
      } else core.setState("reconnecting");
    };
    for (const name of EVENTS) {
      source.addEventListener(name, (m) => {
        let ev;
        try { ev = JSON.parse(m.data); } catch { return; }
        if (core.accept(name, ev)) core.emitLocal(name, ev);
      });
    }
  }
  open();

  return Object.assign(core.api, {
    async subscribeKpis(siteIds) {
      const added = siteIds.filter((s) => !sites.has(s));
      for (const s of added) sites.add(s);
      if (added.length) open();  // from where it stands: last id and epoch
      return { ok: true, granted: siteIds, denied: [] };
    },
    async action(incidentId, action) {
      const r = await http(`${url}/api/v1/incidents/${encodeURIComponent(incidentId)}/${encodeURIComponent(action)}`,
        { method: "POST", headers: { Authorization: `Bearer ${token}` } });
      const body = await r.json().catch(() => ({}));
      return { ok: r.ok, ...body };
    },
    close() { closed = true; if (source) source.close(); core.setState("offline"); },
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
