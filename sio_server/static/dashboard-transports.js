// towerco-notify dashboard: the plain WebSocket and SSE faces, shaped like a socket.io
// socket (`on`, `emit(name, data, ack)`, `io.engine`-free status), so the dashboard code is
// the same whichever transport carries it. `#transport=ws|sse` picks one.
(function () {
  "use strict";

  function claims(token) {
    try { return JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/"))); }
    catch { return {}; }
  }

  function emitter() {
    const listeners = new Map();
    return {
      on(name, fn) { if (!listeners.has(name)) listeners.set(name, []); listeners.get(name).push(fn); },
      fire(name, data) { for (const fn of listeners.get(name) || []) fn(data); },
    };
  }

  // ADR-010's plain WebSocket: JSON frames; client events answered `<name>_result`.
  // `tokenOf()`: the current token (a renewed sign-in changes it); each reconnect sends it.
  function wsConnection(tokenOf, resumePoint) {
    const ev = emitter();
    const waiting = new Map();  // answer type -> acks, in order
    const c = claims(tokenOf());
    let ws = null, backoff = 500, stopped = false, used = null;
    function url() {
      const { lastId, epoch } = resumePoint();
      used = tokenOf();
      const q = new URLSearchParams({ token: used });
      if (lastId) q.set("last_id", lastId);
      if (lastId && epoch) q.set("epoch", epoch);
      const proto = location.protocol === "https:" ? "wss:" : "ws:";
      return `${proto}//${location.host}/api/v1/notifications/ws/${encodeURIComponent(c.tenant_id)}/${encodeURIComponent(c.sub)}?${q}`;
    }
    function open() {
      ws = new WebSocket(url());
      ws.onopen = () => { backoff = 500; ev.fire("connect"); };
      ws.onmessage = (m) => {
        let data; try { data = JSON.parse(m.data); } catch { return; }
        const acks = waiting.get(data.type);
        if (acks && acks.length) { acks.shift()(data); return; }
        ev.fire(data.type, data);
      };
      ws.onclose = (e) => {
        for (const acks of waiting.values()) while (acks.length) acks.shift()({ ok: false, error: "disconnected" });
        // 1008: refused or the session ended (token expired, revoked); a token renewed
        // meanwhile tries again, the same token is done
        if (e.code === 1008 && tokenOf() === used) { stopped = true; ev.fire("connect_error", { message: "authentication failed" }); return; }
        if (stopped) return;
        ev.fire("disconnect");
        setTimeout(open, backoff); backoff = Math.min(backoff * 2, 30000);
      };
    }
    open();
    return {
      transportName: "ws",
      on: ev.on,
      emit(name, data, ack) {
        const answer = name === "heartbeat" ? "heartbeat_ack" : `${name}_result`;
        if (ack) { if (!waiting.has(answer)) waiting.set(answer, []); waiting.get(answer).push(ack); }
        if (ws && ws.readyState === 1) ws.send(JSON.stringify({ type: name, ...(data || {}) }));
        else if (ack) waiting.get(answer).pop()({ ok: false, error: "not connected" });
      },
      disconnect() { stopped = true; if (ws) ws.close(1000); },
    };
  }

  // Server-Sent Events: one direction; actions go through the HTTP API, and a new KPI
  // site reopens the stream from where it stood.
  const TYPES = ["connection_established", "incident_alert", "kpi_update", "site_status", "system_notification",
    "escalation", "incident_update", "sync_complete"];
  function sseConnection(tokenOf, resumePoint) {
    const ev = emitter();
    const sites = new Set();
    let source = null, stopped = false, used = null;
    function open() {
      if (source) source.close();
      const { lastId, epoch } = resumePoint();
      used = tokenOf();
      const q = new URLSearchParams({ token: used });
      if (sites.size) q.set("kpi_sites", [...sites].join(","));
      if (lastId) q.set("last_id", lastId);
      if (lastId && epoch) q.set("epoch", epoch);
      source = new EventSource(`/api/v1/notifications/stream?${q}`);
      source.onopen = () => ev.fire("connect");
      source.onerror = () => {
        if (stopped) return;
        if (source.readyState === EventSource.CLOSED && tokenOf() !== used) { ev.fire("disconnect"); open(); }  // renewed
        else if (source.readyState === EventSource.CLOSED) { stopped = true; ev.fire("connect_error", { message: "authentication failed" }); }
        else ev.fire("disconnect");  // the browser reconnects by itself, with Last-Event-ID
      };
      for (const t of TYPES) source.addEventListener(t, (m) => { try { ev.fire(t, JSON.parse(m.data)); } catch { /* skip */ } });
    }
    open();
    async function post(path) {
      try {
        const r = await fetch(path, { method: "POST", headers: { Authorization: `Bearer ${tokenOf()}` } });
        const body = await r.json().catch(() => ({}));
        return { ok: r.ok, ...body };
      } catch (e) { return { ok: false, error: String(e) }; }
    }
    return {
      transportName: "sse",
      on: ev.on,
      emit(name, data, ack) {
        const done = ack || (() => {});
        if (name === "incident_action") {
          post(`/api/v1/incidents/${encodeURIComponent(data.incident_id)}/${encodeURIComponent(data.action)}`).then(done);
        } else if (name === "subscribe_kpis") {
          const added = data.site_ids.filter((s) => !sites.has(s));
          for (const s of added) sites.add(s);
          if (added.length) open();
          done({ ok: true, granted: data.site_ids, denied: [], snapshot: {} });
        } else done({ ok: true });
      },
      disconnect() { stopped = true; if (source) source.close(); },
    };
  }

  window.towercoTransports = { ws: wsConnection, sse: sseConnection, claims };
})();
