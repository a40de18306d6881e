// Drives sio_server/static/notify-client.js with the real socket.io-client for the tests.
// argv[2]: JSON {url, token, transports?}. stdout: JSON lines; stdin: {"cmd": "drop"} forces a
// transport close (the client must reconnect and resume), {"cmd": "pause"} / {"cmd": "resume"}
// disconnects and connects again (resuming with its last id and epoch), {"cmd":"close"}.
import { io } from "socket.io-client";
import readline from "node:readline";
import { createNotifyClient } from "../../sio_server/static/notify-client.js";

const cfg = JSON.parse(process.argv[2]);
const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");
const client = createNotifyClient({ io, url: cfg.url, token: cfg.token, transports: cfg.transports, maxBackoffMs: 1000 });
client.onState((s) => out({ kind: "state", state: s }));
for (const name of ["incident_alert", "sync_complete", "connection_established", "reload"]) {
  client.on(name, (ev) => out({ kind: "event", name, data: ev }));
}
readline.createInterface({ input: process.stdin }).on("line", (line) => {
  const c = JSON.parse(line);
  if (c.cmd === "drop") client.socket.io.engine.close();
  if (c.cmd === "pause") { client.socket.disconnect(); out({ kind: "paused", last_id: client.lastId, epoch: client.epoch }); }
  if (c.cmd === "resume") client.socket.connect();
  if (c.cmd === "close") { client.close(); setTimeout(() => process.exit(0), 50); }
});
