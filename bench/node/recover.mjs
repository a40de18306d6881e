// K clients resume from last_id at once; each reports how long until sync_complete.
// argv[2]: JSON {url, count, transports, token, last_id}
import { io } from "socket.io-client";
const cfg = JSON.parse(process.argv[2]);
const results = [];
const start = Date.now();
for (let i = 0; i < cfg.count; i++) {
  const t0 = Date.now();
  let got = 0;
  const s = io(cfg.url, { forceNew: true, transports: cfg.transports, reconnection: false,
                          auth: { token: cfg.token, last_id: cfg.last_id } });
  s.on("incident_alert", () => { got++; });
  s.on("sync_complete", (ev) => {
    results.push({ ms: Date.now() - t0, got, replayed: ev.replayed, recovered: ev.recovered });
    s.close();
    if (results.length === cfg.count) {
      process.stdout.write(JSON.stringify({ total_ms: Date.now() - start, results }) + "\n");
      process.exit(0);
    }
  });
}
