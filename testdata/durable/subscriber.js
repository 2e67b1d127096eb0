// A durable-room subscriber on the official socket.io-client, driven by a Go
// test: node subscriber.js <url> <identity> <room> <ackPolicy>
// ackPolicy: "all" acknowledges every delivery, "odd" only odd offsets,
// "none" none, "late" every delivery 300 ms after it arrived. It prints one JSON line per thing it sees and exits when
// stdin closes.
const { io } = require("socket.io-client");

const [url, identity, room, policy] = process.argv.slice(2);
const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");

const socket = io(url, { auth: { id: identity }, transports: ["websocket"], reconnection: false });
socket.on("connect", async () => {
  out({ kind: "connect", id: socket.id });
  out({ kind: "sub", sub: await socket.emitWithAck("sub", room) });
});
socket.on("connect_error", (err) => out({ kind: "connect_error", message: err.message }));
socket.on("disconnect", (reason) => out({ kind: "disconnect", reason }));
socket.on("switchboard:gap", (gap) => out({ kind: "gap", gap }));
socket.on("m", (value, meta, ack) => {
  out({ kind: "event", value, meta, acked: typeof ack === "function" });
  if (typeof ack !== "function") return;
  if (policy === "all" || (policy === "odd" && meta.offset % 2 === 1)) ack();
  if (policy === "late") setTimeout(ack, 300);
});
process.stdin.on("data", (chunk) => {
  if (chunk.toString().includes("disconnect")) socket.disconnect();
});
process.stdin.on("end", () => {
  socket.disconnect();
  setTimeout(() => process.exit(0), 50);
});
process.stdin.resume();
