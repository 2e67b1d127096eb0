// node.js runs a socket.io 4.8 server with @socket.io/redis-streams-adapter,
// a Node member of the cluster in redis/interop_test.go. It listens on a
// free port, prints {"kind":"ready","port":N}, then reads one JSON command
// per line on stdin and writes one JSON observation per line on stdout.
// Binary values travel as {"$bin":"<base64>"} both ways.
//
// Environment: REDIS_URL, STREAM, PREFIX, SESSION_PREFIX (adapter options),
// RECOVERY=1 (connectionStateRecovery, 2 minutes, middlewares skipped).
//
// Commands (each with a seq, answered by {"kind":"done","seq","result"} or
// {"kind":"done","seq","error"}):
//   {"op":"emit","rooms":[],"except":[],"event","args":[],"volatile":bool}
//   {"op":"emitWithAck","rooms":[],"event","args":[],"timeout":ms}
//   {"op":"fetchSockets","rooms":[]}
//   {"op":"serverSideEmit","event","args":[],"ack":bool,"timeout":ms}
//   {"op":"serverCount"}
//   {"op":"socketsJoin","rooms":[],"join":[]}  / "socketsLeave" / "disconnectSockets"
// Observations: {"kind":"connection","id","recovered"}, {"kind":"serverSideEmit","event","args"},
// {"kind":"disconnect","id","reason"}.
// Clients may emit "join"(rooms, ack), "leave"(room, ack), "setData"(v, ack),
// "toRoom"(room, ev, ...args) and answer nothing else.
"use strict";

const path = require("path");
const readline = require("readline");

const root = path.join(__dirname, "..", "..");
const req = (name) => require(require.resolve(name, { paths: [root, process.cwd()] }));
const { Server } = req("socket.io");
const { createClient } = req("redis");
const { createAdapter } = req("@socket.io/redis-streams-adapter");

function out(obs) {
  process.stdout.write(JSON.stringify(toJSON(obs)) + "\n");
}

function isBinary(v) {
  return Buffer.isBuffer(v) || v instanceof ArrayBuffer || ArrayBuffer.isView(v);
}

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

function fromJSON(v) {
  if (v === null || typeof v !== "object") return v;
  if (Array.isArray(v)) return v.map(fromJSON);
  if (typeof v.$bin === "string" && Object.keys(v).length === 1) return Buffer.from(v.$bin, "base64");
  const o = {};
  for (const k of Object.keys(v)) o[k] = fromJSON(v[k]);
  return o;
}

async function main() {
  const redis = createClient({ url: process.env.REDIS_URL || "redis://127.0.0.1:6379" });
  redis.on("error", () => {});
  await redis.connect();
  const opts = {};
  if (process.env.STREAM) opts.streamName = process.env.STREAM;
  if (process.env.PREFIX) opts.channelPrefix = process.env.PREFIX;
  if (process.env.SESSION_PREFIX) opts.sessionKeyPrefix = process.env.SESSION_PREFIX;
  const serverOpts = { adapter: createAdapter(redis, opts) };
  if (process.env.RECOVERY === "1") {
    serverOpts.connectionStateRecovery = { maxDisconnectionDuration: 120000, skipMiddlewares: true };
  }
  const io = new Server(serverOpts);

  io.on("connection", (socket) => {
    out({ kind: "connection", id: socket.id, recovered: socket.recovered });
    socket.on("join", (rooms, ack) => {
      socket.join(rooms);
      ack("ok");
    });
    socket.on("leave", (room, ack) => {
      socket.leave(room);
      ack("ok");
    });
    socket.on("setData", (v, ack) => {
      socket.data = v;
      ack("ok");
    });
    socket.on("toRoom", (room, ev, ...args) => socket.to(room).emit(ev, ...args));
    socket.on("disconnect", (reason) => out({ kind: "disconnect", id: socket.id, reason }));
  });
  io.on("hello", (x, cb) => cb(x + 100));
  io.on("echoBack", (v, cb) => cb(v));
  io.on("note", (...args) => out({ kind: "serverSideEmit", event: "note", args }));

  const op = (c) => {
    let b = io.of("/");
    if (c.rooms && c.rooms.length) b = b.to(c.rooms);
    if (c.except && c.except.length) b = b.except(c.except);
    return b;
  };
  const handlers = {
    emit: async (c) => {
      // What BroadcastOperator.emit does, awaiting the adapter so that the
      // stream entry exists when the command is answered.
      const flags = c.volatile ? { volatile: true } : {};
      const packet = { type: 2, data: [c.event, ...fromJSON(c.args || [])] };
      await io.of("/").adapter.broadcast(packet, {
        rooms: new Set(c.rooms || []),
        except: new Set(c.except || []),
        flags,
      });
      return "ok";
    },
    emitWithAck: (c) => op(c).timeout(c.timeout || 5000).emitWithAck(c.event, ...fromJSON(c.args || [])),
    fetchSockets: async (c) => {
      const socks = await op(c).fetchSockets();
      return socks.map((s) => ({
        id: s.id,
        rooms: [...s.rooms],
        data: s.data,
        address: s.handshake.address,
        hasHeaders: !!s.handshake.headers,
      }));
    },
    serverSideEmit: async (c) => {
      if (c.ack) {
        return io.serverSideEmitWithAck(c.event, ...fromJSON(c.args || []));
      }
      io.serverSideEmit(c.event, ...fromJSON(c.args || []));
      return "ok";
    },
    serverCount: () => io.of("/").adapter.serverCount(),
    socketsJoin: async (c) => {
      op(c).socketsJoin(c.join);
      return "ok";
    },
    socketsLeave: async (c) => {
      op(c).socketsLeave(c.leave);
      return "ok";
    },
    disconnectSockets: async (c) => {
      op(c).disconnectSockets(!!c.close);
      return "ok";
    },
  };

  await new Promise((resolve) => io.listen(0).httpServer.once("listening", resolve));
  // io.listen returns the Server; its httpServer is io.httpServer.
  out({ kind: "ready", port: io.httpServer.address().port });

  const rl = readline.createInterface({ input: process.stdin });
  rl.on("line", async (line) => {
    let c;
    try {
      c = JSON.parse(line);
    } catch (e) {
      return out({ kind: "error", message: "bad command: " + e.message });
    }
    const h = handlers[c.op];
    if (!h) return out({ kind: "done", seq: c.seq, error: "unknown op " + c.op });
    try {
      out({ kind: "done", seq: c.seq, result: await h(c) });
    } catch (e) {
      out({ kind: "done", seq: c.seq, error: e && e.message ? e.message : String(e) });
    }
  });
  rl.on("close", () => {
    io.close(() => {
      redis.quit().finally(() => process.exit(0));
    });
    setTimeout(() => process.exit(0), 2000).unref();
  });
}

main().catch((e) => {
  process.stderr.write("node.js: " + (e && e.stack ? e.stack : e) + "\n");
  process.exit(1);
});
