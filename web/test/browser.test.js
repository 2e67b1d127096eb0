// switchboard.js loaded as a browser <script> would be: a fresh global scope with no `module`,
// `process` or `Buffer`, only web APIs (fetch, WebSocket, URL, atob/btoa, location).
"use strict";

const { describe, it, before, after } = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const vm = require("node:vm");
const WebSocket = require("ws");
const { startReference, waitFor } = require("../testlib/harness.js");

const source = fs.readFileSync(path.join(__dirname, "..", "switchboard.js"), "utf8");

function browserGlobal(origin) {
  const u = new URL(origin);
  const g = {
    fetch, WebSocket, URL, URLSearchParams, AbortController, atob, btoa, console, TextEncoder, TextDecoder,
    setTimeout, clearTimeout, setInterval, clearInterval, queueMicrotask,
    location: { protocol: u.protocol, host: u.host, hostname: u.hostname, port: u.port, href: u.href },
  };
  g.window = g;
  g.self = g;
  return g;
}

describe("as a browser script", () => {
  let srv;
  before(async () => {
    srv = await startReference();
    srv.io.on("connection", (s) => {
      s.on("echo", (...args) => args.pop()(...args));
      s.emit("hello", new Uint8Array([1, 2, 3]));
    });
  });
  after(() => srv.close());

  for (const transports of [["polling"], ["websocket"], ["polling", "websocket"]]) {
    it(`defines window.io; io() connects to the page's origin; binary is ArrayBuffer (${transports.join("+")})`, async () => {
      const win = browserGlobal(srv.url + "/page.html");
      vm.createContext(win);
      vm.runInContext(source, win, { filename: "switchboard.js" });
      assert.equal(typeof win.io, "function");
      assert.equal(typeof win.process, "undefined");
      const socket = win.io({ transports });
      try {
        const hello = waitFor(socket, "hello");
        await waitFor(socket, "connect");
        const [bin] = await hello;
        assert.equal(Object.prototype.toString.call(bin), "[object ArrayBuffer]");
        assert.deepEqual(Array.from(new Uint8Array(bin)), [1, 2, 3]);
        const [a, b] = await new Promise((r) => socket.emit("echo", new Uint8Array([4, 5]).buffer, "é", (...x) => r(x)));
        assert.equal(Object.prototype.toString.call(a), "[object ArrayBuffer]");
        assert.deepEqual(Array.from(new Uint8Array(a)), [4, 5]);
        assert.equal(b, "é");
        if (transports.length === 2 && socket.io.engine.transport.name !== "websocket") await waitFor(socket.io.engine, "upgrade");
        assert.equal(socket.io.engine.transport.name, transports.at(-1));
      } finally {
        socket.disconnect();
      }
    });
  }
});
