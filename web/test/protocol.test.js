// Wire-level behaviour of switchboard.js: packet codecs, URL handling, backoff, and what the
// client does against a scripted Engine.IO server (heartbeat, payloads, errors, maxPayload,
// the recovery handshake).
"use strict";

const { describe, it, afterEach } = require("node:test");
const assert = require("node:assert/strict");
const { io, client, closeClients, waitFor, until, startFakeEngine } = require("../testlib/harness.js");

const { encode, Decoder, decodeEioPacket, encodeEioPacket } = io.parser;

function decodeAll(messages) {
  const d = new Decoder();
  const out = [];
  d.on("decoded", (p) => out.push(p));
  for (const m of messages) d.add(m);
  return out;
}

describe("Socket.IO packet codec", () => {
  it("encodes packets as the reference parser does", () => {
    assert.deepEqual(encode({ type: 0, nsp: "/" }), ["0"]);
    assert.deepEqual(encode({ type: 0, nsp: "/admin", data: { token: "x" } }), ['0/admin,{"token":"x"}']);
    assert.deepEqual(encode({ type: 2, nsp: "/", data: ["hi", 1] }), ['2["hi",1]']);
    assert.deepEqual(encode({ type: 2, nsp: "/chat", id: 12, data: ["hi"] }), ['2/chat,12["hi"]']);
    assert.deepEqual(encode({ type: 3, nsp: "/", id: 3, data: [] }), ["33[]"]);
    assert.deepEqual(encode({ type: 1, nsp: "/chat" }), ["1/chat,"]);
    const bin = Buffer.from([1, 2]);
    assert.deepEqual(encode({ type: 2, nsp: "/", id: 4, data: ["up", { b: bin }, bin] }),
      ['52-4["up",{"b":{"_placeholder":true,"num":0}},{"_placeholder":true,"num":1}]', bin, bin]);
    assert.deepEqual(encode({ type: 3, nsp: "/x", id: 9, data: [new Uint8Array([7])] }),
      ['61-/x,9[{"_placeholder":true,"num":0}]', new Uint8Array([7])]);
  });

  it("decodes packets, namespaces, ids and binary attachments", () => {
    const [a, b, c, d, e] = decodeAll([
      '0{"sid":"abc","pid":"p"}',
      '2/chat,7["ev",{"x":1}]',
      '51-/chat,["bin",{"_placeholder":true,"num":0}]', Buffer.from([5]),
      '4{"message":"nope","data":{"why":1}}',
      "1/chat,",
    ]);
    assert.deepEqual(a, { type: 0, nsp: "/", data: { sid: "abc", pid: "p" } });
    assert.deepEqual(b, { type: 2, nsp: "/chat", id: 7, data: ["ev", { x: 1 }] });
    assert.equal(c.nsp, "/chat");
    assert.equal(c.type, 5);
    assert.deepEqual(Array.from(c.data[1]), [5]);
    assert.deepEqual(d, { type: 4, nsp: "/", data: { message: "nope", data: { why: 1 } } });
    assert.deepEqual(e, { type: 1, nsp: "/chat" });
    assert.deepEqual(decodeAll(["0/chat"])[0], { type: 0, nsp: "/chat" }, "CONNECT without trailing comma is tolerated by the codec");
  });

  it("rejects malformed packets", () => {
    for (const bad of ["", "9", "2", "2{}", '2["connect"]', "3[]", "4[1]", '5x-["a"]', "0[]", "2[1", '1["x"]']) {
      assert.throws(() => decodeAll([bad]), undefined, JSON.stringify(bad));
    }
    assert.throws(() => decodeAll([Buffer.from([1])]), /binary data when not reconstructing/);
    assert.throws(() => decodeAll(['51-["a",{"_placeholder":true,"num":3}]', Buffer.from([1])]), /attachments/);
  });

  it("Engine.IO packets: text, binary as base64 on polling, raw on websocket", () => {
    assert.deepEqual(decodeEioPacket("4hello"), { type: "message", data: "hello" });
    assert.deepEqual(decodeEioPacket("2"), { type: "ping" });
    assert.deepEqual(decodeEioPacket("3probe"), { type: "pong", data: "probe" });
    assert.deepEqual(Array.from(decodeEioPacket("bAQID").data), [1, 2, 3]);
    assert.ok(Buffer.isBuffer(decodeEioPacket(new Uint8Array([9]).buffer).data));
    assert.equal(decodeEioPacket("x").type, "error");
    assert.equal(decodeEioPacket("").type, "error");
    assert.equal(encodeEioPacket({ type: "message", data: Buffer.from([1, 2, 3]) }, false), "bAQID");
    const raw = Buffer.from([1]);
    assert.equal(encodeEioPacket({ type: "message", data: raw }, true), raw);
    assert.equal(encodeEioPacket({ type: "pong" }, true), "3");
    assert.equal(encodeEioPacket({ type: "message", data: "40" }, false), "440");
  });
});

describe("io() and the Manager", () => {
  afterEach(closeClients);

  it("parses the URL: namespace from the path, query merged, default path /socket.io/", () => {
    const s = io("http://example.test:8123/chat?room=a&x=1", { autoConnect: false, query: { x: "2" }, forceNew: true });
    assert.equal(s.nsp, "/chat");
    assert.equal(s.io.opts.path, "/socket.io/");
    assert.deepEqual(s.io.opts.query, { room: "a", x: "2" });
    assert.equal(s.io.url.hostname, "example.test");
    assert.equal(s.io.url.port, "8123");
    assert.equal(s.connected, false);
    assert.equal(s.io.engine, undefined, "autoConnect: false opens nothing");
    const t = io("https://example.test", { autoConnect: false, forceNew: true, path: "/rt" });
    assert.equal(t.nsp, "/");
    assert.equal(t.io.url.secure, true);
    assert.equal(t.io.url.port, "443");
    assert.equal(t.io.opts.path, "/rt/");
  });

  it("backoff: exponential, capped, with jitter within randomizationFactor", () => {
    const m = new io.Manager("http://127.0.0.1:1", { autoConnect: false, reconnectionDelay: 100, reconnectionDelayMax: 1000, randomizationFactor: 0 });
    assert.deepEqual([1, 2, 3, 4, 5, 6].map(() => m.backoff.duration()), [100, 200, 400, 800, 1000, 1000]);
    const j = new io.Manager("http://127.0.0.1:1", { autoConnect: false, reconnectionDelay: 100, reconnectionDelayMax: 100000, randomizationFactor: 0.5 });
    for (let round = 0; round < 50; round++) {
      j.backoff.reset();
      for (let i = 0; i < 5; i++) {
        const base = 100 * 2 ** i;
        const d = j.backoff.duration();
        assert.ok(d >= base * 0.5 && d <= base * 1.5, `attempt ${i}: ${d} not within ${base} ± 50%`);
      }
    }
    assert.equal(m.reconnectionDelay(), 100);
    assert.equal(m.reconnectionDelay(300).reconnectionDelay(), 300);
    assert.equal(m.reconnection(), true);
  });
});

describe("connection timeout", () => {
  afterEach(closeClients);

  it("connect_error 'timeout' when the handshake does not complete within opts.timeout", async () => {
    const net = require("node:net");
    const sockets = new Set();
    const silent = net.createServer((c) => sockets.add(c)); // accepts, never answers
    await new Promise((r) => silent.listen(0, "127.0.0.1", r));
    try {
      const s = client(`http://127.0.0.1:${silent.address().port}`, { transports: ["polling"], timeout: 200, reconnection: false });
      const t0 = Date.now();
      const [err] = await waitFor(s, "connect_error");
      assert.equal(err.message, "timeout");
      assert.ok(Date.now() - t0 >= 190);
      assert.equal(s.connected, false);
    } finally {
      for (const c of sockets) c.destroy();
      await new Promise((r) => silent.close(r));
    }
  });
});

describe("against a scripted Engine.IO server (polling)", () => {
  let fake;
  afterEach(async () => {
    closeClients();
    if (fake) await fake.close();
    fake = null;
  });

  it("'ping timeout' when no ping comes within pingInterval + pingTimeout", async () => {
    fake = await startFakeEngine({ pingInterval: 300, pingTimeout: 300 });
    const t0 = Date.now();
    const s = client(fake.url, { transports: ["polling"], reconnection: false });
    await waitFor(s, "connect");
    const [reason] = await waitFor(s, "disconnect");
    const elapsed = Date.now() - t0;
    assert.equal(reason, "ping timeout");
    assert.ok(elapsed >= 590 && elapsed < 3000, `closed after ${elapsed} ms`);
  });

  it("answers a ping with a pong and keeps the session", async () => {
    fake = await startFakeEngine({ pingInterval: 300, pingTimeout: 300 });
    const s = client(fake.url, { transports: ["polling"], reconnection: false });
    await waitFor(s, "connect");
    let down = null;
    s.on("disconnect", (r) => (down = r));
    for (let i = 0; i < 4; i++) {
      await new Promise((r) => setTimeout(r, 250));
      const before = fake.posts.length;
      fake.push("2");
      await until(() => fake.posts.length > before, "a pong");
      assert.equal(fake.posts.at(-1), "3");
    }
    assert.equal(down, null, "1 s > pingInterval + pingTimeout without disconnect");
  });

  it("decodes polling payloads: \\x1e separators, b<base64> attachments", async () => {
    fake = await startFakeEngine({ pingInterval: 5000, pingTimeout: 5000 });
    const s = client(fake.url, { transports: ["polling"], reconnection: false });
    await waitFor(s, "connect");
    const got = [];
    s.on("bin", (...a) => got.push(["bin", ...a]));
    s.on("text", (...a) => got.push(["text", ...a]));
    fake.push('451-["bin",{"_placeholder":true,"num":0},"after"]', "bAQID", '42["text","é✓",{"n":1}]');
    await until(() => got.length === 2, "two events");
    assert.equal(got[0][0], "bin");
    assert.ok(Buffer.isBuffer(got[0][1]));
    assert.deepEqual(Array.from(got[0][1]), [1, 2, 3]);
    assert.equal(got[0][2], "after");
    assert.deepEqual(got[1], ["text", "é✓", { n: 1 }]);
  });

  it("encodes binary emits as b<base64> packets", async () => {
    fake = await startFakeEngine({ pingInterval: 5000, pingTimeout: 5000 });
    const s = client(fake.url, { transports: ["polling"], reconnection: false });
    await waitFor(s, "connect");
    s.emit("up", { data: new Uint8Array([9, 8, 7]) }, () => {});
    const packets = () => fake.posts.flatMap((p) => p.split("\x1e")).filter((p) => p !== "3");
    await until(() => packets().length >= 3, "the POSTs");
    assert.deepEqual(packets().slice(1), ['451-0["up",{"data":{"_placeholder":true,"num":0}}]', "bCQgH"]);
  });

  it("splits writes so no POST exceeds maxPayload", async () => {
    fake = await startFakeEngine({ pingInterval: 5000, pingTimeout: 5000, maxPayload: 200 });
    const s = client(fake.url, { transports: ["polling"], reconnection: false });
    await waitFor(s, "connect");
    const sent = Array.from({ length: 12 }, (_, i) => "m" + String(i).padStart(2, "0") + "x".repeat(50));
    for (const m of sent) s.emit("m", m);
    const events = () => fake.posts.flatMap((p) => p.split("\x1e")).filter((p) => p.startsWith('42["m"'));
    await until(() => events().length === 12, "12 messages");
    assert.deepEqual(events().map((p) => JSON.parse(p.slice(2))[1]), sent);
    for (const body of fake.posts) assert.ok(Buffer.byteLength(body) <= 200, `POST of ${Buffer.byteLength(body)} bytes`);
    assert.ok(fake.posts.filter((p) => p.includes('"m"')).length >= 4, "several requests");
  });

  it("'transport error' when a poll fails; 'transport close' on a close packet", async () => {
    fake = await startFakeEngine({ pingInterval: 5000, pingTimeout: 5000 });
    const s = client(fake.url, { transports: ["polling"], reconnection: false });
    await waitFor(s, "connect");
    const d = waitFor(s, "disconnect");
    fake.failNextPoll = 1;
    fake.push("6"); // answer the pending poll; the next one fails
    assert.equal((await d)[0], "transport error");

    const t = client(fake.url, { transports: ["polling"], reconnection: false });
    await waitFor(t, "connect");
    const d2 = waitFor(t, "disconnect");
    fake.push("1");
    assert.equal((await d2)[0], "transport close");
  });

  it("recovery handshake: CONNECT carries {pid, offset, ...auth}; recovered when the pid comes back", async () => {
    const connects = [];
    fake = await startFakeEngine({
      pingInterval: 5000,
      pingTimeout: 5000,
      onConnect: (auth, n) => {
        connects.push(auth);
        return '40{"sid":"same","pid":"p-1"}';
      },
    });
    const s = client(fake.url, { transports: ["polling"], auth: { token: "t" }, reconnectionDelay: 20, randomizationFactor: 0 });
    await waitFor(s, "connect");
    assert.equal(s.recovered, false);
    const seen = [];
    s.on("e", (...a) => seen.push(a));
    fake.push('42["e","first","off-1"]', '42["e","second","off-2"]');
    await until(() => seen.length === 2, "events");
    fake.failNextPoll = 1;
    fake.push("6");
    await waitFor(s, "disconnect");
    await waitFor(s, "connect");
    assert.equal(s.recovered, true);
    assert.deepEqual(connects.map((c) => JSON.parse(c)), [{ token: "t" }, { pid: "p-1", offset: "off-2", token: "t" }]);
  });
});
