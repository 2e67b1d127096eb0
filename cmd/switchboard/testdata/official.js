// Drives the official socket.io-client against a running hub and prints one
// JSON line of results. argv: url, alice token, bob token, bad token.
"use strict";
const path = require("node:path");
const { io } = require(path.join(process.env.REPO_ROOT, "node_modules", "socket.io-client"));
const [url, aliceToken, bobToken, badToken] = process.argv.slice(2);

function connect(auth, extra) {
  return io(url, { auth, forceNew: true, reconnection: false, transports: ["polling", "websocket"], ...extra });
}
const once = (s, ev) => new Promise((resolve) => s.once(ev, resolve));

(async () => {
  const out = {};
  const bad = connect({ token: badToken });
  out.refused = (await once(bad, "connect_error")).message;
  bad.close();

  const alice = connect({ token: aliceToken });
  const bob = connect({ token: bobToken });
  await Promise.all([once(alice, "connect"), once(bob, "connect")]);
  const joinNotice = once(alice, "switchboard:join");
  out.aliceJoin = await alice.emitWithAck("join", "durable-room", { durable: true });
  out.bobJoin = await bob.emitWithAck("join", "durable-room");
  out.joinNotice = await joinNotice;
  out.forbidden = await bob.emitWithAck("join", "secret");
  out.notDurable = await bob.emitWithAck("join", "plain", { durable: true });

  // A durable delivery: event(data, meta, ack).
  const delivery = new Promise((resolve) =>
    alice.on("chat", (data, meta, ack) => { ack(); resolve({ data, meta, ackType: typeof ack }); }));
  out.publish = await bob.emitWithAck("publish", { room: "durable-room", event: "chat", data: { text: "hi" }, id: "m1" });
  out.repeat = await bob.emitWithAck("publish", { room: "durable-room", event: "chat", data: { text: "hi" }, id: "m1" });
  out.delivery = await delivery;
  out.invalid = await bob.emitWithAck("publish", { room: "durable-room", event: "switchboard:x" });
  out.presence = await alice.emitWithAck("presence", "durable-room");
  const leaveNotice = once(alice, "switchboard:leave");
  bob.close();
  out.leaveNotice = await leaveNotice;
  alice.close();
  console.log(JSON.stringify(out));
})().catch((err) => { console.error(err); process.exit(1); });
