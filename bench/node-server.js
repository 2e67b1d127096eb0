// Reference server of the benchmark suite: socket.io (the version pinned in
// the repository's package.json, 4.8.4) with the same contract as
// examples/benchserver, on the default namespace "/":
//
//   join(room)                joins the room and acknowledges;
//   publish({room, payload})  emits "msg" with payload to every socket in the
//                             room, the sender included; acknowledges if asked;
//   echo(...args)             acknowledges with the same arguments.
//
// Usage: PORT=3001 node bench/node-server.js   (default port 3000; listens on
// 127.0.0.1; prints "listening on 127.0.0.1:PORT pid PID"; stops on SIGTERM).
"use strict";

const http = require("http");
const { Server } = require("socket.io");

const port = Number(process.env.PORT || 3000);
const httpServer = http.createServer();
// Defaults otherwise (pingInterval 25 s, pingTimeout 20 s, maxHttpBufferSize
// 1e6, no per-message deflate), as for the Go server.
const io = new Server(httpServer, { serveClient: false });

io.on("connection", (socket) => {
  socket.on("join", (room, ack) => {
    socket.join(room);
    if (typeof ack === "function") ack();
  });
  socket.on("publish", (m, ack) => {
    const p = m || {};
    io.to(p.room).emit("msg", p.payload === undefined ? null : p.payload);
    if (typeof ack === "function") ack();
  });
  socket.on("echo", (...args) => {
    const ack = args.length > 0 && typeof args[args.length - 1] === "function" ? args.pop() : null;
    if (ack) ack(...args);
  });
});

httpServer.listen(port, "127.0.0.1", () => {
  console.log(`listening on 127.0.0.1:${httpServer.address().port} pid ${process.pid}`);
});

const stop = () => {
  io.close();
  setTimeout(() => process.exit(0), 1000).unref();
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
