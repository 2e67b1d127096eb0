/*!
 * switchboard.js — a small Socket.IO v4 client (Engine.IO v4, Socket.IO protocol v5)
 * with helpers for the Switchboard hub protocol (join / leave / publish / presence,
 * durable deliveries acked when the handler returns).
 *
 * Plain modern JavaScript, no build step, no dependencies. In a browser it defines the
 * global `io`; under node `require("./switchboard.js")` returns `io`. Node has no global
 * WebSocket before v22: pass one, e.g. `io(url, { WebSocket: require("ws") })`.
 *
 * The API follows socket.io-client 4.x: io(url, opts) → Socket; socket.io is the Manager
 * (one Engine.IO connection per origin shared by namespaces, unless forceNew).
 */
(function (root, factory) {
  "use strict";
  const io = factory();
  if (typeof module === "object" && module && module.exports) module.exports = io;
  else root.io = io;
})(typeof globalThis !== "undefined" ? globalThis : this, function () {
  "use strict";

  const isNode = typeof process === "object" && !!(process.versions && process.versions.node);
  const NodeBuffer = isNode && typeof Buffer === "function" ? Buffer : null;
  const nextTick = (fn) => Promise.resolve().then(fn);

  // ---------------------------------------------------------------------------
  // Emitter

  class Emitter {
    on(ev, fn) {
      const map = this._ls || (this._ls = new Map());
      if (!map.has(ev)) map.set(ev, []);
      map.get(ev).push(fn);
      return this;
    }
    once(ev, fn) {
      const self = this;
      function wrapper(...args) {
        self.off(ev, wrapper);
        return fn.apply(this, args);
      }
      wrapper.fn = fn;
      return this.on(ev, wrapper);
    }
    off(ev, fn) {
      if (!this._ls) return this;
      if (ev === undefined) this._ls.clear();
      else if (fn === undefined) this._ls.delete(ev);
      else {
        const list = this._ls.get(ev) || [];
        const i = list.findIndex((l) => l === fn || l.fn === fn);
        if (i >= 0) list.splice(i, 1);
        if (!list.length) this._ls.delete(ev);
      }
      return this;
    }
    emit(ev, ...args) {
      const list = this._ls && this._ls.get(ev);
      if (list) for (const fn of list.slice()) fn.apply(this, args);
      return this;
    }
    listeners(ev) {
      return (this._ls && this._ls.get(ev) || []).slice();
    }
    hasListeners(ev) {
      return this.listeners(ev).length > 0;
    }
  }
  Emitter.prototype.addEventListener = Emitter.prototype.on;
  Emitter.prototype.removeListener = Emitter.prototype.off;
  Emitter.prototype.removeEventListener = Emitter.prototype.off;
  Emitter.prototype.removeAllListeners = Emitter.prototype.off;
  Emitter.prototype.emitReserved = Emitter.prototype.emit;

  // Subscribes and returns the unsubscribe function.
  function sub(obj, ev, fn) {
    obj.on(ev, fn);
    return () => obj.off(ev, fn);
  }

  // ---------------------------------------------------------------------------
  // Binary helpers. Outgoing: ArrayBuffer or any ArrayBuffer view (Uint8Array, Buffer...).
  // Incoming: Buffer under node, ArrayBuffer in browsers.

  function isBinary(v) {
    return v != null && typeof v === "object" &&
      (ArrayBuffer.isView(v) || Object.prototype.toString.call(v) === "[object ArrayBuffer]");
  }
  function hasBinary(v, depth = 0) {
    if (v == null || typeof v !== "object" || depth > 100) return false;
    if (isBinary(v)) return true;
    if (Array.isArray(v)) return v.some((x) => hasBinary(x, depth + 1));
    if (typeof v.toJSON === "function" && !(v instanceof Date)) return hasBinary(v.toJSON(), depth + 1);
    for (const k of Object.keys(v)) if (hasBinary(v[k], depth + 1)) return true;
    return false;
  }
  function toBytes(v) {
    return ArrayBuffer.isView(v) ? new Uint8Array(v.buffer, v.byteOffset, v.byteLength) : new Uint8Array(v);
  }
  // Received binary data (ArrayBuffer, Buffer or view) in the platform's type.
  function fromWire(v) {
    if (NodeBuffer) return NodeBuffer.isBuffer(v) ? v : NodeBuffer.from(toBytes(v));
    if (ArrayBuffer.isView(v)) return v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength);
    return v;
  }
  function toBase64(v) {
    const bytes = toBytes(v);
    if (NodeBuffer) return NodeBuffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
    let s = "";
    for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    return btoa(s);
  }
  function fromBase64(s) {
    if (NodeBuffer) return NodeBuffer.from(s, "base64");
    const bin = atob(s);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }
  function utf8Length(s) {
    let n = 0;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c < 0x80) n += 1;
      else if (c < 0x800) n += 2;
      else if (c < 0xd800 || c >= 0xe000) n += 3;
      else { i++; n += 4; }
    }
    return n;
  }

  // ---------------------------------------------------------------------------
  // Engine.IO v4 packets

  const EIO_TYPES = ["open", "close", "ping", "pong", "message", "upgrade", "noop"];

  // Encodes one Engine.IO packet; binary as a raw frame (websocket) or "b"+base64 (polling).
  function encodeEioPacket(p, rawBinary) {
    if (isBinary(p.data)) return rawBinary ? p.data : "b" + toBase64(p.data);
    return EIO_TYPES.indexOf(p.type) + (p.data === undefined ? "" : String(p.data));
  }
  function decodeEioPacket(data) {
    if (typeof data !== "string") return { type: "message", data: fromWire(data) };
    if (data.charAt(0) === "b") return { type: "message", data: fromBase64(data.slice(1)) };
    const type = /^[0-6]/.test(data) && EIO_TYPES[Number(data.charAt(0))];
    if (!type) return { type: "error", data: "parser error" };
    return data.length > 1 ? { type, data: data.slice(1) } : { type };
  }
  const SEPARATOR = "\x1e";

  // ---------------------------------------------------------------------------
  // Socket.IO v5 packets

  const RESERVED = new Set(["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"]);
  const T = { CONNECT: 0, DISCONNECT: 1, EVENT: 2, ACK: 3, CONNECT_ERROR: 4, BINARY_EVENT: 5, BINARY_ACK: 6 };

  function deconstruct(v, buffers) {
    if (isBinary(v)) {
      buffers.push(v);
      return { _placeholder: true, num: buffers.length - 1 };
    }
    if (Array.isArray(v)) return v.map((x) => deconstruct(x, buffers));
    if (v && typeof v === "object" && !(v instanceof Date)) {
      if (typeof v.toJSON === "function") return deconstruct(v.toJSON(), buffers);
      const out = {};
      for (const k of Object.keys(v)) out[k] = deconstruct(v[k], buffers);
      return out;
    }
    return v;
  }
  function reconstruct(v, buffers) {
    if (!v || typeof v !== "object") return v;
    if (v._placeholder === true) {
      if (typeof v.num === "number" && v.num >= 0 && v.num < buffers.length) return buffers[v.num];
      throw new Error("illegal attachments");
    }
    if (Array.isArray(v)) return v.map((x) => reconstruct(x, buffers));
    for (const k of Object.keys(v)) v[k] = reconstruct(v[k], buffers);
    return v;
  }

  // Returns the Engine.IO messages for one Socket.IO packet: a string, then attachments.
  function encodeSioPacket(p) {
    let type = p.type;
    let data = p.data;
    const buffers = [];
    if ((type === T.EVENT || type === T.ACK) && hasBinary(data)) {
      type = type === T.EVENT ? T.BINARY_EVENT : T.BINARY_ACK;
      data = deconstruct(data, buffers);
    }
    let s = String(type);
    if (type === T.BINARY_EVENT || type === T.BINARY_ACK) s += buffers.length + "-";
    if (p.nsp && p.nsp !== "/") s += p.nsp + ",";
    if (p.id != null) s += p.id;
    if (data !== undefined) s += JSON.stringify(data);
    return [s, ...buffers];
  }

  function isObject(v) {
    return v !== null && typeof v === "object" && !Array.isArray(v);
  }

  function decodeSioString(s) {
    if (!/^[0-6]/.test(s)) throw new Error("unknown packet type");
    const type = Number(s.charAt(0));
    let i = 1;
    const p = { type, nsp: "/" };
    if (type === T.BINARY_EVENT || type === T.BINARY_ACK) {
      const dash = s.indexOf("-", i);
      const n = s.slice(i, dash);
      if (dash < 0 || !/^\d+$/.test(n)) throw new Error("illegal attachments");
      p.attachments = Number(n);
      i = dash + 1;
    }
    if (s.charAt(i) === "/") {
      let end = s.indexOf(",", i);
      if (end < 0) end = s.length;
      p.nsp = s.slice(i, end);
      i = end + 1;
    }
    const id = /^\d+/.exec(s.slice(i));
    if (id) {
      p.id = Number(id[0]);
      i += id[0].length;
    }
    if (i < s.length) p.data = JSON.parse(s.slice(i));
    const ok = {
      [T.CONNECT]: () => p.data === undefined || isObject(p.data),
      [T.DISCONNECT]: () => p.data === undefined,
      [T.CONNECT_ERROR]: () => typeof p.data === "string" || isObject(p.data),
      [T.EVENT]: () => Array.isArray(p.data) && (typeof p.data[0] === "number" ||
        (typeof p.data[0] === "string" && !RESERVED.has(p.data[0]))),
      [T.ACK]: () => Array.isArray(p.data) && p.id !== undefined,
    };
    ok[T.BINARY_EVENT] = ok[T.EVENT];
    ok[T.BINARY_ACK] = ok[T.ACK];
    if (!ok[type]()) throw new Error("invalid payload");
    if (type === T.CONNECT_ERROR && typeof p.data === "string") p.data = { message: p.data };
    return p;
  }

  // Turns Engine.IO messages back into Socket.IO packets (waiting for binary attachments).
  class Decoder extends Emitter {
    add(msg) {
      if (typeof msg === "string") {
        if (this.pending) throw new Error("got plaintext data when reconstructing a packet");
        const p = decodeSioString(msg);
        if (p.attachments) this.pending = { p, buffers: [] };
        else this.emit("decoded", p);
      } else {
        if (!this.pending) throw new Error("got binary data when not reconstructing a packet");
        const { p, buffers } = this.pending;
        buffers.push(msg);
        if (buffers.length === p.attachments) {
          this.pending = null;
          p.data = reconstruct(p.data, buffers);
          this.emit("decoded", p);
        }
      }
    }
    destroy() {
      this.pending = null;
    }
  }

  // ---------------------------------------------------------------------------
  // Transports. Each emits "open", "packet", "drain", "error", "close"; has `writable`.

  function encodeQuery(q) {
    return Object.keys(q).filter((k) => q[k] !== undefined)
      .map((k) => encodeURIComponent(k) + "=" + encodeURIComponent(q[k])).join("&");
  }
  function randomString() {
    return Date.now().toString(36) + Math.random().toString(36).slice(2, 6);
  }
  function transportError(reason, description) {
    const err = new Error(reason);
    err.type = "TransportError";
    err.description = description;
    return err;
  }

  class Transport extends Emitter {
    constructor(engine, name) {
      super();
      this.engine = engine;
      this.name = name;
      this.opts = engine.opts;
      this.query = Object.assign({}, engine.opts.query, { EIO: 4, transport: name });
      if (engine.id) this.query.sid = engine.id;
      this.writable = false;
      this.readyState = "";
    }
    uri(scheme) {
      const q = Object.assign({}, this.query);
      if (this.name === "polling" && this.opts.timestampRequests !== false) q[this.opts.timestampParam || "t"] = randomString();
      const e = this.engine;
      const defaultPort = e.secure ? "443" : "80";
      const port = e.port && String(e.port) !== defaultPort ? ":" + e.port : "";
      const qs = encodeQuery(q);
      return scheme + (e.secure ? "s" : "") + "://" + e.hostname + port + this.opts.path + (qs ? "?" + qs : "");
    }
    open() {
      this.readyState = "opening";
      this.doOpen();
      return this;
    }
    onOpen() {
      this.readyState = "open";
      this.writable = true;
      this.emit("open");
    }
    onError(reason, description) {
      this.emit("error", transportError(reason, description));
    }
    onClose(description) {
      this.readyState = "closed";
      this.emit("close", description);
    }
    close() {
      if (this.readyState === "opening" || this.readyState === "open") {
        this.doClose();
        this.onClose();
      }
      return this;
    }
    send(packets) {
      if (this.readyState === "open") this.write(packets);
    }
    pause(onPause) {
      onPause();
    }
  }

  // HTTP long-polling over fetch (browsers and node 18+).
  class Polling extends Transport {
    constructor(engine) {
      super(engine, "polling");
      this.polling = false;
      this.aborts = new Set();
    }
    request(method, body) {
      const ctl = typeof AbortController === "function" ? new AbortController() : null;
      if (ctl) this.aborts.add(ctl);
      const headers = Object.assign({}, this.opts.extraHeaders);
      if (method === "POST") headers["content-type"] = "text/plain;charset=UTF-8";
      const init = { method, headers, body, cache: "no-store", signal: ctl ? ctl.signal : undefined };
      if (this.opts.withCredentials) init.credentials = "include";
      const fetchFn = this.opts.fetch || globalThis.fetch;
      return fetchFn(this.uri("http"), init).then((res) => res.text().then((text) => {
        if (!res.ok) throw transportError("HTTP " + res.status, text);
        return text;
      })).finally(() => ctl && this.aborts.delete(ctl));
    }
    doOpen() {
      this.poll();
    }
    poll() {
      this.polling = true;
      this.request("GET").then((text) => this.onData(text), (err) => {
        if (this.readyState !== "closed") this.onError("xhr poll error", err);
      });
    }
    onData(text) {
      if (this.readyState === "closed") return;
      for (const part of text.split(SEPARATOR)) {
        const packet = decodeEioPacket(part);
        if (this.readyState === "opening" && packet.type === "open") this.onOpen();
        if (packet.type === "close") {
          this.onClose("transport closed by the server");
          return;
        }
        this.emit("packet", packet);
        if (this.readyState === "closed") return;
      }
      this.polling = false;
      this.emit("pollComplete");
      if (this.readyState === "open") this.poll();
    }
    pause(onPause) {
      this.readyState = "pausing";
      let pending = (this.polling ? 1 : 0) + (this.writable ? 0 : 1);
      const done = () => {
        if (--pending <= 0) {
          this.readyState = "paused";
          onPause();
        }
      };
      if (pending === 0) {
        pending = 1;
        return done();
      }
      if (this.polling) this.once("pollComplete", done);
      if (!this.writable) this.once("drain", done);
    }
    write(packets) {
      this.writable = false;
      const body = packets.map((p) => encodeEioPacket(p, false)).join(SEPARATOR);
      this.request("POST", body).then(() => {
        this.writable = true;
        this.emit("drain");
      }, (err) => {
        if (this.readyState !== "closed") this.onError("xhr post error", err);
      });
    }
    doClose() {
      // Stop the pending long-poll, then tell the server (best effort).
      for (const ctl of this.aborts) if (ctl) ctl.abort();
      if (this.readyState === "open") this.write([{ type: "close" }]);
    }
  }

  class WS extends Transport {
    constructor(engine) {
      super(engine, "websocket");
    }
    doOpen() {
      const Ctor = this.opts.WebSocket || globalThis.WebSocket;
      if (!Ctor) {
        setTimeout(() => this.onError("websocket error", "no WebSocket implementation (pass opts.WebSocket)"), 0);
        return;
      }
      try {
        this.ws = isNode && this.opts.extraHeaders
          ? new Ctor(this.uri("ws"), this.opts.protocols, { headers: this.opts.extraHeaders })
          : this.opts.protocols ? new Ctor(this.uri("ws"), this.opts.protocols) : new Ctor(this.uri("ws"));
      } catch (err) {
        setTimeout(() => this.onError("websocket error", err), 0);
        return;
      }
      this.ws.binaryType = "arraybuffer";
      this.ws.onopen = () => this.onOpen();
      this.ws.onclose = (ev) => this.onClose({ description: "websocket connection closed", context: ev });
      this.ws.onmessage = (ev) => this.emit("packet", decodeEioPacket(ev.data));
      this.ws.onerror = (ev) => this.onError("websocket error", ev);
    }
    write(packets) {
      this.writable = false;
      for (const p of packets) {
        try {
          this.ws.send(encodeEioPacket(p, true));
        } catch (e) { /* the close event follows */ }
      }
      nextTick(() => {
        this.writable = true;
        this.emit("drain");
      });
    }
    doClose() {
      if (this.ws) {
        this.ws.onerror = () => {};
        this.ws.onclose = null;
        this.ws.close();
        this.ws = null;
      }
    }
  }

  const TRANSPORTS = { polling: Polling, websocket: WS };

  // ---------------------------------------------------------------------------
  // Engine.IO socket: handshake, heartbeat, write buffer, polling → websocket upgrade.

  class Engine extends Emitter {
    constructor(url, opts) {
      super();
      this.secure = url.secure;
      this.hostname = url.hostname;
      this.port = url.port;
      this.opts = opts;
      this.transports = (opts.transports || ["polling", "websocket"]).filter((t) => TRANSPORTS[t]);
      this.writeBuffer = [];
      this.prevBufferLen = 0;
      this.upgrades = [];
      this.readyState = "opening";
      this.id = null;
      if (!this.transports.length) {
        setTimeout(() => this.emit("error", new Error("No transports available")), 0);
        return;
      }
      this.setTransport(this.createTransport(this.transports[0]));
      this.transport.open();
    }
    createTransport(name) {
      return new TRANSPORTS[name](this);
    }
    setTransport(t) {
      if (this.transport) this.transport.off();
      this.transport = t;
      t.on("drain", () => this.onDrain());
      t.on("packet", (p) => this.onPacket(p));
      t.on("error", (e) => this.onError(e));
      t.on("close", (d) => this.onClose("transport close", d));
    }
    onPacket(p) {
      if (!["opening", "open", "closing"].includes(this.readyState)) return;
      this.emit("packet", p);
      this.emit("heartbeat");
      switch (p.type) {
        case "open": {
          let hs;
          try {
            hs = JSON.parse(p.data);
          } catch (e) {
            return this.onError(transportError("parse error", "bad handshake"));
          }
          return this.onHandshake(hs);
        }
        case "ping":
          this.sendPacket("pong");
          this.emit("ping");
          this.emit("pong");
          this.resetPingTimeout();
          return;
        case "error": {
          const err = new Error("server error");
          err.code = p.data;
          return this.onError(err);
        }
        case "message":
          this.emit("data", p.data);
          this.emit("message", p.data);
      }
    }
    onHandshake(hs) {
      this.emit("handshake", hs);
      this.id = hs.sid;
      this.transport.query.sid = hs.sid;
      this.upgrades = (hs.upgrades || []).filter((u) => this.transports.includes(u));
      this.pingInterval = hs.pingInterval;
      this.pingTimeout = hs.pingTimeout;
      this.maxPayload = hs.maxPayload;
      this.readyState = "open";
      this.emit("open");
      this.flush();
      if (this.readyState === "open" && this.opts.upgrade !== false && this.transport.name === "polling") {
        for (const u of this.upgrades) if (u !== "polling") this.probe(u);
      }
      if (this.readyState !== "closed") this.resetPingTimeout();
    }
    resetPingTimeout() {
      clearTimeout(this.pingTimer);
      const delay = this.pingInterval + this.pingTimeout;
      this.pingDeadline = Date.now() + delay;
      this.pingTimer = setTimeout(() => this.onClose("ping timeout"), delay);
      if (this.opts.autoUnref && this.pingTimer.unref) this.pingTimer.unref();
    }
    // True when no ping came in time (timers may have been throttled in a background tab).
    hasPingExpired() {
      if (!this.pingDeadline) return true;
      if (Date.now() <= this.pingDeadline) return false;
      this.pingDeadline = 0;
      nextTick(() => this.onClose("ping timeout"));
      return true;
    }
    probe(name) {
      let t = this.createTransport(name);
      let failed = false;
      const cleanup = () => {
        t.off("open", onOpen);
        t.off("error", onError);
        t.off("close", onTransportClose);
        this.off("close", onEngineClose);
      };
      const freeze = () => {
        if (failed) return;
        failed = true;
        cleanup();
        t.close();
        t.off();
      };
      const onError = (err) => {
        const e = new Error("probe error: " + (err && err.message || err));
        e.transport = name;
        freeze();
        this.emit("upgradeError", e);
      };
      const onTransportClose = () => onError("transport closed");
      const onEngineClose = () => onError("socket closed");
      const onOpen = () => {
        if (failed) return;
        t.send([{ type: "ping", data: "probe" }]);
        t.once("packet", (msg) => {
          if (failed) return;
          if (msg.type !== "pong" || msg.data !== "probe") return onError("unexpected probe answer");
          this.upgrading = true;
          this.emit("upgrading", t);
          this.transport.pause(() => {
            if (failed || this.readyState === "closed") return;
            cleanup();
            this.setTransport(t);
            t.send([{ type: "upgrade" }]);
            this.emit("upgrade", t);
            this.upgrading = false;
            this.flush();
          });
        });
      };
      t.once("open", onOpen);
      t.once("error", onError);
      t.once("close", onTransportClose);
      this.once("close", onEngineClose);
      t.open();
    }
    onDrain() {
      this.writeBuffer.splice(0, this.prevBufferLen);
      this.prevBufferLen = 0;
      if (this.writeBuffer.length === 0) this.emit("drain");
      else this.flush();
    }
    flush() {
      if (this.readyState !== "closed" && this.transport.writable && !this.upgrading && this.writeBuffer.length) {
        const packets = this.writablePackets();
        this.transport.send(packets);
        this.prevBufferLen = packets.length;
        this.emit("flush");
      }
    }
    // Polling: as many packets as fit in one request of at most maxPayload bytes.
    writablePackets() {
      if (!this.maxPayload || this.transport.name !== "polling" || this.writeBuffer.length < 2) return this.writeBuffer;
      let size = 1;
      for (let i = 0; i < this.writeBuffer.length; i++) {
        const d = this.writeBuffer[i].data;
        if (d) size += typeof d === "string" ? utf8Length(d) : Math.ceil(d.byteLength * 1.34) + 1;
        if (i > 0 && size > this.maxPayload) return this.writeBuffer.slice(0, i);
        size += 2;
      }
      return this.writeBuffer;
    }
    write(msg, options) {
      this.sendPacket("message", msg, options);
      return this;
    }
    sendPacket(type, data, options) {
      if (this.readyState === "closing" || this.readyState === "closed") return;
      this.writeBuffer.push({ type, data, options });
      this.flush();
    }
    close() {
      const close = () => {
        this.onClose("forced close");
      };
      const afterUpgrade = () => {
        this.off("upgrade", afterUpgrade);
        this.off("upgradeError", afterUpgrade);
        close();
      };
      const waitOrClose = () => {
        if (this.upgrading) {
          this.once("upgrade", afterUpgrade);
          this.once("upgradeError", afterUpgrade);
        } else close();
      };
      if (this.readyState === "opening" || this.readyState === "open") {
        this.readyState = "closing";
        if (this.writeBuffer.length) this.once("drain", waitOrClose);
        else waitOrClose();
      }
      return this;
    }
    onError(err) {
      this.emit("error", err);
      this.onClose("transport error", err);
    }
    onClose(reason, description) {
      if (!["opening", "open", "closing"].includes(this.readyState)) return;
      clearTimeout(this.pingTimer);
      const t = this.transport;
      if (t) {
        t.off("close");
        t.close();
        t.off();
      }
      this.readyState = "closed";
      this.id = null;
      this.emit("close", reason, description);
      this.writeBuffer = [];
      this.prevBufferLen = 0;
    }
  }

  // ---------------------------------------------------------------------------
  // Backoff: min * 2^attempt, ± jitter, capped at max.

  class Backoff {
    constructor(min, max, jitter) {
      this.min = min;
      this.max = max;
      this.jitter = jitter;
      this.attempts = 0;
    }
    duration() {
      let ms = this.min * Math.pow(2, this.attempts++);
      if (this.jitter) {
        const rand = Math.random();
        const deviation = Math.floor(rand * this.jitter * ms);
        ms = (Math.floor(rand * 10) & 1) === 0 ? ms - deviation : ms + deviation;
      }
      return Math.min(ms, this.max) | 0;
    }
    reset() {
      this.attempts = 0;
    }
  }

  // ---------------------------------------------------------------------------
  // Manager: one Engine.IO connection, reconnection, namespaces.

  class Manager extends Emitter {
    constructor(uri, opts) {
      super();
      if (uri && typeof uri === "object") {
        opts = uri;
        uri = undefined;
      }
      opts = Object.assign({}, opts);
      this.url = parseUrl(uri);
      opts.path = (opts.path || "/socket.io").replace(/\/$/, "") + "/";
      const q = typeof opts.query === "string" ? Object.fromEntries(new URLSearchParams(opts.query)) : opts.query;
      opts.query = Object.assign({}, this.url.query, q);
      this.opts = opts;
      this.nsps = {};
      this.subs = [];
      this._reconnection = opts.reconnection !== false;
      this._reconnectionAttempts = opts.reconnectionAttempts || Infinity;
      this.backoff = new Backoff(opts.reconnectionDelay || 1000, opts.reconnectionDelayMax || 5000,
        opts.randomizationFactor == null ? 0.5 : opts.randomizationFactor);
      this._timeout = opts.timeout == null ? 20000 : opts.timeout;
      this._readyState = "closed";
      this.decoder = new Decoder();
      this._autoConnect = opts.autoConnect !== false;
      if (this._autoConnect) this.open();
    }
    reconnection(v) {
      if (!arguments.length) return this._reconnection;
      this._reconnection = !!v;
      if (!v) this.skipReconnect = true;
      return this;
    }
    reconnectionAttempts(v) {
      if (v === undefined) return this._reconnectionAttempts;
      this._reconnectionAttempts = v;
      return this;
    }
    reconnectionDelay(v) {
      if (v === undefined) return this.backoff.min;
      this.backoff.min = v;
      return this;
    }
    reconnectionDelayMax(v) {
      if (v === undefined) return this.backoff.max;
      this.backoff.max = v;
      return this;
    }
    randomizationFactor(v) {
      if (v === undefined) return this.backoff.jitter;
      this.backoff.jitter = v;
      return this;
    }
    timeout(v) {
      if (!arguments.length) return this._timeout;
      this._timeout = v;
      return this;
    }
    timer(fn, ms) {
      const t = setTimeout(fn, ms);
      if (this.opts.autoUnref && t.unref) t.unref();
      this.subs.push(() => clearTimeout(t));
    }
    maybeReconnectOnOpen() {
      if (!this._reconnecting && this._reconnection && this.backoff.attempts === 0) this.reconnect();
    }
    open(fn) {
      if (this._readyState.indexOf("open") >= 0) return this;
      const engine = this.engine = new Engine(this.url, this.opts);
      this._readyState = "opening";
      this.skipReconnect = false;
      const openSub = sub(engine, "open", () => {
        this.onopen();
        if (fn) fn();
      });
      const onError = (err) => {
        this.cleanup();
        this._readyState = "closed";
        this.emit("error", err);
        if (fn) fn(err);
        else this.maybeReconnectOnOpen();
      };
      const errorSub = sub(engine, "error", onError);
      if (this._timeout !== false) {
        this.timer(() => {
          openSub();
          onError(new Error("timeout"));
          engine.close();
        }, this._timeout);
      }
      this.subs.push(openSub, errorSub);
      return this;
    }
    connect(fn) {
      return this.open(fn);
    }
    onopen() {
      this.cleanup();
      this._readyState = "open";
      this.emit("open");
      const e = this.engine;
      this.subs.push(
        sub(e, "ping", () => this.emit("ping")),
        sub(e, "data", (d) => this.ondata(d)),
        sub(e, "error", (err) => this.emit("error", err)),
        sub(e, "close", (reason, desc) => this.onclose(reason, desc)),
        sub(this.decoder, "decoded", (p) => nextTick(() => this.emit("packet", p))),
      );
    }
    ondata(data) {
      try {
        this.decoder.add(data);
      } catch (e) {
        this.onclose("parse error", e);
      }
    }
    socket(nsp, opts) {
      let socket = this.nsps[nsp];
      if (!socket) {
        socket = new Socket(this, nsp, opts);
        this.nsps[nsp] = socket;
      } else if (this._autoConnect && !socket.active) {
        socket.connect();
      }
      return socket;
    }
    _destroy() {
      for (const nsp of Object.keys(this.nsps)) if (this.nsps[nsp].active) return;
      this._close();
    }
    _packet(packet) {
      for (const msg of encodeSioPacket(packet)) this.engine.write(msg, packet.options);
    }
    cleanup() {
      for (const unsub of this.subs) unsub();
      this.subs.length = 0;
      this.decoder.destroy();
    }
    _close() {
      this.skipReconnect = true;
      this._reconnecting = false;
      this.onclose("forced close");
    }
    disconnect() {
      return this._close();
    }
    close() {
      return this._close();
    }
    onclose(reason, description) {
      this.cleanup();
      if (this.engine) this.engine.close();
      this.backoff.reset();
      this._readyState = "closed";
      this.emit("close", reason, description);
      if (this._reconnection && !this.skipReconnect) this.reconnect();
    }
    reconnect() {
      if (this._reconnecting || this.skipReconnect) return this;
      if (this.backoff.attempts >= this._reconnectionAttempts) {
        this.backoff.reset();
        this.emit("reconnect_failed");
        this._reconnecting = false;
        return this;
      }
      const delay = this.backoff.duration();
      this._reconnecting = true;
      this.timer(() => {
        if (this.skipReconnect) return;
        this.emit("reconnect_attempt", this.backoff.attempts);
        if (this.skipReconnect) return;
        this.open((err) => {
          if (err) {
            this._reconnecting = false;
            this.reconnect();
            this.emit("reconnect_error", err);
          } else {
            const attempt = this.backoff.attempts;
            this._reconnecting = false;
            this.backoff.reset();
            this.emit("reconnect", attempt);
          }
        });
      }, delay);
      return this;
    }
  }

  // ---------------------------------------------------------------------------
  // Socket: one namespace.

  function hubError(answer) {
    const err = new Error(answer && (answer.message || answer.error) || "unexpected answer from the hub");
    err.code = answer && answer.ok === false ? answer.error : "bad_response";
    err.response = answer;
    return err;
  }

  // A durable delivery's meta: {room, offset, from} with a numeric offset.
  function isDurableMeta(m) {
    return isObject(m) && typeof m.offset === "number" && typeof m.room === "string";
  }

  class Socket extends Emitter {
    constructor(io, nsp, opts) {
      super();
      this.io = io;
      this.nsp = nsp;
      this.connected = false;
      this.recovered = false;
      this.receiveBuffer = [];
      this.sendBuffer = [];
      this._queue = [];
      this._queueSeq = 0;
      this.ids = 0;
      this.acks = {};
      this.flags = {};
      this._opts = Object.assign({}, opts);
      if (opts && opts.auth) this.auth = opts.auth;
      if (io._autoConnect) this.open();
    }
    get disconnected() {
      return !this.connected;
    }
    get active() {
      return !!this.subs;
    }
    subEvents() {
      if (this.subs) return;
      const io = this.io;
      this.subs = [
        sub(io, "open", () => this.onopen()),
        sub(io, "packet", (p) => this.onpacket(p)),
        sub(io, "error", (err) => this.onerror(err)),
        sub(io, "close", (reason, desc) => this.onclose(reason, desc)),
      ];
    }
    connect() {
      if (this.connected) return this;
      this.subEvents();
      if (!this.io._reconnecting) this.io.open();
      if (this.io._readyState === "open") this.onopen();
      return this;
    }
    open() {
      return this.connect();
    }
    send(...args) {
      return this.emit("message", ...args);
    }
    emit(ev, ...args) {
      if (RESERVED.has(ev)) throw new Error('"' + String(ev) + '" is a reserved event name');
      args.unshift(ev);
      if (this._opts.retries && !this.flags.fromQueue && !this.flags.volatile) {
        this._addToQueue(args);
        return this;
      }
      const packet = { type: T.EVENT, data: args, options: { compress: this.flags.compress !== false } };
      if (typeof args[args.length - 1] === "function") {
        const id = this.ids++;
        this._registerAck(id, args.pop());
        packet.id = id;
      }
      const engine = this.io.engine;
      const writable = !!(engine && engine.transport && engine.transport.writable);
      const isConnected = this.connected && engine && !engine.hasPingExpired();
      if (this.flags.volatile && !writable) {
        // volatile: dropped when the transport cannot take it now
      } else if (isConnected) {
        this._notifyOutgoing(packet);
        this.packet(packet);
      } else {
        this.sendBuffer.push(packet);
      }
      this.flags = {};
      return this;
    }
    _registerAck(id, ack) {
      const timeout = this.flags.timeout !== undefined ? this.flags.timeout : this._opts.ackTimeout;
      if (timeout === undefined) {
        this.acks[id] = ack;
        return;
      }
      const timer = setTimeout(() => {
        delete this.acks[id];
        this.sendBuffer = this.sendBuffer.filter((p) => p.id !== id);
        ack.call(this, new Error("operation has timed out"));
      }, timeout);
      const fn = (...args) => {
        clearTimeout(timer);
        ack.apply(this, args);
      };
      fn.withError = true;
      this.acks[id] = fn;
    }
    emitWithAck(ev, ...args) {
      return new Promise((resolve, reject) => {
        const fn = (err, value) => (err ? reject(err) : resolve(value));
        fn.withError = true;
        args.push(fn);
        this.emit(ev, ...args);
      });
    }
    // retries: one packet in flight, resent on ack timeout and after reconnect.
    _addToQueue(args) {
      let ack;
      if (typeof args[args.length - 1] === "function") ack = args.pop();
      const packet = { id: this._queueSeq++, tryCount: 0, pending: false, args, flags: Object.assign({ fromQueue: true }, this.flags) };
      args.push((err, ...res) => {
        if (err !== null) {
          if (packet.tryCount > this._opts.retries) {
            this._queue.shift();
            if (ack) ack(err);
          }
        } else {
          this._queue.shift();
          if (ack) ack(null, ...res);
        }
        packet.pending = false;
        this._drainQueue();
      });
      this._queue.push(packet);
      this._drainQueue();
    }
    _drainQueue(force) {
      if (!this.connected || this._queue.length === 0) return;
      const packet = this._queue[0];
      if (packet.pending && !force) return;
      packet.pending = true;
      packet.tryCount++;
      this.flags = packet.flags;
      this.emit(...packet.args);
    }
    packet(packet) {
      packet.nsp = this.nsp;
      this.io._packet(packet);
    }
    onopen() {
      if (typeof this.auth === "function") this.auth((data) => this._sendConnect(data));
      else this._sendConnect(this.auth);
    }
    _sendConnect(data) {
      this.packet({
        type: T.CONNECT,
        data: this._pid ? Object.assign({ pid: this._pid, offset: this._lastOffset }, data) : data,
      });
    }
    onerror(err) {
      if (!this.connected) this.emitReserved("connect_error", err);
    }
    onclose(reason, description) {
      this.connected = false;
      delete this.id;
      this.emitReserved("disconnect", reason, description);
      this._clearAcks();
    }
    _clearAcks() {
      for (const id of Object.keys(this.acks)) {
        if (this.sendBuffer.some((p) => String(p.id) === id)) continue;
        const ack = this.acks[id];
        delete this.acks[id];
        if (ack.withError) ack.call(this, new Error("socket has been disconnected"));
      }
    }
    onpacket(p) {
      if (p.nsp !== this.nsp) return;
      switch (p.type) {
        case T.CONNECT:
          if (p.data && p.data.sid) this.onconnect(p.data.sid, p.data.pid);
          else this.emitReserved("connect_error", new Error("invalid CONNECT answer (a Socket.IO v2 server?)"));
          break;
        case T.EVENT:
        case T.BINARY_EVENT:
          this.onevent(p);
          break;
        case T.ACK:
        case T.BINARY_ACK:
          this.onack(p);
          break;
        case T.DISCONNECT:
          this.destroy();
          this.onclose("io server disconnect");
          break;
        case T.CONNECT_ERROR: {
          this.destroy();
          const err = new Error(p.data.message);
          err.data = p.data.data;
          this.emitReserved("connect_error", err);
          break;
        }
      }
    }
    onevent(p) {
      const args = p.data || [];
      if (p.id != null) args.push(this.ack(p.id));
      if (this.connected) this.emitEvent(args);
      else this.receiveBuffer.push(args);
    }
    emitEvent(args) {
      if (this._anyListeners) for (const fn of this._anyListeners.slice()) fn.apply(this, args);
      const n = args.length;
      if (n >= 3 && typeof args[n - 1] === "function" && isDurableMeta(args[n - 2])) this._deliverDurable(args);
      else super.emit(...args);
      if (this._pid && n && typeof args[n - 1] === "string") this._lastOffset = args[n - 1];
    }
    // Durable delivery event(data, meta, ack): handlers get (data, meta); the ack is sent when
    // every handler has returned (or its promise resolved). A throw or rejection sends no ack,
    // so the hub redelivers. A handler declaring three parameters gets the ack and calls it itself.
    _deliverDurable(args) {
      const ev = args[0];
      const ack = args[args.length - 1];
      const meta = args[args.length - 2];
      const params = args.slice(1, -1);
      const auto = [];
      try {
        for (const fn of this.listeners(ev)) {
          if ((fn.fn || fn).length > params.length) fn.apply(this, params.concat(ack));
          else auto.push(fn.apply(this, params));
        }
      } catch (err) {
        return this._handlerFailed(ev, meta, err);
      }
      if (!auto.length) return;
      if (!auto.some((r) => r && typeof r.then === "function")) return ack();
      Promise.all(auto).then(() => ack(), (err) => this._handlerFailed(ev, meta, err));
    }
    _handlerFailed(ev, meta, err) {
      if (this.hasListeners("delivery_error")) super.emit("delivery_error", err, ev, meta);
      else if (typeof console !== "undefined") console.error("switchboard: handler for", ev, "failed, not acked:", err);
    }
    ack(id) {
      let sent = false;
      return (...args) => {
        if (sent) return;
        sent = true;
        this.packet({ type: T.ACK, id, data: args });
      };
    }
    onack(p) {
      const ack = this.acks[p.id];
      if (typeof ack !== "function") return;
      delete this.acks[p.id];
      if (ack.withError) p.data.unshift(null);
      ack.apply(this, p.data);
    }
    onconnect(id, pid) {
      this.id = id;
      this.recovered = !!pid && this._pid === pid;
      this._pid = pid;
      this.connected = true;
      this.emitBuffered();
      this._drainQueue(true);
      this.emitReserved("connect");
    }
    emitBuffered() {
      const received = this.receiveBuffer;
      this.receiveBuffer = [];
      for (const args of received) this.emitEvent(args);
      const sending = this.sendBuffer;
      this.sendBuffer = [];
      for (const p of sending) {
        this._notifyOutgoing(p);
        this.packet(p);
      }
    }
    destroy() {
      if (this.subs) {
        for (const unsub of this.subs) unsub();
        this.subs = undefined;
      }
      this.io._destroy(this);
    }
    disconnect() {
      if (this.connected) this.packet({ type: T.DISCONNECT });
      this.destroy();
      if (this.connected) this.onclose("io client disconnect");
      return this;
    }
    close() {
      return this.disconnect();
    }
    compress(v) {
      this.flags.compress = v;
      return this;
    }
    get volatile() {
      this.flags.volatile = true;
      return this;
    }
    timeout(ms) {
      this.flags.timeout = ms;
      return this;
    }
    onAny(fn) {
      (this._anyListeners = this._anyListeners || []).push(fn);
      return this;
    }
    prependAny(fn) {
      (this._anyListeners = this._anyListeners || []).unshift(fn);
      return this;
    }
    offAny(fn) {
      if (!this._anyListeners) return this;
      if (fn) {
        const i = this._anyListeners.indexOf(fn);
        if (i >= 0) this._anyListeners.splice(i, 1);
      } else this._anyListeners = [];
      return this;
    }
    listenersAny() {
      return (this._anyListeners || []).slice();
    }
    onAnyOutgoing(fn) {
      (this._anyOutgoing = this._anyOutgoing || []).push(fn);
      return this;
    }
    offAnyOutgoing(fn) {
      if (!this._anyOutgoing) return this;
      if (fn) {
        const i = this._anyOutgoing.indexOf(fn);
        if (i >= 0) this._anyOutgoing.splice(i, 1);
      } else this._anyOutgoing = [];
      return this;
    }
    listenersAnyOutgoing() {
      return (this._anyOutgoing || []).slice();
    }
    _notifyOutgoing(p) {
      if (this._anyOutgoing && this._anyOutgoing.length) for (const fn of this._anyOutgoing.slice()) fn.apply(this, p.data);
    }

    // --- Switchboard hub helpers (default namespace of the switchboard binary) ---
    // Each resolves with the hub's {ok:true, ...} answer, or rejects with an Error whose
    // `code` is the answer's `error` ("forbidden", "not_durable", ...). socket.timeout(ms) applies.
    _hub(event, ...args) {
      return this.emitWithAck(event, ...args).then((answer) => {
        if (answer && answer.ok === true) return answer;
        throw hubError(answer);
      });
    }
    join(room, opts) {
      return opts === undefined ? this._hub("join", room) : this._hub("join", room, opts);
    }
    leave(room, opts) {
      return opts === undefined ? this._hub("leave", room) : this._hub("leave", room, opts);
    }
    publish(room, event, data, opts) {
      const msg = { room, event, data };
      if (opts && opts.id !== undefined) msg.id = opts.id;
      return this._hub("publish", msg);
    }
    presence(room) {
      return this._hub("presence", room);
    }
  }

  // ---------------------------------------------------------------------------
  // io(): URL parsing and the Manager cache.

  function parseUrl(uri) {
    const loc = typeof location !== "undefined" ? location : null;
    const here = loc ? loc.protocol + "//" + loc.host : "http://localhost";
    if (uri == null || uri === "") uri = here;
    uri = String(uri);
    if (uri.startsWith("//")) uri = (loc ? loc.protocol : "https:") + uri;
    else if (uri.startsWith("/")) uri = here + uri;
    else if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(uri)) uri = (loc ? loc.protocol : "https:") + "//" + uri;
    const u = new URL(uri);
    const secure = u.protocol === "https:" || u.protocol === "wss:";
    const port = u.port || (secure ? "443" : "80");
    return {
      secure,
      hostname: u.hostname,
      port,
      path: u.pathname || "/",
      query: Object.fromEntries(u.searchParams),
      id: (secure ? "https" : "http") + "://" + u.hostname + ":" + port,
    };
  }

  const cache = {};

  function io(uri, opts) {
    if (uri && typeof uri === "object") {
      opts = uri;
      uri = undefined;
    }
    opts = opts || {};
    const url = parseUrl(uri);
    const sameNamespace = cache[url.id] && url.path in cache[url.id].nsps;
    const newConnection = opts.forceNew || opts["force new connection"] || opts.multiplex === false || sameNamespace;
    let manager;
    if (newConnection) {
      manager = new Manager(uri, opts);
    } else {
      if (!cache[url.id]) cache[url.id] = new Manager(uri, opts);
      manager = cache[url.id];
    }
    return manager.socket(url.path, opts);
  }

  Object.assign(io, { io, connect: io, default: io, Manager, Socket, protocol: 5, Emitter,
    // exposed for tests and tools
    parser: { encode: encodeSioPacket, Decoder, decodeEioPacket, encodeEioPacket } });
  return io;
});
