// Shared helpers for web/test/*.test.js (kept outside web/test/ so `node --test web/test/`
// does not run this file as a test).
"use strict";

const http = require("node:http");
const net = require("node:net");
const WebSocket = require("ws");
const io = require("../switchboard.js");

const open = new Set();

// A client under node: injects `ws` as the WebSocket, fast reconnection, a fresh Manager
// unless the test asks otherwise. Every client is closed by closeClients().
function client(url, opts = {}) {
  const socket = io(url, Object.assign({ WebSocket, forceNew: true, reconnectionDelay: 50, reconnectionDelayMax: 200 }, opts));
  open.add(socket);
  return socket;
}

function closeClients() {
  for (const s of open) {
    s.io.reconnection(false);
    s.disconnect();
    s.io.disconnect();
  }
  open.clear();
}

// Resolves with the arguments of the next `event` on `emitter`; rejects after `ms`.
function waitFor(emitter, event, ms = 3000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(event, on);
      reject(new Error(`timed out after ${ms} ms waiting for "${event}"`));
    }, ms);
    function on(...args) {
      clearTimeout(timer);
      emitter.off(event, on);
      resolve(args);
    }
    emitter.on(event, on);
  });
}

// Resolves once `n` events named `event` arrived, with the argument lists in order.
function collect(emitter, event, n, ms = 5000) {
  return new Promise((resolve, reject) => {
    const got = [];
    const timer = setTimeout(() => {
      emitter.off(event, on);
      reject(new Error(`timed out after ${ms} ms: ${got.length}/${n} "${event}" events`));
    }, ms);
    function on(...args) {
      got.push(args);
      if (got.length === n) {
        clearTimeout(timer);
        emitter.off(event, on);
        resolve(got);
      }
    }
    emitter.on(event, on);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Polls `cond` until it is true; rejects after `ms` with `what`.
async function until(cond, what, ms = 3000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("timed out waiting for " + what);
    await sleep(5);
  }
}

// The Node reference server (socket.io 4.8.4) on 127.0.0.1, an ephemeral port.
async function startReference(serverOpts = {}) {
  const { Server } = require("socket.io");
  const httpServer = http.createServer();
  const server = new Server(httpServer, serverOpts);
  await new Promise((r) => httpServer.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${httpServer.address().port}`;
  return {
    io: server,
    url,
    async close() {
      // A polling transport without a pending GET waits up to 30 s (engine.io's closeTimeout)
      // to deliver its close packet to a client that may be gone already: don't wait.
      for (const c of Object.values(server.engine.clients)) c.transport.closeTimeout = 0;
      server.disconnectSockets(true);
      await new Promise((r) => server.close(() => r()));
    },
  };
}

// A scripted Engine.IO server speaking polling only, for behaviour the reference server
// will not show on demand (no pings, malformed packets, failing polls). It records POST
// bodies. push(...packets) queues raw Engine.IO packets for the next poll.
// onConnect(authJSON, n) returns the answer to the n-th CONNECT (default 40{"sid":"sio-n"}).
async function startFakeEngine({ pingInterval = 100, pingTimeout = 100, maxPayload = 1e6, onConnect } = {}) {
  const fake = { posts: [], queue: [], pending: null, failNextPoll: 0, connects: 0, handshakes: 0 };
  const flush = () => {
    if (fake.pending && fake.queue.length) {
      const res = fake.pending;
      fake.pending = null;
      res.end(fake.queue.splice(0).join("\x1e"));
    }
  };
  fake.push = (...packets) => {
    fake.queue.push(...packets);
    flush();
  };
  const httpServer = http.createServer((req, res) => {
    const u = new URL(req.url, "http://x");
    if (!u.searchParams.get("sid")) {
      fake.handshakes++;
      res.end("0" + JSON.stringify({ sid: "fake-sid", upgrades: [], pingInterval, pingTimeout, maxPayload }));
      return;
    }
    if (req.method === "GET") {
      if (fake.failNextPoll) {
        fake.failNextPoll--;
        res.statusCode = 500;
        res.end("boom");
        return;
      }
      fake.pending = res;
      res.on("close", () => { if (fake.pending === res) fake.pending = null; });
      flush();
      return;
    }
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      fake.posts.push(body);
      for (const p of body.split("\x1e")) {
        if (p.startsWith("40")) {
          fake.connects++;
          fake.queue.push(onConnect ? onConnect(p.slice(2), fake.connects) : '40{"sid":"sio-' + fake.connects + '"}');
        }
      }
      res.end("ok");
      flush();
    });
  });
  await new Promise((r) => httpServer.listen(0, "127.0.0.1", r));
  fake.url = `http://127.0.0.1:${httpServer.address().port}`;
  fake.close = () => {
    if (fake.pending) fake.pending.end("6");
    httpServer.closeAllConnections();
    return new Promise((r) => httpServer.close(() => r()));
  };
  return fake;
}

// A free TCP port on 127.0.0.1 (closed again before returning).
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// Resolves when something accepts TCP connections on 127.0.0.1:port.
async function waitForPort(port, ms = 10000) {
  const end = Date.now() + ms;
  for (;;) {
    const ok = await new Promise((r) => {
      const c = net.connect(port, "127.0.0.1", () => { c.destroy(); r(true); });
      c.on("error", () => r(false));
    });
    if (ok) return;
    if (Date.now() > end) throw new Error("nothing listens on port " + port);
    await sleep(50);
  }
}

module.exports = { io, WebSocket, client, closeClients, waitFor, collect, sleep, until, startReference, startFakeEngine, freePort, waitForPort };
