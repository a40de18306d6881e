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
// Served by the daemon at /static/notify-client.js (an ES module, no dependencies).

const EVENTS = ["incident_alert", "kpi_update", "site_status", "system_notification",
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

export function createNotifyClient({ io, url, token, storage, transports, maxBackoffMs = 30000 }) {
  const store = storage || (typeof localStorage !== "undefined" ? localStorage : memoryStorage());
  const key = `towerco.${tenantOf(token)}.last_id`;
  const epochKey = `towerco.${tenantOf(token)}.epoch`;
  const handlers = new Map();
  const stateHandlers = new Set();
  const sites = new Set();
  let state = "offline";
  let lastId = store.getItem(key);
  let epoch = store.getItem(epochKey);
  function setEpoch(next) {
    epoch = next || null;
    if (epoch) store.setItem(epochKey, epoch); else if (store.removeItem) store.removeItem(epochKey);
  }
  function resumeAuth() {
    if (!lastId) return { token };
    return epoch ? { token, last_id: lastId, epoch } : { token, last_id: lastId };
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

  function setState(next) {
    if (next === state) return;
    state = next;
    for (const fn of stateHandlers) fn(state);
  }
  function showTransport() {
    setState(socket.io.engine && socket.io.engine.transport.name === "websocket" ? "live" : "polling fallback");
  }

  socket.on("connect", () => {
    showTransport();
    socket.io.engine.on("upgrade", showTransport);
    if (sites.size) socket.emit("subscribe_kpis", { site_ids: [...sites] }, () => {});
  });
  socket.on("disconnect", () => setState("reconnecting"));
  socket.io.on("reconnect_attempt", () => setState("reconnecting"));
  socket.io.on("reconnect_failed", () => setState("offline"));
  socket.on("connect_error", (err) => {
    if (String(err && err.message) === "authentication failed") {
      socket.io.opts.reconnection = false;
      setState("offline");
      emitLocal("auth_failed", err);
    }
  });

  function emitLocal(name, data) {
    for (const fn of handlers.get(name) || []) fn(data);
  }

  for (const name of EVENTS) {
    socket.on(name, (ev) => {
      // every stored event has an id in its tenant's order: drop what we already have
      if (ev && ev.id && !["connection_established", "sync_complete"].includes(name)) {
        if (lastId && compareIds(ev.id, lastId) <= 0) return;
        lastId = ev.id;
        store.setItem(key, ev.id);
      }
      // a fresh start adopts the history's epoch; a resume learns it from sync_complete
      if (name === "connection_established" && !lastId) setEpoch(ev.epoch);
      if (name === "sync_complete") {
        setEpoch(ev.epoch);
        if (!ev.recovered) emitLocal("reload", ev);
      }
      if (name === "incident_alert" && ev.requires_acknowledgment) {
        socket.emit("received", { id: ev.id }, () => {});
      }
      emitLocal(name, ev);
    });
  }

  const ack = (event, data) => new Promise((resolve) => socket.emit(event, data, resolve));

  return {
    on(name, fn) {
      if (!handlers.has(name)) handlers.set(name, new Set());
      handlers.get(name).add(fn);
      return () => handlers.get(name).delete(fn);
    },
    onState(fn) { stateHandlers.add(fn); fn(state); return () => stateHandlers.delete(fn); },
    get state() { return state; },
    get lastId() { return lastId; },
    get epoch() { return epoch; },
    async subscribeKpis(siteIds) {
      const answer = await ack("subscribe_kpis", { site_ids: siteIds });
      if (answer && answer.ok) for (const s of answer.granted) sites.add(s);
      return answer;
    },
    action: (incidentId, action) => ack("incident_action", { incident_id: incidentId, action }),
    close() { socket.close(); setState("offline"); },
    socket,
  };
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
