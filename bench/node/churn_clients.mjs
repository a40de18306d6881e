// K official socket.io-client connections with churn: every `churn_ms`, `churn` of them
// (chosen at random) disconnect and a fresh connection takes each one's place.
// argv[2]: JSON {url, count, auth, event, churn, churn_ms}
// stdin "report\n" -> one JSON line {received, connects, p50, p99, max} and a reset.
import { io } from "socket.io-client";
import readline from "node:readline";

const cfg = JSON.parse(process.argv[2]);
const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");
let received = 0, connects = 0, errors = 0;
let lat = [];
const sockets = new Array(cfg.count);
const open = (i) => {
  const s = io(cfg.url, { forceNew: true, transports: ["websocket"], auth: cfg.auth, reconnection: false, timeout: 60000 });
  s.on("connect", () => { connects++; });
  s.on("connect_error", () => { errors++; setTimeout(() => { if (sockets[i] === s) open(i); }, 500); });
  s.on(cfg.event, (ev) => { received++; lat.push(Date.now() - Date.parse(ev.timestamp)); });
  sockets[i] = s;
};
for (let i = 0; i < cfg.count; i++) open(i);
setInterval(() => {
  for (let n = 0; n < cfg.churn; n++) {
    const i = Math.floor(Math.random() * cfg.count);
    sockets[i].close();
    open(i);
  }
}, cfg.churn_ms);
const pct = (sorted, q) => sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : null;
readline.createInterface({ input: process.stdin }).on("line", (line) => {
  if (line === "report") {
    const sorted = Float64Array.from(lat).sort();
    out({ kind: "report", received, connects, errors, p50: pct(sorted, 0.5), p99: pct(sorted, 0.99), max: sorted.length ? sorted[sorted.length - 1] : null });
    received = 0; connects = 0; errors = 0; lat = [];
  } else if (line === "quit") { for (const s of sockets) s.close(); setTimeout(() => process.exit(0), 100); }
});
out({ kind: "ready" });
