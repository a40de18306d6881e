// The reference: a plain Node socket.io server fed from Kafka (kafkajs), emitting each
// incident alert to its tenant room - the same work our daemon does, minus auth/history.
// argv[2]: JSON {port, bootstrap, topic, group, fetch_wait_ms}
import { createServer } from "node:http";
import { Server } from "socket.io";
import { Kafka, logLevel } from "kafkajs";

const cfg = JSON.parse(process.argv[2]);
const http = createServer();
const io = new Server(http, { perMessageDeflate: false, httpCompression: false });
let seq = 0;
io.on("connection", (socket) => {
  socket.join("tenant:" + (socket.handshake.auth.tenant || "bench"));
});
const kafka = new Kafka({ brokers: cfg.bootstrap.split(","), logLevel: logLevel.NOTHING, clientId: "ref" });
const consumer = kafka.consumer({ groupId: cfg.group, maxWaitTimeInMs: cfg.fetch_wait_ms ?? 20, sessionTimeout: 6000, heartbeatInterval: 1000 });
await consumer.connect();
await consumer.subscribe({ topic: cfg.topic, fromBeginning: false });
consumer.on(consumer.events.GROUP_JOIN, () => process.stdout.write(JSON.stringify({ kind: "ready", pid: process.pid }) + "\n"));
await consumer.run({
  eachMessage: async ({ message }) => {
    const env = JSON.parse(message.value.toString());
    const p = env.payload;
    io.to("tenant:" + env.tenant_id).emit("incident_alert", {
      id: `${Date.now()}-${seq++}`, type: "incident_alert", tenant_id: env.tenant_id,
      timestamp: env.timestamp, priority: p.severity, incident: p, requires_acknowledgment: true,
    });
  },
});
http.listen(cfg.port, "127.0.0.1");
const stop = async () => { await consumer.disconnect().catch(() => {}); process.exit(0); };
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
