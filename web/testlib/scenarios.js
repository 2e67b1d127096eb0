// Scenarios run against every server that implements this part of the hub protocol of
// cmd/switchboard: "echo" acks with its arguments, "join"(room, ack) answers {ok:true},
// "publish"({room, event, data}) reaches the other members of room as event(data, meta).
"use strict";

const { describe, it, afterEach } = require("node:test");
const assert = require("node:assert/strict");
const { client, closeClients, waitFor, collect } = require("./harness.js");

const MODES = {
  polling: { transports: ["polling"], final: "polling" },
  websocket: { transports: ["websocket"], final: "websocket" },
  "polling → websocket upgrade": { transports: ["polling", "websocket"], final: "websocket" },
};

function bytes(v) {
  return Array.from(new Uint8Array(v.buffer ? v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength) : v));
}

// getURL() is called inside the tests (servers start in a `before` hook).
function commonScenarios(getURL) {
  for (const [mode, { transports, final }] of Object.entries(MODES)) {
    describe(mode, () => {
      afterEach(closeClients);

      it("connects, exposes id and the engine, upgrades when asked", async () => {
        const s = client(getURL(), { transports });
        assert.equal(s.connected, false);
        await waitFor(s, "connect");
        assert.equal(s.connected, true);
        assert.equal(typeof s.id, "string");
        assert.ok(s.id.length > 0);
        assert.equal(typeof s.io.engine.id, "string");
        if (final !== s.io.engine.transport.name) await waitFor(s.io.engine, "upgrade");
        assert.equal(s.io.engine.transport.name, final);
        // still usable after the upgrade
        assert.deepEqual(await s.emitWithAck("echo", "after"), "after");
      });

      it("echoes JSON arguments through an ack callback", async () => {
        const s = client(getURL(), { transports });
        const args = await new Promise((resolve) =>
          s.emit("echo", { a: 1, nested: { list: [1, "two", null, true] } }, "héllo ✓", 42, null, (...a) => resolve(a)));
        assert.deepEqual(args, [{ a: 1, nested: { list: [1, "two", null, true] } }, "héllo ✓", 42, null]);
      });

      it("sends and receives binary attachments (Buffer, Uint8Array, ArrayBuffer)", async () => {
        const s = client(getURL(), { transports });
        const big = Buffer.alloc(100_000, 7);
        const [a, b, c, d] = await new Promise((resolve) =>
          s.emit("echo", Buffer.from([1, 2, 3]), { inner: new Uint8Array([4, 5]) }, new Uint8Array([6]).buffer, big, (...r) => resolve(r)));
        assert.ok(Buffer.isBuffer(a), "binary arrives as a Buffer under node");
        assert.deepEqual(bytes(a), [1, 2, 3]);
        assert.deepEqual(bytes(b.inner), [4, 5]);
        assert.deepEqual(bytes(c), [6]);
        assert.equal(d.length, 100_000);
        assert.ok(d.every((x) => x === 7));
      });

      it("emitWithAck resolves with the first answer; timeout() fails when nobody answers", async () => {
        const s = client(getURL(), { transports });
        assert.deepEqual(await s.emitWithAck("echo", { x: 1 }, "second"), { x: 1 });
        const err = await new Promise((resolve) => s.timeout(150).emit("nobody-answers", 1, (e) => resolve(e)));
        assert.ok(err instanceof Error);
        assert.equal(err.message, "operation has timed out");
        await assert.rejects(s.timeout(100).emitWithAck("nobody-answers"), { message: "operation has timed out" });
        // with a timeout, a received answer comes as (null, ...args)
        assert.deepEqual(await new Promise((r) => s.timeout(2000).emit("echo", 5, (...a) => r(a))), [null, 5]);
      });

      it("buffers emits made before the connection and sends them in order", async () => {
        const s = client(getURL(), { transports });
        const answers = [];
        const done = new Promise((resolve) => {
          for (let i = 0; i < 5; i++) s.emit("echo", i, (v) => { answers.push(v); if (answers.length === 5) resolve(); });
        });
        assert.equal(s.connected, false);
        assert.equal(s.sendBuffer.length, 5);
        await done;
        assert.deepEqual(answers, [0, 1, 2, 3, 4]);
      });

      it("relays 1,000 room events in order to another client", async () => {
        const a = client(getURL(), { transports });
        const b = client(getURL(), { transports });
        assert.deepEqual(await a.emitWithAck("join", "order"), { ok: true });
        assert.deepEqual(await b.emitWithAck("join", "order"), { ok: true });
        const got = collect(b, "chat", 1000, 15000);
        let echoedToSender = 0;
        a.on("chat", () => echoedToSender++);
        for (let i = 0; i < 1000; i++) a.emit("publish", { room: "order", event: "chat", data: "m" + i });
        const events = await got;
        assert.deepEqual(events.map((e) => e[0]), Array.from({ length: 1000 }, (_, i) => "m" + i));
        assert.ok(events.every((e) => e[1].room === "order"));
        assert.equal(echoedToSender, 0, "the sender does not get its own message");
      });

      it("client disconnect: reason 'io client disconnect', no reconnection", async () => {
        const s = client(getURL(), { transports });
        await waitFor(s, "connect");
        const reasons = [];
        s.on("disconnect", (r) => reasons.push(r));
        let attempts = 0;
        s.io.on("reconnect_attempt", () => attempts++);
        s.disconnect();
        assert.deepEqual(reasons, ["io client disconnect"]);
        assert.equal(s.connected, false);
        assert.equal(s.id, undefined);
        assert.equal(s.active, false);
        await new Promise((r) => setTimeout(r, 150));
        assert.equal(attempts, 0);
        // and connect() brings it back
        s.connect();
        await waitFor(s, "connect");
        assert.equal(s.connected, true);
      });
    });
  }
}

module.exports = { commonScenarios, MODES, bytes };
