// Reference Socket.IO server (socket.io 4.8.4) for the Go client tests.
//
// Usage: node refserver.js  — listens on 127.0.0.1, port 0; prints the port
// on stdout; exits when stdin closes. Two servers share the HTTP server:
//   path /socket.io/  plain server (scenarios below)
//   path /recovery/   connection-state recovery enabled
//
// Scenarios, on namespace "/" unless noted (an event name, what it does):
//   echo ...args [ack]     acks the args back, or emits "echo" with them without ack
//   emitJSON               emits "json" {a:1,b:[1,2],s:"x"}, 42, "str"
//   emitBinary             emits "binary" <Buffer 01 02 03>, {nested:<Buffer 04 05>}, "text"
//   askAck payload ack     server.emitWithAck("question", payload) to the client (5s timeout), acks the answer array
//   emitMany n ack         emits "seq" 0..n-1, then acks n
//   seqIn i                counts client events received in order; seqInResult ack → {next, bad}
//   record ...args         appends args to a per-socket log; getLog ack → the log
//   noAck                  never acks
//   disconnectMe           socket.disconnect() → client "io server disconnect"
//   dropTransport          socket.conn.close() → client "transport close", then reconnect
//   reasonOf id ack        acks the server-side disconnect reason of socket id (waits up to 5s)
//   whoami ack             acks {id, recovered, auth, transport}
// "/custom": emits "hello" "/custom" on connection; echo as above.
// "/private": middleware requires auth.token === "secret", else rejects with
//   message "not authorized" and data {code: 401, hint: "send token"}; emits "welcome" auth on connection.
// Recovery server ("/recovery/"): joins room "r" and emits "hello" on connection;
//   dropThenEmit n: socket.conn.close(), then io.to("r").emit("missed", i) for i < n after 50ms.
"use strict";
const http = require("http");
const { Server } = require("socket.io");

const httpServer = http.createServer();
const reasons = new Map();
const pingInterval = Number(process.env.PING_INTERVAL || 25000);
const pingTimeout = Number(process.env.PING_TIMEOUT || 20000);

function common(socket) {
  socket.data.log = [];
  socket.data.next = 0;
  socket.data.bad = 0;
  socket.on("disconnect", (reason) => reasons.set(socket.id, reason));
  socket.on("echo", (...args) => {
    const ack = typeof args[args.length - 1] === "function" ? args.pop() : null;
    if (ack) ack(...args);
    else socket.emit("echo", ...args);
  });
  socket.on("whoami", (ack) =>
    ack({ id: socket.id, recovered: socket.recovered, auth: socket.handshake.auth, transport: socket.conn.transport.name }),
  );
}

const io = new Server(httpServer, { pingInterval, pingTimeout });
io.on("connection", (socket) => {
  common(socket);
  socket.on("emitJSON", () => socket.emit("json", { a: 1, b: [1, 2], s: "x" }, 42, "str"));
  socket.on("emitBinary", () =>
    socket.emit("binary", Buffer.from([1, 2, 3]), { nested: Buffer.from([4, 5]) }, "text"),
  );
  socket.on("askAck", async (payload, ack) => {
    try {
      const answer = await socket.timeout(5000).emitWithAck("question", payload);
      ack(answer);
    } catch (err) {
      ack({ error: err.message });
    }
  });
  // n questions in one burst, each waiting for its answer; acks the
  // answers in the order asked.
  socket.on("askMany", async (n, ack) => {
    const answers = await Promise.all(
      Array.from({ length: n }, (_, i) =>
        socket
          .timeout(5000)
          .emitWithAck("question", i)
          .catch((err) => ({ error: err.message })),
      ),
    );
    ack(answers);
  });
  socket.on("emitMany", (n, ack) => {
    for (let i = 0; i < n; i++) socket.emit("seq", i);
    if (typeof ack === "function") ack(n);
  });
  socket.on("seqIn", (i) => {
    if (i !== socket.data.next) socket.data.bad++;
    socket.data.next = i + 1;
  });
  socket.on("seqInResult", (ack) => ack({ next: socket.data.next, bad: socket.data.bad }));
  socket.on("record", (...args) => socket.data.log.push(args));
  socket.on("getLog", (ack) => ack(socket.data.log));
  socket.on("noAck", () => {});
  socket.on("disconnectMe", () => socket.disconnect());
  socket.on("dropTransport", () => socket.conn.close());
  socket.on("reasonOf", (id, ack) => {
    const deadline = Date.now() + 5000;
    const check = () => {
      if (reasons.has(id) || Date.now() > deadline) ack(reasons.get(id) || null);
      else setTimeout(check, 10);
    };
    check();
  });
});

io.of("/custom").on("connection", (socket) => {
  common(socket);
  socket.emit("hello", socket.nsp.name);
});

io.of("/private").use((socket, next) => {
  if (socket.handshake.auth && socket.handshake.auth.token === "secret") return next();
  const err = new Error("not authorized");
  err.data = { code: 401, hint: "send token" };
  next(err);
});
io.of("/private").on("connection", (socket) => {
  common(socket);
  socket.emit("welcome", socket.handshake.auth);
});

const rio = new Server(httpServer, {
  path: "/recovery/",
  pingInterval,
  pingTimeout,
  connectionStateRecovery: { maxDisconnectionDuration: 60000, skipMiddlewares: true },
});
rio.on("connection", (socket) => {
  common(socket);
  if (!socket.recovered) {
    socket.join("r");
    socket.emit("hello", socket.id);
  }
  socket.on("dropThenEmit", (n) => {
    socket.conn.close();
    setTimeout(() => {
      for (let i = 0; i < n; i++) rio.to("r").emit("missed", i);
    }, 50);
  });
});

httpServer.listen(0, "127.0.0.1", () => {
  process.stdout.write(httpServer.address().port + "\n");
});
process.stdin.on("end", () => process.exit(0));
process.stdin.on("close", () => process.exit(0));
process.stdin.resume();
