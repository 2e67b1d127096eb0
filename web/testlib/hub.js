// A small in-test implementation of the hub client protocol of DESIGN.md on the Node
// reference server, enough to exercise the client's hub helpers: join / leave / publish /
// presence with {ok, ...} acks, presence notices, durable rooms (names starting with
// "durable-") delivering event(data, {room, offset, from}, ack) with redelivery after an ack
// timeout and replay from the subscriber's cursor on (re)connection.
// Test hooks: room "slow" never answers, room "weird" answers a non-object, rooms
// "forbidden*" are refused.
"use strict";

const { startReference } = require("./harness.js");

const RESERVED = ["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"];

async function startHub({ ackTimeout = 300 } = {}) {
  const srv = await startReference({ connectionStateRecovery: { maxDisconnectionDuration: 60_000 } });
  const io = srv.io;
  const hub = {
    url: srv.url,
    close: () => srv.close(),
    logs: new Map(), // durable room -> [{offset, event, data, from}]
    cursors: new Map(), // `${identity} ${room}` -> last acked offset
    dedupe: new Map(), // `${room} ${id}` -> offset (or true)
    acks: [], // {identity, room, offset}
    timeouts: [], // {identity, room, offset}
  };

  const log = (room) => {
    if (!hub.logs.has(room)) hub.logs.set(room, []);
    return hub.logs.get(room);
  };
  const identitiesIn = (room) => {
    const ids = new Set();
    for (const id of io.sockets.adapter.rooms.get(room) || []) ids.add(io.sockets.sockets.get(id).data.identity);
    return [...ids].sort();
  };

  // Sends durable entries after the identity's cursor, one at a time, in order.
  function pump(socket, room) {
    const key = socket.data.identity + " " + room;
    if (!hub.cursors.has(key) || !socket.connected || socket.data.inflight.has(room)) return;
    const next = log(room).find((e) => e.offset > hub.cursors.get(key));
    if (!next) return;
    socket.data.inflight.add(room);
    socket.timeout(ackTimeout).emit(next.event, next.data, { room, offset: next.offset, from: next.from }, (err) => {
      socket.data.inflight.delete(room);
      const rec = { identity: socket.data.identity, room, offset: next.offset };
      if (err) hub.timeouts.push(rec);
      else {
        hub.acks.push(rec);
        if (hub.cursors.has(key)) hub.cursors.set(key, Math.max(hub.cursors.get(key), next.offset));
      }
      pump(socket, room);
    });
  }

  io.use((socket, next) => {
    const id = socket.handshake.auth && socket.handshake.auth.clientId;
    if (!id) return next(new Error("unauthorized"));
    socket.data.identity = id;
    next();
  });

  io.on("connection", (socket) => {
    const me = socket.data.identity;
    socket.data.inflight = new Set();
    // durable subscriptions survive connections: rejoin and replay from the cursor
    for (const key of hub.cursors.keys()) {
      const [who, room] = key.split(" ");
      if (who === me) {
        socket.join(room);
        pump(socket, room);
      }
    }

    socket.on("join", (room, opts, ack) => {
      if (typeof opts === "function") [ack, opts] = [opts, {}];
      opts = opts || {};
      if (room === "slow") return;
      if (room === "weird") return ack("not an object");
      if (room.startsWith("forbidden")) return ack({ ok: false, error: "forbidden", message: `may not join ${room}` });
      const durable = room.startsWith("durable-");
      if (opts.durable && !durable) return ack({ ok: false, error: "not_durable", message: `${room} is not durable` });
      const wasThere = identitiesIn(room).includes(me);
      socket.join(room);
      if (!wasThere) socket.to(room).emit("switchboard:join", { room, identity: me });
      if (opts.durable) {
        const key = me + " " + room;
        if (!hub.cursors.has(key)) hub.cursors.set(key, opts.from !== undefined ? opts.from - 1 : log(room).length);
        pump(socket, room);
      }
      ack({ ok: true, room, durable: !!opts.durable });
    });

    socket.on("leave", (room, opts, ack) => {
      if (typeof opts === "function") [ack, opts] = [opts, {}];
      socket.leave(room);
      if (opts && opts.durable) hub.cursors.delete(me + " " + room);
      if (!identitiesIn(room).includes(me)) io.to(room).emit("switchboard:leave", { room, identity: me });
      ack({ ok: true });
    });

    socket.on("publish", (msg, ack) => {
      const { room, event, data, id } = msg || {};
      if (typeof event !== "string" || RESERVED.includes(event) || event.startsWith("switchboard:")) {
        return ack({ ok: false, error: "invalid_event", message: `cannot publish ${event}` });
      }
      if (room.startsWith("forbidden")) return ack({ ok: false, error: "forbidden", message: `may not publish to ${room}` });
      const dkey = room + " " + id;
      if (id !== undefined && hub.dedupe.has(dkey)) return ack({ ok: true, offset: hub.dedupe.get(dkey) });
      if (room.startsWith("durable-")) {
        const entries = log(room);
        const entry = { offset: entries.length + 1, event, data, from: me };
        entries.push(entry);
        if (id !== undefined) hub.dedupe.set(dkey, entry.offset);
        for (const sid of io.sockets.adapter.rooms.get(room) || []) pump(io.sockets.sockets.get(sid), room);
        // live members without a durable subscription get a plain copy
        for (const sid of io.sockets.adapter.rooms.get(room) || []) {
          const s = io.sockets.sockets.get(sid);
          if (sid !== socket.id && !hub.cursors.has(s.data.identity + " " + room)) s.emit(event, data, { room, from: me });
        }
        return ack({ ok: true, offset: entry.offset });
      }
      if (id !== undefined) hub.dedupe.set(dkey, undefined);
      socket.to(room).emit(event, data, { room, from: me });
      ack({ ok: true });
    });

    socket.on("presence", (room, ack) => ack({ ok: true, room, identities: identitiesIn(room) }));

    socket.on("disconnecting", () => {
      for (const room of socket.rooms) {
        if (room === socket.id) continue;
        const others = [...(io.sockets.adapter.rooms.get(room) || [])].filter((sid) => sid !== socket.id);
        if (!others.some((sid) => io.sockets.sockets.get(sid).data.identity === me)) {
          socket.to(room).emit("switchboard:leave", { room, identity: me });
        }
      }
    });
  });
  return hub;
}

module.exports = { startHub };
