// K official socket.io-client connections (forceNew each) that time every event.
// argv[2]: JSON {url, count, transports, auth, event, keepalive}
// stdin "report\n" -> one JSON line {received, latencies summary} and a reset; "quit\n" -> exit.
// Besides every delivery's latency, the first delivery of each event (to any of the K):
// its latency is Kafka + server + one socket write, without the fan-out's spread.
import { io } from "socket.io-client";
import http from "node:http";
import readline from "node:readline";

const cfg = JSON.parse(process.argv[2]);
const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");
let connected = 0, failed = 0, received = 0, firstError = null;
let lat = [];
let first = new Map();
const sockets = [];
// keepalive: each client reuses its HTTP connection between polls, as a browser does (the
// client's default in Node is a new TCP connection per request)
const agentFor = () => (cfg.keepalive ? new http.Agent({ keepAlive: true, maxSockets: 2 }) : false);
for (let i = 0; i < cfg.count; i++) {
  const s = io(cfg.url, { forceNew: true, transports: cfg.transports, auth: cfg.auth, reconnection: false, timeout: 60000, agent: agentFor() });
  sockets.push(s);
  s.on("connect", () => { if (++connected + failed === cfg.count) out({ kind: "ready", connected, failed, error: firstError }); });
  s.on("connect_error", (e) => { firstError ??= e.message; if (connected + ++failed === cfg.count) out({ kind: "ready", connected, failed, error: firstError }); });
  s.on(cfg.event, (ev) => {
    const ms = Date.now() - Date.parse(ev.timestamp);
    received++; lat.push(ms);
    const key = ev.incident?.incident_id ?? ev.id;
    if (!first.has(key)) first.set(key, ms);
  });
}
const pct = (sorted, q) => sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : null;
readline.createInterface({ input: process.stdin }).on("line", (line) => {
  if (line === "report") {
    const sorted = Float64Array.from(lat).sort();
    const firsts = Float64Array.from(first.values()).sort();
    out({ kind: "report", received, p50: pct(sorted, 0.5), p90: pct(sorted, 0.9), p99: pct(sorted, 0.99), max: sorted.length ? sorted[sorted.length - 1] : null,
          first_p50: pct(firsts, 0.5), first_p99: pct(firsts, 0.99) });
    received = 0; lat = []; first = new Map();
  } else if (line === "quit") { for (const s of sockets) s.close(); setTimeout(() => process.exit(0), 100); }
});
