// K official socket.io-client connections that live through faults: each starts on
// urls[i % urls.length]; when it is cut off it reconnects (after `retry_ms`) to the next
// URL, resuming from its last id and epoch as the dashboard does.
// argv[2]: JSON {urls, count, token, transports, retry_ms}
// stdout: {"ready": true} once every client has been connected; then, on
// stdin "report\n" -> one JSON line {clients: [[[incident_id, times, first_ms], ...], ...],
//   connects, recovered_false}
import { io } from "socket.io-client";
import readline from "node:readline";

const cfg = JSON.parse(process.argv[2]);
const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");
const seen = [];   // per client: Map incident_id -> [times, first_ms]
let connects = 0, recoveredFalse = 0, announced = false;

function open(i, attempt) {
  const state = seen[i].state;
  const url = cfg.urls[(i + attempt) % cfg.urls.length];
  const auth = { token: cfg.token };
  if (state.lastId) { auth.last_id = state.lastId; auth.epoch = state.epoch; }
  const s = io(url, { forceNew: true, reconnection: false, transports: cfg.transports,
                      auth, timeout: 5000 });
  const again = () => { s.removeAllListeners(); s.close();
                        setTimeout(() => open(i, attempt + 1), cfg.retry_ms); };
  s.on("connect", () => {
    connects++;
    if (!announced && connects >= cfg.count) { announced = true; out({ ready: true }); }
  });
  s.on("connect_error", again);
  s.on("disconnect", again);
  s.on("connection_established", (ev) => { if (ev.epoch) state.epoch = ev.epoch; });
  s.on("sync_complete", (ev) => { if (ev.recovered === false && state.lastId) recoveredFalse++; });
  s.on("incident_alert", (ev) => {
    if (ev.id) state.lastId = ev.id;
    const key = ev.incident.incident_id;
    const got = seen[i].events.get(key);
    if (got) got[0]++; else seen[i].events.set(key, [1, Date.now()]);
  });
}

for (let i = 0; i < cfg.count; i++) {
  seen.push({ events: new Map(), state: { lastId: null, epoch: null } });
  open(i, 0);
}

readline.createInterface({ input: process.stdin }).on("line", (line) => {
  if (line === "report") {
    out({ clients: seen.map((c) => [...c.events].map(([k, [n, t]]) => [k, n, t])),
          connects, recovered_false: recoveredFalse });
  } else if (line === "exit") {
    process.exit(0);
  }
});
