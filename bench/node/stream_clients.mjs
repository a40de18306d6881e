// K plain-WebSocket (`ws`) or SSE (plain HTTP, parsed here) connections to towerco-notify
// that time every incident_alert, with the same report protocol as clients.mjs.
// argv[2]: JSON {url, count, transport: "ws"|"sse", token, tenant, user}
import WebSocket from "ws";
import http from "node:http";
import readline from "node:readline";

const cfg = JSON.parse(process.argv[2]);
const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");
let connected = 0, failed = 0, received = 0;
let lat = [];
let first = new Map();
const closers = [];
const ready = () => { if (connected + failed === cfg.count) out({ kind: "ready", connected, failed }); };
function onAlert(ev) {
  const ms = Date.now() - Date.parse(ev.timestamp);
  received++; lat.push(ms);
  const key = ev.incident?.incident_id ?? ev.id;
  if (!first.has(key)) first.set(key, ms);
}
const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
for (let i = 0; i < cfg.count; i++) {
  if (cfg.transport === "ws") {
    const url = `${cfg.url.replace("http", "ws")}/api/v1/notifications/ws/${cfg.tenant}/${cfg.user}?token=${cfg.token}`;
    const ws = new WebSocket(url, { perMessageDeflate: false });
    let hello = false;
    ws.on("message", (data) => {
      const ev = JSON.parse(data.toString());
      if (ev.type === "connection_established" && !hello) { hello = true; connected++; ready(); }
      else if (ev.type === "incident_alert") onAlert(ev);
    });
    ws.on("error", () => { if (!hello) { failed++; ready(); } });
    closers.push(() => ws.close());
  } else {
    const req = http.get(`${cfg.url}/api/v1/notifications/stream?token=${cfg.token}`, { agent }, (res) => {
      let buf = "", hello = false;
      res.setEncoding("utf8");
      res.on("data", (chunk) => {
        buf += chunk;
        let end;
        while ((end = buf.indexOf("\n\n")) >= 0) {
          const msg = buf.slice(0, end); buf = buf.slice(end + 2);
          let event = "", data = "";
          for (const line of msg.split("\n")) {
            if (line.startsWith("event: ")) event = line.slice(7);
            else if (line.startsWith("data: ")) data = line.slice(6);
          }
          if (event === "connection_established" && !hello) { hello = true; connected++; ready(); }
          else if (event === "incident_alert") onAlert(JSON.parse(data));
        }
      });
    });
    req.on("error", () => { failed++; ready(); });
    closers.push(() => req.destroy());
  }
}
const pct = (sorted, q) => sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : null;
readline.createInterface({ input: process.stdin }).on("line", (line) => {
  if (line === "report") {
    const sorted = Float64Array.from(lat).sort();
    const firsts = Float64Array.from(first.values()).sort();
    out({ kind: "report", received, p50: pct(sorted, 0.5), p90: pct(sorted, 0.9), p99: pct(sorted, 0.99), max: sorted.length ? sorted[sorted.length - 1] : null,
          first_p50: pct(firsts, 0.5), first_p99: pct(firsts, 0.99) });
    received = 0; lat = []; first = new Map();
  } else if (line === "quit") { for (const c of closers) c(); setTimeout(() => process.exit(0), 100); }
});
