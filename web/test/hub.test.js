// The hub helpers of switchboard.js (join / leave / publish / presence, durable deliveries
// acked when the handler returns) against testlib/hub.js, a small Node implementation of the
// hub client protocol of DESIGN.md. The Go hub is tested against the same client elsewhere.
"use strict";

const { describe, it, before, after, afterEach } = require("node:test");
const assert = require("node:assert/strict");
const { client, closeClients, waitFor, sleep, until } = require("../testlib/harness.js");
const { startHub } = require("../testlib/hub.js");

describe("hub helpers", () => {
  let hub;
  before(async () => {
    hub = await startHub({ ackTimeout: 300 });
  });
  after(() => hub.close());
  afterEach(() => {
    closeClients();
    hub.acks.length = 0;
    hub.timeouts.length = 0;
  });

  const connect = async (clientId, opts = {}) => {
    const s = client(hub.url, Object.assign({ auth: { clientId }, transports: ["websocket"] }, opts));
    await waitFor(s, "connect");
    return s;
  };
  const acked = (room) => hub.acks.filter((a) => a.room === room).map((a) => `${a.identity}@${a.offset}`);

  it("join and leave resolve with the {ok:true} answer", async () => {
    const s = await connect("alice");
    assert.deepEqual(await s.join("lobby"), { ok: true, room: "lobby", durable: false });
    assert.deepEqual(await s.leave("lobby"), { ok: true });
  });

  it("refusals reject with an Error carrying .code, .message and the answer", async () => {
    const s = await connect("alice");
    const err = await s.join("forbidden-room").then(() => null, (e) => e);
    assert.ok(err instanceof Error);
    assert.equal(err.code, "forbidden");
    assert.equal(err.message, "may not join forbidden-room");
    assert.deepEqual(err.response, { ok: false, error: "forbidden", message: "may not join forbidden-room" });
    await assert.rejects(s.join("plain", { durable: true }), { code: "not_durable", message: "plain is not durable" });
    await assert.rejects(s.publish("lobby", "connect", 1), { code: "invalid_event" });
    await assert.rejects(s.publish("lobby", "switchboard:join", 1), { code: "invalid_event" });
    await assert.rejects(s.join("weird"), { code: "bad_response" });
    await assert.rejects(s.timeout(100).join("slow"), { message: "operation has timed out" });
    // the connection is still fine
    assert.deepEqual(await s.join("lobby"), { ok: true, room: "lobby", durable: false });
  });

  it("publish reaches the other members as (data, meta), not the sender; binary data survives", async () => {
    const a = await connect("alice");
    const b = await connect("bob");
    const b2 = await connect("bob"); // a second connection of the same identity
    for (const s of [a, b, b2]) await s.join("lobby");
    let selfCopies = 0;
    a.on("msg", () => selfCopies++);
    const got = waitFor(b, "msg");
    const got2 = waitFor(b2, "msg");
    assert.deepEqual(await a.publish("lobby", "msg", { text: "hi", pic: Buffer.from([1, 2]) }), { ok: true });
    const [data, meta] = await got;
    assert.equal(data.text, "hi");
    assert.deepEqual(Array.from(data.pic), [1, 2]);
    assert.equal(meta.room, "lobby");
    assert.equal(meta.from, "alice");
    assert.equal((await got2)[0].text, "hi");
    await sleep(50);
    assert.equal(selfCopies, 0);
  });

  it("presence: join/leave notices per identity and presence(room)", async () => {
    const a = await connect("alice");
    await a.join("room-p");
    const joined = waitFor(a, "switchboard:join");
    const b = await connect("bob");
    await b.join("room-p");
    assert.deepEqual((await joined)[0], { room: "room-p", identity: "bob" });
    const answer = await a.presence("room-p");
    assert.deepEqual(answer, { ok: true, room: "room-p", identities: ["alice", "bob"] });
    const left = waitFor(a, "switchboard:leave");
    await b.leave("room-p");
    assert.deepEqual((await left)[0], { room: "room-p", identity: "bob" });
    assert.deepEqual((await a.presence("room-p")).identities, ["alice"]);
  });

  it("durable: a handler gets (data, meta) and the ack goes out when it returns; publish ids dedupe", async () => {
    const sub = await connect("sub1");
    const pub = await connect("pub1");
    const calls = [];
    sub.on("note", (...args) => calls.push(args));
    assert.deepEqual(await sub.join("durable-a", { durable: true }), { ok: true, room: "durable-a", durable: true });
    const r1 = await pub.publish("durable-a", "note", "one", { id: "m-1" });
    const r2 = await pub.publish("durable-a", "note", "two", { id: "m-2" });
    const again = await pub.publish("durable-a", "note", "one", { id: "m-1" });
    assert.deepEqual([r1, r2, again], [{ ok: true, offset: 1 }, { ok: true, offset: 2 }, { ok: true, offset: 1 }]);
    await until(() => acked("durable-a").length === 2, "two acks");
    assert.deepEqual(calls, [
      ["one", { room: "durable-a", offset: 1, from: "pub1" }],
      ["two", { room: "durable-a", offset: 2, from: "pub1" }],
    ], "exactly (data, meta): no ack function, no duplicate");
    assert.deepEqual(acked("durable-a"), ["sub1@1", "sub1@2"]);
    assert.deepEqual(hub.timeouts, []);
  });

  it("durable: an async handler is acked only when its promise resolves", async () => {
    const sub = await connect("sub2");
    const pub = await connect("pub2");
    let finish;
    sub.on("job", () => new Promise((r) => (finish = r)));
    await sub.join("durable-b", { durable: true });
    await pub.publish("durable-b", "job", { n: 1 });
    await until(() => finish, "the delivery");
    await sleep(100);
    assert.deepEqual(acked("durable-b"), [], "not acked while the handler runs");
    finish();
    await until(() => acked("durable-b").length === 1, "the ack");
    assert.deepEqual(acked("durable-b"), ["sub2@1"]);
  });

  for (const how of ["throws", "rejects"]) {
    it(`durable: a handler that ${how} is not acked, the hub redelivers, the next success acks`, async () => {
      const room = "durable-" + how;
      const sub = await connect("sub-" + how);
      const pub = await connect("pub-" + how);
      const seen = [];
      const failures = [];
      sub.on("delivery_error", (err, ev, meta) => failures.push([err.message, ev, meta.offset]));
      sub.on("task", (data, meta) => {
        seen.push(meta.offset);
        if (seen.length === 1) {
          if (how === "throws") throw new Error("boom");
          return Promise.reject(new Error("boom"));
        }
      });
      await sub.join(room, { durable: true });
      await pub.publish(room, "task", "do it");
      await until(() => acked(room).length === 1, "the ack after redelivery", 4000);
      assert.deepEqual(seen, [1, 1], "delivered twice");
      assert.equal(hub.timeouts.filter((t) => t.room === room).length, 1, "the first delivery was not acked");
      assert.deepEqual(failures, [["boom", "task", 1]]);
    });
  }

  it("durable: a handler taking (data, meta, ack) acks by itself; a delivery nobody handles is not acked", async () => {
    const sub = await connect("sub3");
    const pub = await connect("pub3");
    let ackFn;
    sub.on("manual", (data, meta, ack) => (ackFn = ack));
    await sub.join("durable-c", { durable: true });
    await pub.publish("durable-c", "manual", 1);
    await until(() => ackFn, "the delivery");
    assert.equal(typeof ackFn, "function");
    await sleep(100);
    assert.deepEqual(acked("durable-c"), []);
    ackFn();
    await until(() => acked("durable-c").length === 1, "the manual ack");

    const idle = await connect("sub4");
    await idle.join("durable-d", { durable: true });
    await pub.publish("durable-d", "unhandled", 1);
    await until(() => hub.timeouts.some((t) => t.room === "durable-d"), "an ack timeout", 3000);
    assert.deepEqual(acked("durable-d"), []);
  });

  it("durable: once() handlers are acked too", async () => {
    const sub = await connect("sub5");
    const pub = await connect("pub5");
    const seen = [];
    sub.once("one-shot", (data) => seen.push(data));
    await sub.join("durable-e", { durable: true });
    await pub.publish("durable-e", "one-shot", "x");
    await until(() => acked("durable-e").length === 1, "the ack");
    assert.deepEqual(seen, ["x"]);
  });

  it("durable: events published while offline are replayed on reconnect, in order, and acked", async () => {
    const sub = await connect("sub6");
    const pub = await connect("pub6");
    const seen = [];
    sub.on("feed", (data, meta) => seen.push(`${data}@${meta.offset}`));
    await sub.join("durable-f", { durable: true });
    await pub.publish("durable-f", "feed", "a");
    await until(() => acked("durable-f").length === 1, "first ack");
    sub.disconnect();
    for (const x of ["b", "c", "d"]) await pub.publish("durable-f", "feed", x);
    sub.connect();
    await until(() => acked("durable-f").length === 4, "replayed acks");
    assert.deepEqual(seen, ["a@1", "b@2", "c@3", "d@4"]);
    assert.deepEqual(acked("durable-f"), ["sub6@1", "sub6@2", "sub6@3", "sub6@4"]);
  });

  it("non-durable room with connection-state recovery: the handler sees (data, meta, offsetString)", async () => {
    const a = await connect("alice");
    const b = await connect("bob");
    await a.join("live");
    await b.join("live");
    const got = waitFor(b, "tick");
    await a.publish("live", "tick", 42);
    const args = await got;
    assert.equal(args.length, 3);
    assert.equal(args[0], 42);
    assert.deepEqual(args[1], { room: "live", from: "alice" });
    assert.equal(typeof args[2], "string", "the recovery offset");
  });
});
