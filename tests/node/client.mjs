// One (or many) official socket.io-client connections driven by the Python tests.
// argv[2]: JSON {url, token?, tokens_file? (a JSON list, one per connection), auth?, query?,
//   transports?, count?}
// stdout: one JSON line per thing seen: connect, connect_error, event, ack, disconnect.
// stdin: JSON lines {"req": n, "emit": name, "data": any, "client": i?} or {"close": true}.
import { io } from "socket.io-client";
import readline from "node:readline";
import fs from "node:fs";

const cfg = JSON.parse(process.argv[2]);
const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const count = cfg.count || 1;
if (cfg.tokens_file) cfg.tokens = JSON.parse(fs.readFileSync(cfg.tokens_file, "utf8"));
const sockets = [];

for (let i = 0; i < count; i++) {
  const token = cfg.tokens ? cfg.tokens[i] : cfg.token;  // tokens: one per connection
  const auth = cfg.auth !== undefined ? cfg.auth : (token ? { token } : {});
  const socket = io(cfg.url, {
    forceNew: true,
    reconnection: false,
    transports: cfg.transports || ["polling", "websocket"],
    upgrade: cfg.upgrade !== undefined ? cfg.upgrade : true,
    auth,
    query: cfg.query || {},
    extraHeaders: cfg.headers || {},
    timeout: 10000,
  });
  sockets.push(socket);
  socket.on("connect", () => out({ kind: "connect", client: i, transport: socket.io.engine.transport.name }));
  socket.on("connect_error", (err) => out({ kind: "connect_error", client: i, message: err.message }));
  socket.on("disconnect", (reason) => out({ kind: "disconnect", client: i, reason }));
  socket.onAny((name, data) => out({ kind: "event", client: i, name, data, t: Date.now() }));
}

const rl = readline.createInterface({ input: process.stdin });
rl.on("line", (line) => {
  let cmd;
  try { cmd = JSON.parse(line); } catch { return; }
  if (cmd.close) { for (const s of sockets) s.close(); setTimeout(() => process.exit(0), 50); return; }
  const socket = sockets[cmd.client || 0];
  const args = cmd.raw_args !== undefined ? cmd.raw_args : (cmd.data === undefined ? [] : [cmd.data]);
  socket.timeout(10000).emit(cmd.emit, ...args, (err, response) => {
    out({ kind: "ack", client: cmd.client || 0, req: cmd.req, error: err ? String(err.message || err) : null, data: response });
  });
});
rl.on("close", () => { for (const s of sockets) s.close(); setTimeout(() => process.exit(0), 50); });
