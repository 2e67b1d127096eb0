// Regenerates golden.json from the reference socket.io-parser:
//   cd parser/testdata && node golden.js > golden.json
// (run from the repository so that node_modules/socket.io-parser resolves).
const { Encoder, PacketType } = require("../../node_modules/socket.io-parser");
const enc = new Encoder();
const B = (s) => Buffer.from(s);
const cases = [
  ["connect", { type: PacketType.CONNECT, nsp: "/" }],
  ["connect_auth", { type: PacketType.CONNECT, nsp: "/", data: { token: "abc" } }],
  ["connect_nsp", { type: PacketType.CONNECT, nsp: "/admin", data: { sid: "x1" } }],
  ["disconnect_nsp", { type: PacketType.DISCONNECT, nsp: "/admin" }],
  ["event", { type: PacketType.EVENT, nsp: "/", data: ["chat", { text: "hello world", ts: 1700000000, user: "ann" }] }],
  ["event_ack", { type: PacketType.EVENT, nsp: "/", id: 12, data: ["hi"] }],
  ["event_nsp_ack", { type: PacketType.EVENT, nsp: "/chat", id: 7, data: ["hi", 1, true, null] }],
  ["event_unicode", { type: PacketType.EVENT, nsp: "/", data: ["é", "<b>&\u2028\n\"\\"] }],
  ["ack", { type: PacketType.ACK, nsp: "/", id: 3, data: [] }],
  ["ack_nsp", { type: PacketType.ACK, nsp: "/chat", id: 999999999999999, data: ["ok", 2.5] }],
  ["connect_error", { type: PacketType.CONNECT_ERROR, nsp: "/random", data: { message: "Invalid namespace" } }],
  ["binary_event", { type: PacketType.EVENT, nsp: "/", data: ["upload", B("abc")] }],
  ["binary_event_nested", { type: PacketType.EVENT, nsp: "/files", id: 4, data: ["up", [B("a"), { x: B("b"), y: [B("c")] }], B("d")] }],
  ["binary_ack", { type: PacketType.ACK, nsp: "/", id: 5, data: [B("")] }],
];
const out = cases.map(([name, p]) => {
  const parts = enc.encode(p);
  return { name, text: parts[0], attachments: parts.slice(1).map((b) => Buffer.from(b).toString("base64")) };
});
console.log(JSON.stringify(out, null, 1));
