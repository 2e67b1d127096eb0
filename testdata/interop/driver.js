// driver.js drives the official socket.io-client for Switchboard's interop
// tests (harness_test.go). It reads one JSON command per line on stdin and
// writes one JSON observation per line on stdout. Binary values travel as
// {"$bin":"<base64>"} in both directions and are Buffers inside the client.
//
// Commands:
//   {"op":"connect","url":"http://127.0.0.1:PORT/nsp","opts":{...},"replies":{"event": [args] | "echo"}}
//       opts go to io() (transports, upgrade, auth, query, extraHeaders,
//       reconnection, reconnectionDelay, ackTimeout, retries, ...), with
//       forceNew defaulting to true. replies says how to answer a server
//       acknowledgement request per event: with fixed args, or "echo" (the
//       received args); events not listed are never answered.
//   {"op":"emit","event":"e","args":[...],"ack":true,"timeout":ms,"volatile":true,"seq":n}
//   {"op":"disconnect"}      socket.disconnect()
//   {"op":"closeTransport"}  socket.io.engine.close(): a transport drop
//   {"op":"connectAgain"}    socket.connect()
//
// Observations:
//   {"kind":"connect","id","recovered","transport"}
//   {"kind":"connect_error","message","data"}
//   {"kind":"disconnect","reason"}
//   {"kind":"event","event","args","ack":bool}
//   {"kind":"ack","seq","args"} or {"kind":"ack","seq","error"}
//   {"kind":"upgrade","transport"}
//   {"kind":"error","message"}  the driver could not run a command
//
// The driver exits once stdin closes, after disconnecting its socket.
"use strict";

const path = require("path");
const readline = require("readline");

// Resolve socket.io-client from the repository's node_modules whatever the
// working directory.
const { io } = require(require.resolve("socket.io-client", {
  paths: [path.join(__dirname, "..", ".."), process.cwd()],
}));

function out(obs) {
  process.stdout.write(JSON.stringify(toJSON(obs)) + "\n");
}

function isBinary(v) {
  return Buffer.isBuffer(v) || v instanceof ArrayBuffer || ArrayBuffer.isView(v);
}

// toJSON turns binary values, anywhere inside v, into {"$bin": base64}.
function toJSON(v) {
  if (v === undefined) return null;
  if (v === null || typeof v !== "object") return v;
  if (isBinary(v)) {
    const buf = v instanceof ArrayBuffer ? Buffer.from(v) : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
    return { $bin: buf.toString("base64") };
  }
  if (Array.isArray(v)) return v.map(toJSON);
  if (v instanceof Error) return { message: v.message };
  const o = {};
  for (const k of Object.keys(v)) o[k] = toJSON(v[k]);
  return o;
}

// fromJSON turns {"$bin": base64}, anywhere inside v, into a Buffer.
function fromJSON(v) {
  if (v === null || typeof v !== "object") return v;
  if (Array.isArray(v)) return v.map(fromJSON);
  const keys = Object.keys(v);
  if (keys.length === 1 && keys[0] === "$bin" && typeof v.$bin === "string") {
    return Buffer.from(v.$bin, "base64");
  }
  const o = {};
  for (const k of keys) o[k] = fromJSON(v[k]);
  return o;
}

let socket = null;
let connectOpts = {};
let replies = {};

function transportName() {
  const engine = socket && socket.io.engine;
  return engine && engine.transport ? engine.transport.name : "";
}

function watchEngine() {
  // The manager opens a new engine on every reconnection.
  const engine = socket.io.engine;
  if (!engine || engine.__driverWatched) return;
  engine.__driverWatched = true;
  engine.on("upgrade", (transport) => out({ kind: "upgrade", transport: transport.name }));
}

function connect(cmd) {
  if (socket) throw new Error("already connected; one socket per driver");
  connectOpts = Object.assign({ forceNew: true }, cmd.opts || {});
  if (connectOpts.auth !== undefined) connectOpts.auth = fromJSON(connectOpts.auth);
  replies = cmd.replies || {};
  socket = io(cmd.url, connectOpts);
  socket.io.on("open", watchEngine);
  watchEngine();
  socket.on("connect", () => {
    watchEngine();
    out({ kind: "connect", id: socket.id, recovered: !!socket.recovered, transport: transportName() });
  });
  socket.on("connect_error", (err) => {
    out({ kind: "connect_error", message: err.message, data: err.data === undefined ? null : err.data });
  });
  socket.on("disconnect", (reason) => out({ kind: "disconnect", reason }));
  socket.onAny((event, ...args) => {
    let ack = null;
    if (args.length > 0 && typeof args[args.length - 1] === "function") ack = args.pop();
    out({ kind: "event", event, args, ack: ack !== null });
    if (ack === null || !(event in replies)) return;
    const reply = replies[event];
    if (reply === "echo") ack(...args);
    else ack(...fromJSON(reply));
  });
}

function emit(cmd) {
  if (!socket) throw new Error("emit before connect");
  const args = fromJSON(cmd.args || []);
  let target = socket;
  if (cmd.volatile) target = target.volatile;
  if (cmd.timeout !== undefined && cmd.timeout !== null) target = target.timeout(cmd.timeout);
  if (!cmd.ack) {
    target.emit(cmd.event, ...args);
    return;
  }
  // An ack callback gets an error first when a timeout applies (timeout(),
  // ackTimeout or retries); otherwise just the answer's arguments.
  const errorFirst =
    (cmd.timeout !== undefined && cmd.timeout !== null) ||
    connectOpts.ackTimeout !== undefined ||
    !!connectOpts.retries;
  target.emit(cmd.event, ...args, (...res) => {
    if (errorFirst) {
      const err = res.shift();
      if (err) {
        out({ kind: "ack", seq: cmd.seq, error: err.message || String(err) });
        return;
      }
    }
    out({ kind: "ack", seq: cmd.seq, args: res });
  });
}

const ops = {
  connect,
  emit,
  disconnect: () => socket && socket.disconnect(),
  closeTransport: () => socket && socket.io.engine && socket.io.engine.close(),
  connectAgain: () => socket && socket.connect(),
};

const rl = readline.createInterface({ input: process.stdin, terminal: false });
rl.on("line", (line) => {
  if (line.trim() === "") return;
  let cmd;
  try {
    cmd = JSON.parse(line);
    const op = ops[cmd.op];
    if (!op) throw new Error("unknown op " + JSON.stringify(cmd.op));
    op(cmd);
  } catch (err) {
    out({ kind: "error", message: String(err && err.stack ? err.stack : err) });
  }
});
rl.on("close", () => {
  if (socket) socket.disconnect();
  // Let the close packet go out; a lingering handle must not keep us alive.
  setTimeout(() => process.exit(0), 200).unref();
});
