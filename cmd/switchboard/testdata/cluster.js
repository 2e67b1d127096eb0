// Drives the official socket.io-client against three clustered hubs and
// prints one JSON line of results. argv: urlA, urlB, urlC, alice token, bob token.
"use strict";
const path = require("node:path");
const { io } = require(path.join(process.env.REPO_ROOT, "node_modules", "socket.io-client"));
const [urlA, urlB, urlC, aliceToken, bobToken] = process.argv.slice(2);

function connect(url, auth) {
  return io(url, { auth, forceNew: true, reconnection: false, transports: ["polling", "websocket"] });
}
const once = (s, ev) => new Promise((resolve) => s.once(ev, resolve));

(async () => {
  const out = {};
  const alice = connect(urlA, { token: aliceToken });
  const bob = connect(urlB, { token: bobToken });
  const bob2 = connect(urlC, { token: bobToken });
  await Promise.all([once(alice, "connect"), once(bob, "connect"), once(bob2, "connect")]);
  const joinNotice = once(alice, "switchboard:join");
  out.aliceJoin = await alice.emitWithAck("join", "durable-js", { durable: true });
  out.bobJoin = await bob.emitWithAck("join", "durable-js");
  out.joinNotice = await joinNotice;
  out.bob2Join = await bob2.emitWithAck("join", "durable-js"); // bob is already there: no notice

  const delivery = new Promise((resolve) =>
    alice.on("chat", (data, meta, ack) => { ack(); resolve({ data, meta, ackType: typeof ack }); }));
  out.publish = await bob.emitWithAck("publish", { room: "durable-js", event: "chat", data: { text: "hi" }, id: "m1" });
  out.repeat = await bob2.emitWithAck("publish", { room: "durable-js", event: "chat", data: { text: "hi" }, id: "m1" });
  out.delivery = await delivery;
  out.presence = await bob2.emitWithAck("presence", "durable-js");
  const leaveNotice = once(alice, "switchboard:leave");
  const notices = [];
  alice.on("switchboard:leave", (n) => notices.push(n));
  alice.on("switchboard:join", (n) => notices.push(n));
  bob.close(); // bob2 keeps bob present
  out.afterFirstClose = await alice.emitWithAck("presence", "durable-js");
  bob2.close();
  out.leaveNotice = await leaveNotice;
  out.presenceAfter = await alice.emitWithAck("presence", "durable-js");
  out.notices = notices;
  alice.close();
  console.log(JSON.stringify(out));
})().catch((err) => { console.error(err); process.exit(1); });
