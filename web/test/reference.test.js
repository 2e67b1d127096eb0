// switchboard.js against the Node reference server (socket.io 4.8.4), started in-process.
"use strict";

const { describe, it, before, after, afterEach } = require("node:test");
const assert = require("node:assert/strict");
const { io, client, closeClients, waitFor, collect, sleep, until, startReference } = require("../testlib/harness.js");
const { commonScenarios, bytes } = require("../testlib/scenarios.js");

// The example protocol of cmd/switchboard, on the reference server.
function exampleProtocol(socket) {
  socket.on("echo", (...args) => {
    const ack = args.pop();
    if (typeof ack === "function") ack(...args);
  });
  socket.on("join", (room, ack) => {
    socket.join(room);
    ack({ ok: true });
  });
  // The hub's publish, reduced: to every member of the room but the sender.
  socket.on("publish", (msg, ack) => {
    socket.to(msg.room).emit(msg.event, msg.data, { room: msg.room });
    if (typeof ack === "function") ack({ ok: true });
  });
}

describe("reference server: common scenarios", () => {
  let srv;
  before(async () => {
    srv = await startReference();
    srv.io.on("connection", exampleProtocol);
  });
  after(() => srv.close());
  commonScenarios(() => srv.url);
});

describe("reference server", () => {
  let srv;
  const conns = [];
  before(async () => {
    srv = await startReference();
    srv.io.on("connection", (s) => {
      conns.push(s);
      exampleProtocol(s);
    });
  });
  after(() => srv.close());
  afterEach(() => {
    closeClients();
    conns.length = 0;
    srv.io.removeAllListeners("new_namespace");
  });
  const serverSocket = (id, nsp = "/") => srv.io.of(nsp).sockets.get(id);

  it("server socket id and transport match what the client sees", async () => {
    for (const transports of [["polling"], ["websocket"]]) {
      const s = client(srv.url, { transports });
      await waitFor(s, "connect");
      const ss = serverSocket(s.id);
      assert.ok(ss, "the server knows the client's id");
      assert.equal(ss.conn.id, s.io.engine.id);
      assert.equal(ss.conn.transport.name, transports[0]);
    }
  });

  it("multiplexes namespaces on one Engine.IO connection; forceNew and a repeated namespace get their own", async () => {
    const chat = srv.io.of("/chat");
    chat.on("connection", exampleProtocol);
    const a = io(srv.url, { WebSocket: require("ws"), transports: ["websocket"] });
    const b = io(srv.url + "/chat", { transports: ["websocket"] });
    try {
      assert.equal(a.io, b.io, "same Manager");
      await Promise.all([waitFor(a, "connect"), waitFor(b, "connect")]);
      assert.equal(b.nsp, "/chat");
      assert.equal(serverSocket(a.id).conn, chat.sockets.get(b.id).conn, "one Engine.IO connection");
      assert.deepEqual(await b.emitWithAck("echo", "on chat"), "on chat");
      const c = io(srv.url, { WebSocket: require("ws"), transports: ["websocket"] });
      const d = io(srv.url + "/chat", { forceNew: true, WebSocket: require("ws"), transports: ["websocket"] });
      assert.notEqual(c.io, a.io, "same namespace again: a new Manager");
      assert.notEqual(d.io, a.io, "forceNew: a new Manager");
      await Promise.all([waitFor(c, "connect"), waitFor(d, "connect")]);
      assert.notEqual(serverSocket(c.id).conn, serverSocket(a.id).conn);
      c.disconnect();
      d.disconnect();
      // disconnecting one namespace keeps the shared connection for the other
      b.disconnect();
      await sleep(50);
      assert.equal(a.connected, true);
      assert.deepEqual(await a.emitWithAck("echo", 1), 1);
    } finally {
      a.disconnect();
      b.disconnect();
    }
  });

  it("unknown namespace: connect_error 'Invalid namespace'", async () => {
    const s = client(srv.url + "/nowhere", { transports: ["websocket"] });
    const [err] = await waitFor(s, "connect_error");
    assert.equal(err.message, "Invalid namespace");
    assert.equal(s.connected, false);
    assert.equal(s.active, false, "a refused socket does not retry by itself");
  });

  it("sends auth (object or callback) and query; middleware errors reach connect_error with data", async () => {
    const nsp = srv.io.of("/guarded");
    nsp.use((socket, next) => {
      if (socket.handshake.auth.token === "good") return next();
      const err = new Error("not authorized");
      err.data = { reason: "bad token", got: socket.handshake.auth.token ?? null };
      next(err);
    });
    nsp.on("connection", (socket) => socket.emit("welcome", socket.handshake.auth, socket.handshake.query.room));

    const bad = client(srv.url + "/guarded", { auth: { token: "bad" }, query: { room: "r1" } });
    const [err] = await waitFor(bad, "connect_error");
    assert.equal(err.message, "not authorized");
    assert.deepEqual(err.data, { reason: "bad token", got: "bad" });
    assert.equal(bad.connected, false);
    // after fixing credentials, connect() succeeds
    bad.auth = { token: "good" };
    bad.connect();
    const [auth, room] = await waitFor(bad, "welcome");
    assert.deepEqual(auth, { token: "good" });
    assert.equal(room, "r1");

    let calls = 0;
    const fnAuth = client(srv.url + "/guarded?room=r2", { auth: (cb) => { calls++; setTimeout(() => cb({ token: "good" }), 10); } });
    const [auth2, room2] = await waitFor(fnAuth, "welcome");
    assert.deepEqual(auth2, { token: "good" });
    assert.equal(room2, "r2", "query in the URL");
    assert.equal(calls, 1);
  });

  it("server emits JSON and binary to the client; client acks, with binary too", async () => {
    const s = client(srv.url, { transports: ["polling"] });
    await waitFor(s, "connect");
    const ss = serverSocket(s.id);
    const got = waitFor(s, "data");
    ss.emit("data", { n: 1, b: Buffer.from("bin") }, [Buffer.from([0, 255])]);
    const [obj, arr] = await got;
    assert.equal(obj.n, 1);
    assert.ok(Buffer.isBuffer(obj.b));
    assert.equal(obj.b.toString(), "bin");
    assert.deepEqual(bytes(arr[0]), [0, 255]);

    s.on("question", (q, ack) => ack(q + "!", Buffer.from([9])));
    const [answer, bin] = await new Promise((resolve, reject) =>
      ss.timeout(2000).emit("question", "why", (err, ...a) => (err ? reject(err) : resolve(a))));
    assert.equal(answer, "why!");
    assert.deepEqual(bytes(bin), [9]);

    // server-side ack timeout when the client does not answer
    s.on("ignored", () => {});
    await assert.rejects(ss.timeout(100).emitWithAck("ignored"));
  });

  it("volatile: dropped when it cannot be sent now, delivered when connected", async () => {
    const s = client(srv.url, { transports: ["websocket"] });
    const seen = [];
    s.volatile.emit("echo", "volatile-before-connect", (v) => seen.push(v));
    s.emit("echo", "normal-before-connect", (v) => seen.push(v));
    await waitFor(s, "connect");
    await until(() => seen.length >= 1, "the buffered emit");
    s.volatile.emit("echo", "volatile-connected", (v) => seen.push(v));
    await until(() => seen.length >= 2, "the volatile emit");
    await sleep(30);
    assert.deepEqual(seen, ["normal-before-connect", "volatile-connected"]);
    assert.deepEqual(s.flags, {}, "flags reset after each emit");
  });

  it("'io server disconnect' when the server disconnects the socket: no reconnection", async () => {
    const s = client(srv.url, { transports: ["websocket"] });
    await waitFor(s, "connect");
    let attempts = 0;
    s.io.on("reconnect_attempt", () => attempts++);
    const d = waitFor(s, "disconnect");
    serverSocket(s.id).disconnect();
    const [reason] = await d;
    assert.equal(reason, "io server disconnect");
    assert.equal(s.active, false);
    await sleep(200);
    assert.equal(attempts, 0);
    assert.equal(s.connected, false);
  });

  for (const transports of [["polling"], ["websocket"], ["polling", "websocket"]]) {
    it(`reconnects after the server drops the transport (${transports.join("+")}), flushing emits buffered meanwhile`, async () => {
      const s = client(srv.url, { transports });
      await waitFor(s, "connect");
      const firstId = s.id;
      if (transports.length === 2) await until(() => serverSocket(firstId).conn.transport.name === "websocket", "the upgrade");
      const events = [];
      s.on("disconnect", (r) => events.push("disconnect:" + r));
      s.io.on("reconnect_attempt", (n) => events.push("attempt:" + n));
      s.io.on("reconnect", (n) => events.push("reconnect:" + n));
      s.on("connect", () => events.push("connect"));
      const disconnected = waitFor(s, "disconnect");
      serverSocket(firstId).conn.close();
      await disconnected;
      assert.equal(s.connected, false);
      const answer = s.emitWithAck("echo", "queued while offline");
      await waitFor(s, "connect");
      assert.equal(await answer, "queued while offline");
      assert.notEqual(s.id, firstId, "a new session without recovery");
      assert.equal(s.recovered, false);
      assert.deepEqual(events, ["disconnect:transport close", "attempt:1", "reconnect:1", "connect"]);
    });
  }

  it("'forced close' when the engine is closed locally; the socket reconnects", async () => {
    const s = client(srv.url, { transports: ["websocket"] });
    await waitFor(s, "connect");
    const d = waitFor(s, "disconnect");
    s.io.engine.close();
    assert.equal((await d)[0], "forced close");
    await waitFor(s, "connect");
    assert.equal(s.connected, true);
  });

  it("'parse error' on a malformed Socket.IO packet", async () => {
    const s = client(srv.url, { transports: ["websocket"], reconnection: false });
    await waitFor(s, "connect");
    const d = waitFor(s, "disconnect");
    serverSocket(s.id).conn.write("9 not a packet");
    assert.equal((await d)[0], "parse error");
  });

  for (const transports of [["polling"], ["websocket"]]) {
    it(`answers pings (${transports[0]}): the server gets its pongs, io emits 'ping'`, async () => {
      // the server closes a connection whose pong is late by more than pingTimeout
      const fast = await startReference({ pingInterval: 150, pingTimeout: 1500 });
      try {
        let pongs = 0;
        fast.io.on("connection", (ss) => ss.conn.on("heartbeat", () => pongs++));
        const s = client(fast.url, { transports });
        await waitFor(s, "connect");
        let pings = 0;
        s.io.on("ping", () => pings++);
        let disconnected = false;
        s.on("disconnect", () => (disconnected = true));
        await until(() => pings >= 4 && pongs >= 4, "4 pings and pongs", 5000);
        assert.equal(disconnected, false);
        assert.equal(s.connected, true);
      } finally {
        closeClients();
        await fast.close();
      }
    });
  }

  it("reconnection gives up after reconnectionAttempts with reconnect_failed", async () => {
    const { freePort } = require("../testlib/harness.js");
    const port = await freePort(); // nothing listens there
    const s = client(`http://127.0.0.1:${port}`, { reconnectionAttempts: 3, reconnectionDelay: 30, reconnectionDelayMax: 60, randomizationFactor: 0 });
    const errors = [];
    const attempts = [];
    s.on("connect_error", (e) => errors.push(e.message));
    s.io.on("reconnect_attempt", (n) => attempts.push(n));
    let reconnectErrors = 0;
    s.io.on("reconnect_error", () => reconnectErrors++);
    await waitFor(s.io, "reconnect_failed", 3000);
    assert.deepEqual(attempts, [1, 2, 3]);
    assert.equal(reconnectErrors, 3);
    assert.equal(errors.length, 4, "the first attempt and three reconnections");
    assert.ok(errors.every((m) => m === "xhr poll error"), errors.join());
    assert.equal(s.connected, false);
  });

  it("the polling transport keeps requests under maxPayload (maxHttpBufferSize 500)", async () => {
    const small = await startReference({ maxHttpBufferSize: 500 });
    try {
      const received = [];
      small.io.on("connection", (ss) => ss.on("m", (v) => received.push(v)));
      const s = client(small.url, { transports: ["polling"] });
      await waitFor(s, "connect");
      assert.equal(s.io.engine.maxPayload, 500);
      let reason = null;
      s.on("disconnect", (r) => (reason = r));
      for (let i = 0; i < 30; i++) s.emit("m", String(i).padEnd(100, "."));
      await until(() => received.length === 30 || reason, "30 messages");
      assert.equal(reason, null);
      assert.deepEqual(received.map((v) => parseInt(v, 10)), Array.from({ length: 30 }, (_, i) => i));
    } finally {
      closeClients();
      await small.close();
    }
  });

  it("server → client: 1,000 events in order on polling", async () => {
    const s = client(srv.url, { transports: ["polling"] });
    await waitFor(s, "connect");
    const got = collect(s, "n", 1000, 10000);
    const ss = serverSocket(s.id);
    for (let i = 0; i < 1000; i++) ss.emit("n", i);
    assert.deepEqual((await got).map((a) => a[0]), Array.from({ length: 1000 }, (_, i) => i));
  });

  it("retries with ackTimeout: resends until acked, the callback gets (null, answer)", async () => {
    const copies = [];
    srv.io.of("/flaky").on("connection", (ss) => ss.on("save", (v, ack) => {
      copies.push(v);
      if (copies.length === 2) ack("saved " + v); // the first copy is "lost"
    }));
    const s = client(srv.url + "/flaky", { transports: ["websocket"], retries: 3, ackTimeout: 150 });
    const args = await new Promise((resolve) => s.emit("save", "doc", (...a) => resolve(a)));
    assert.deepEqual(args, [null, "saved doc"]);
    assert.deepEqual(copies, ["doc", "doc"]);
  });

  it("extraHeaders reach the server on polling and websocket", async () => {
    const nsp = srv.io.of("/headers");
    nsp.on("connection", (ss) => ss.emit("h", ss.handshake.headers["x-switchboard-test"], ss.conn.request.headers["x-switchboard-test"]));
    for (const transports of [["polling"], ["websocket"]]) {
      const s = client(srv.url + "/headers", { transports, extraHeaders: { "x-switchboard-test": "yes-" + transports[0] } });
      assert.deepEqual(await waitFor(s, "h"), ["yes-" + transports[0], "yes-" + transports[0]]);
    }
  });

  it("on / once / off / onAny behave like socket.io-client; reserved names cannot be emitted", async () => {
    const s = client(srv.url, { transports: ["websocket"] });
    await waitFor(s, "connect");
    const ss = serverSocket(s.id);
    const log = [];
    const h = (v) => log.push("on:" + v);
    s.on("x", h);
    s.once("x", (v) => log.push("once:" + v));
    s.onAny((ev, v) => log.push("any:" + ev + v));
    ss.emit("x", 1);
    ss.emit("x", 2);
    await until(() => log.length >= 5, "events");
    s.off("x", h);
    ss.emit("x", 3);
    await until(() => log.length >= 6, "events");
    assert.deepEqual(log, ["any:x1", "on:1", "once:1", "any:x2", "on:2", "any:x3"]);
    assert.throws(() => s.emit("connect"), /reserved event name/);
    assert.throws(() => s.emit("disconnect"), /reserved event name/);
  });
});

describe("reference server with connectionStateRecovery", () => {
  let srv;
  before(async () => {
    srv = await startReference({ connectionStateRecovery: { maxDisconnectionDuration: 60_000, skipMiddlewares: true } });
    srv.io.on("connection", (s) => {
      s.on("join", (room, ack) => { s.join(room); ack({ ok: true }); });
      s.on("whoami", (ack) => ack({ recovered: s.recovered, rooms: [...s.rooms] }));
    });
  });
  after(() => srv.close());
  afterEach(closeClients);

  for (const transports of [["polling"], ["websocket"]]) {
    it(`recovers the session and delivers missed events (${transports[0]})`, async () => {
      const s = client(srv.url, { transports });
      await waitFor(s, "connect");
      assert.equal(s.recovered, false);
      await s.emitWithAck("join", "news");
      const seen = [];
      s.on("news", (text, offset) => seen.push({ text, offset }));
      srv.io.to("news").emit("news", "first");
      await until(() => seen.length === 1, "first event");
      assert.equal(typeof seen[0].offset, "string", "recovery appends an offset string");
      const id = s.id;

      // drop the transport; publish while the client is away
      const down = waitFor(s, "disconnect");
      srv.io.sockets.sockets.get(id).conn.close();
      assert.equal((await down)[0], "transport close");
      srv.io.to("news").emit("news", "missed 1");
      srv.io.to("news").emit("news", "missed 2");

      await waitFor(s, "connect");
      assert.equal(s.recovered, true);
      assert.equal(s.id, id, "same id");
      assert.deepEqual(seen.map((e) => e.text), ["first", "missed 1", "missed 2"]);
      assert.deepEqual(await s.emitWithAck("whoami"), { recovered: true, rooms: [id, "news"] });
    });
  }

  it("a client-initiated disconnect is not recovered", async () => {
    const s = client(srv.url, { transports: ["websocket"] });
    await waitFor(s, "connect");
    s.on("x", () => {});
    srv.io.emit("x", "with offset");
    await sleep(50);
    const id = s.id;
    s.disconnect();
    s.connect();
    await waitFor(s, "connect");
    assert.equal(s.recovered, false);
    assert.notEqual(s.id, id);
  });
});
