// One plain WebSocket connection (the `ws` package, as ADR-010's clients use the browser's
// WebSocket) driven by the Python tests.
// argv[2]: JSON {url, headers?}
// stdout: one JSON line per thing seen: open, frame {data}, close {code, reason}, error.
// stdin: JSON lines {"send": <text>} (sent as is) or {"close": true}.
import WebSocket from "ws";
import readline from "node:readline";

const cfg = JSON.parse(process.argv[2]);
const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const ws = new WebSocket(cfg.url, { headers: cfg.headers || {} });
ws.on("open", () => out({ kind: "open" }));
ws.on("message", (data, isBinary) => {
  const text = data.toString();
  let parsed = null;
  try { parsed = JSON.parse(text); } catch { /* reported as raw */ }
  out({ kind: "frame", binary: isBinary, data: parsed, raw: parsed === null ? text : undefined, t: Date.now() });
});
ws.on("unexpected-response", (req, res) => { out({ kind: "refused", status: res.statusCode }); process.exit(0); });
ws.on("close", (code, reason) => { out({ kind: "close", code, reason: reason.toString() }); setTimeout(() => process.exit(0), 20); });
ws.on("error", (err) => out({ kind: "error", message: String(err.message || err) }));

const rl = readline.createInterface({ input: process.stdin });
rl.on("line", (line) => {
  let cmd;
  try { cmd = JSON.parse(line); } catch { return; }
  if (cmd.close) { ws.close(1000); setTimeout(() => process.exit(0), 200); return; }
  if (cmd.send !== undefined) ws.send(cmd.send);
  if (cmd.binary !== undefined) ws.send(Buffer.from(cmd.binary));
});
rl.on("close", () => { ws.close(); setTimeout(() => process.exit(0), 50); });
