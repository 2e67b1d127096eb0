// Switchboard demo chat: rooms, presence, connection state, and durable rooms
// whose messages missed while offline arrive (marked) after reconnecting.
// Plain browser JavaScript on the served client (/switchboard.js): no build step.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const STORAGE_KEY = "switchboard-demo";
  const EVENT = "chat";

  const state = {
    name: null,
    socket: null,
    rooms: new Map(), // name → room (see newRoom)
    active: null, // the room shown
    pending: [], // own messages not yet acked by the hub, in order: {room, data, el}
    flushing: false,
    offlineSince: 0, // set while disconnected after having been connected
    connectedOnce: false,
  };

  // ---------------------------------------------------------------------------
  // Small helpers.

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function newId() {
    if (window.crypto && typeof crypto.randomUUID === "function") return crypto.randomUUID();
    return Date.now().toString(36) + "-" + Math.random().toString(36).slice(2, 12);
  }

  function clock(ms) {
    return new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function colorOf(name) {
    let h = 0;
    for (let i = 0; i < name.length; i++) h = (h * 31 + name.charCodeAt(i)) >>> 0;
    return "hsl(" + (h % 360) + " 55% 42%)";
  }

  function plural(n, word) {
    return n + " " + word + (n === 1 ? "" : "s");
  }

  function load() {
    try {
      return JSON.parse(sessionStorage.getItem(STORAGE_KEY)) || null;
    } catch (_) {
      return null;
    }
  }

  function save() {
    try {
      sessionStorage.setItem(STORAGE_KEY, JSON.stringify({
        name: state.name,
        rooms: [...state.rooms.values()].map((r) => ({ name: r.name, durable: r.durable })),
        active: state.active && state.active.name,
      }));
    } catch (_) { /* private mode: nothing to keep */ }
  }

  // ---------------------------------------------------------------------------
  // Connection state.

  function setStatus(kind, text) {
    $("status").dataset.state = kind;
    $("status-text").textContent = text;
    updateToggle();
  }

  function updateToggle() {
    const s = state.socket;
    const b = $("toggle-online");
    if (!s) {
      b.hidden = true;
      return;
    }
    b.hidden = false;
    b.textContent = s.active ? "Go offline" : "Go online";
    b.setAttribute("aria-pressed", String(!s.active));
    b.title = s.active
      ? "Disconnect (socket.disconnect()) to see what you miss"
      : "Reconnect (socket.connect()); durable rooms deliver what you missed";
  }

  function start(name) {
    state.name = name;
    $("welcome").hidden = true;
    $("app").hidden = false;
    const who = $("whoami");
    who.hidden = false;
    who.textContent = "";
    who.append("as ");
    const b = el("strong", null, name);
    b.style.color = colorOf(name);
    who.append(b, " ");
    const change = el("button", "link", "change");
    change.type = "button";
    change.title = "Pick another name (leaves this session)";
    change.onclick = () => {
      if (state.socket) state.socket.disconnect();
      try { sessionStorage.removeItem(STORAGE_KEY); } catch (_) { /* ignore */ }
      location.reload();
    };
    who.append(change);
    save();
    connect();
  }

  function connect() {
    if (typeof window.io !== "function") {
      setStatus("error", "switchboard.js did not load");
      return;
    }
    const socket = window.io({ auth: { clientId: state.name }, reconnectionDelayMax: 5000 });
    state.socket = socket;
    setStatus("connecting", "Connecting…");

    socket.on("connect", onConnect);
    socket.on("disconnect", onDisconnect);
    socket.on("connect_error", (err) => {
      if (socket.active) setStatus("reconnecting", "Reconnecting… (" + err.message + ")");
      else if (err.message === "unauthorized") setStatus("error", "Refused: this hub wants a token (the demo needs development mode)");
      else setStatus("error", "Refused by the hub: " + err.message);
    });
    socket.io.on("reconnect_attempt", (n) => setStatus("reconnecting", "Reconnecting… (attempt " + n + ")"));
    // Exactly two parameters: a durable delivery is acked when this returns.
    socket.on(EVENT, (data, meta) => onChat(data, meta));
    socket.on("switchboard:join", (p) => onPresence(p, true));
    socket.on("switchboard:leave", (p) => onPresence(p, false));
    socket.on("delivery_error", (err) => console.error("delivery failed, the hub will redeliver:", err));
  }

  function onConnect() {
    const socket = state.socket;
    const wasOffline = state.offlineSince > 0;
    state.offlineSince = 0;
    state.connectedOnce = true;
    setStatus("connected", socket.recovered ? "Connected (session recovered)" : "Connected");
    const now = Date.now();
    for (const room of state.rooms.values()) {
      if (wasOffline) sys(room, socket.recovered ? "Back online: session recovered" : "Back online", "online");
      room.since = now;
      room.missedDivider = null;
      room.missedCount = 0;
      if (socket.recovered && room.joined) refreshPresence(room);
      else joinRoom(room);
    }
    flushPending();
    renderChatHead();
  }

  function onDisconnect(reason) {
    const manual = reason === "io client disconnect";
    if (!state.offlineSince) {
      state.offlineSince = Date.now();
      for (const room of state.rooms.values()) {
        let line = manual ? "You went offline" : "Connection lost (" + reason + ")";
        if (!room.durable) line += ": this room is live, messages sent meanwhile will not reach you";
        sys(room, line, "offline");
        room.members.clear();
      }
    }
    for (const p of state.pending) setMessageStatus(p.el, "queued");
    if (manual) setStatus("offline", "Offline");
    else if (state.socket.active) setStatus("reconnecting", "Reconnecting…");
    else setStatus("error", "Disconnected by the hub");
    renderPeople();
    renderChatHead();
  }

  $("toggle-online").onclick = () => {
    const s = state.socket;
    if (!s) return;
    if (s.active) {
      s.disconnect();
    } else {
      setStatus("connecting", "Connecting…");
      s.connect();
    }
    updateToggle();
  };

  // ---------------------------------------------------------------------------
  // Rooms.

  function newRoom(name, durable) {
    const log = el("div", "log");
    log.dataset.room = name;
    log.setAttribute("role", "log");
    log.setAttribute("aria-live", "polite");
    log.hidden = true;
    $("logs").append(log);
    return {
      name,
      durable,
      joined: false, // joined at least once in this page
      members: new Set(),
      presence: null, // true, false (off for this room), null (unknown yet)
      presenceNote: "",
      unread: 0,
      log,
      byId: new Map(), // message id → element (own messages, redeliveries)
      since: 0, // when this connection (re)joined: older messages arriving now were missed
      missedDivider: null,
      missedCount: 0,
      lastOffset: 0,
    };
  }

  async function addRoom(name, durable) {
    $("join-error").hidden = true;
    const existing = state.rooms.get(name);
    if (existing) {
      show(existing);
      return;
    }
    const room = newRoom(name, durable);
    state.rooms.set(name, room);
    room.since = Date.now();
    show(room);
    if (!state.socket || !state.socket.connected) {
      sys(room, "You are offline: you will join " + name + " when you are back online");
      return;
    }
    await joinRoom(room);
  }

  async function joinRoom(room) {
    const socket = state.socket;
    try {
      const ans = await socket.timeout(10000).join(room.name, room.durable ? { durable: true } : undefined);
      if (state.rooms.get(room.name) !== room) return;
      if (!room.joined) {
        if ($("room-input").value.trim() === room.name) $("room-input").value = "";
        sys(room, room.durable
          ? "You joined " + room.name + ". It is durable: messages sent while you are offline wait for you."
          : "You joined " + room.name + ".");
      }
      room.joined = true;
      room.durable = ans.durable === true || room.durable;
      refreshPresence(room);
    } catch (err) {
      if (state.rooms.get(room.name) !== room) return;
      if (!room.joined) {
        // The first join failed: forget the room and say why beside the form.
        removeRoom(room);
        let msg = "Could not join " + room.name + ": " + err.message;
        if (err.code === "not_durable") msg += ". Uncheck “durable” to join it as a live room.";
        showJoinError(msg);
      } else if (socket.connected) {
        sys(room, "Could not rejoin: " + err.message, "error");
      }
    }
    renderRooms();
    renderChatHead();
  }

  async function refreshPresence(room) {
    try {
      const ans = await state.socket.timeout(5000).presence(room.name);
      room.members = new Set(ans.identities || []);
      room.members.add(state.name);
      room.presence = true;
    } catch (err) {
      if (!state.socket.connected) return;
      room.presence = false;
      room.presenceNote = err.message;
    }
    renderPeople();
    renderChatHead();
  }

  async function leaveRoom(room) {
    const socket = state.socket;
    removeRoom(room);
    if (socket && socket.connected && room.joined) {
      // Leaving a durable room also ends the subscription: nothing is kept for us any more.
      try {
        await socket.timeout(5000).leave(room.name, room.durable ? { durable: true } : undefined);
      } catch (_) { /* the room is gone from the page either way */ }
    }
  }

  function removeRoom(room) {
    state.rooms.delete(room.name);
    room.log.remove();
    state.pending = state.pending.filter((p) => p.room !== room.name);
    if (state.active === room) {
      const next = state.rooms.values().next().value || null;
      show(next);
    }
    save();
    renderRooms();
  }

  function show(room) {
    if (state.active) state.active.log.hidden = true;
    state.active = room;
    $("empty").hidden = !!room;
    if (room) {
      room.log.hidden = false;
      room.unread = 0;
      scrollDown(true);
      $("text").focus();
    }
    $("text").disabled = !room;
    $("send").disabled = !room;
    save();
    renderRooms();
    renderPeople();
    renderChatHead();
  }

  function showJoinError(msg) {
    const e = $("join-error");
    e.textContent = msg;
    e.hidden = false;
  }

  // ---------------------------------------------------------------------------
  // Rendering.

  function renderRooms() {
    const ul = $("rooms");
    ul.textContent = "";
    for (const room of state.rooms.values()) {
      const li = el("li", room === state.active ? "active" : "");
      li.dataset.room = room.name;
      const open = el("button", "room-open");
      open.type = "button";
      open.append(el("span", "hash", "#"), el("span", "room-name", room.name));
      if (room.durable) open.append(el("span", "tag", "durable"));
      if (room.unread) open.append(el("span", "unread", String(room.unread)));
      open.onclick = () => show(room);
      const leave = el("button", "room-leave", "×");
      leave.type = "button";
      leave.title = "Leave " + room.name;
      leave.setAttribute("aria-label", "leave " + room.name);
      leave.onclick = () => leaveRoom(room);
      li.append(open, leave);
      ul.append(li);
    }
    if (!state.rooms.size) ul.append(el("li", "none", "No rooms yet"));
  }

  function renderPeople() {
    const ul = $("people");
    const note = $("people-note");
    ul.textContent = "";
    note.hidden = true;
    const room = state.active;
    $("people-count").textContent = "";
    if (!room) return;
    if (!state.socket || !state.socket.connected) {
      note.textContent = "Unknown while offline.";
      note.hidden = false;
      return;
    }
    if (room.presence === false) {
      note.textContent = "Presence is off for this room (" + room.presenceNote + ").";
      note.hidden = false;
      return;
    }
    const names = [...room.members].sort((a, b) => (a === state.name ? -1 : b === state.name ? 1 : a.localeCompare(b)));
    $("people-count").textContent = names.length ? String(names.length) : "";
    for (const name of names) {
      const li = el("li");
      li.dataset.identity = name;
      const av = el("span", "avatar", name.slice(0, 1).toUpperCase());
      av.style.background = colorOf(name);
      li.append(av, el("span", "person", name));
      if (name === state.name) li.append(el("span", "you", "you"));
      ul.append(li);
    }
  }

  function renderChatHead() {
    const room = state.active;
    $("room-title").textContent = room ? "#" + room.name : "No room yet";
    $("room-badge").hidden = !(room && room.durable);
    let info = "";
    if (room) {
      if (!state.socket || !state.socket.connected) info = "offline";
      else if (!room.joined) info = "joining…";
      else if (room.presence) info = (room.members.size === 1 ? "1 person" : room.members.size + " people") + " here";
    }
    $("room-info").textContent = info;
  }

  function nearBottom() {
    const logs = $("logs");
    return logs.scrollHeight - logs.scrollTop - logs.clientHeight < 80;
  }

  function scrollDown(force) {
    const logs = $("logs");
    if (force || nearBottom()) logs.scrollTop = logs.scrollHeight;
  }

  function append(room, node) {
    const stick = room === state.active && nearBottom();
    room.log.append(node);
    if (stick) scrollDown(true);
  }

  function sys(room, text, kind) {
    const line = el("div", "sys" + (kind ? " " + kind : ""), text);
    line.prepend(el("time", null, clock(Date.now()) + " "));
    append(room, line);
    return line;
  }

  // One message row. opts: {from, text, sentAt, mine, missed, offset}
  function messageEl(opts) {
    const m = el("div", "msg" + (opts.mine ? " mine" : "") + (opts.missed ? " missed" : ""));
    m.dataset.from = opts.from;
    if (opts.missed) m.dataset.missed = "true";
    const head = el("div", "msg-head");
    const who = el("span", "from", opts.mine ? opts.from + " (you)" : opts.from);
    who.style.color = colorOf(opts.from);
    head.append(who, el("time", null, clock(opts.sentAt || Date.now())));
    if (opts.missed) head.append(el("span", "missed-tag", "missed while offline"));
    head.append(el("span", "state"));
    m.append(head, el("div", "text", opts.text));
    if (opts.offset && !opts.mine) setMessageStatus(m, "received", opts.offset);
    else if (opts.offset) setMessageStatus(m, "stored", opts.offset);
    return m;
  }

  function setMessageStatus(m, status, detail) {
    const s = m.querySelector(".state");
    m.dataset.status = status;
    s.title = "";
    switch (status) {
      case "queued": s.textContent = "queued: sends when online"; break;
      case "sending": s.textContent = "sending…"; break;
      case "sent": s.textContent = "✓ sent"; break;
      case "stored":
        s.textContent = "✓ #" + detail;
        s.title = "stored in the room's log at offset " + detail;
        break;
      case "received":
        s.textContent = "#" + detail;
        s.title = "offset " + detail + " in the room's log";
        break;
      case "failed": s.textContent = "not sent: " + detail; break;
      default: s.textContent = "";
    }
  }

  // ---------------------------------------------------------------------------
  // Messages in and out.

  function onChat(data, meta) {
    const room = meta && state.rooms.get(meta.room);
    if (!room) return;
    const from = (meta && meta.from) || "someone";
    const durable = typeof meta.offset === "number";
    if (durable && meta.offset > room.lastOffset) room.lastOffset = meta.offset;
    const isObj = data && typeof data === "object";
    const id = isObj && typeof data.id === "string" ? data.id : null;
    const text = isObj && data.text !== undefined ? String(data.text) : typeof data === "string" ? data : JSON.stringify(data);
    const sentAt = isObj && typeof data.sentAt === "number" ? data.sentAt : 0;
    if (id && room.byId.has(id)) {
      // Our own message echoed by a durable room, or a redelivery: shown already.
      const m = room.byId.get(id);
      if (durable && m.dataset.status !== "failed" && m.dataset.status !== "received") {
        setMessageStatus(m, m.classList.contains("mine") ? "stored" : "received", meta.offset);
      }
      return;
    }
    // Published before this connection (re)joined, yet delivered now: missed while offline.
    const missed = !!sentAt && !!room.since && sentAt < room.since && (durable || state.socket.recovered);
    const m = messageEl({ from, text, sentAt, mine: from === state.name, missed, offset: durable ? meta.offset : 0 });
    if (id) room.byId.set(id, m);
    if (missed) {
      room.missedCount++;
      if (!room.missedDivider) {
        room.missedDivider = el("div", "missed-divider");
        append(room, room.missedDivider);
      }
      room.missedDivider.textContent = plural(room.missedCount, "message") + " you missed while offline";
    }
    append(room, m);
    if (room !== state.active) {
      room.unread++;
      renderRooms();
    }
  }

  function onPresence(p, joined) {
    const room = p && state.rooms.get(p.room);
    if (!room || !p.identity) return;
    if (joined) {
      room.members.add(p.identity);
      sys(room, p.identity + " joined", "presence");
    } else {
      room.members.delete(p.identity);
      sys(room, p.identity + " left", "presence");
    }
    if (room.presence === null) room.presence = true;
    renderPeople();
    renderChatHead();
  }

  function send(text) {
    const room = state.active;
    if (!room || !text) return;
    const data = { id: newId(), text, sentAt: Date.now() };
    const m = messageEl({ from: state.name, text, sentAt: data.sentAt, mine: true });
    room.byId.set(data.id, m);
    append(room, m);
    scrollDown(true);
    setMessageStatus(m, state.socket && state.socket.connected ? "sending" : "queued");
    state.pending.push({ room: room.name, data, el: m });
    flushPending();
  }

  // Publishes the pending messages in order. A publish that times out or is cut by a
  // disconnect stays pending and is sent again with the same id: the hub's idempotent
  // publish makes the retry safe (no duplicates).
  async function flushPending() {
    if (state.flushing) return;
    state.flushing = true;
    try {
      while (state.pending.length && state.socket && state.socket.connected) {
        const p = state.pending[0];
        setMessageStatus(p.el, "sending");
        try {
          const ans = await state.socket.timeout(10000).publish(p.room, EVENT, p.data, { id: p.data.id });
          if (state.pending[0] === p) state.pending.shift();
          if (p.el.dataset.status !== "stored") {
            if (typeof ans.offset === "number") setMessageStatus(p.el, "stored", ans.offset);
            else setMessageStatus(p.el, "sent");
          }
        } catch (err) {
          if (err.code && err.code !== "bad_response") {
            if (state.pending[0] === p) state.pending.shift();
            setMessageStatus(p.el, "failed", err.message);
            continue;
          }
          setMessageStatus(p.el, "queued");
          if (state.socket.connected) setTimeout(flushPending, 2000);
          break;
        }
      }
    } finally {
      state.flushing = false;
    }
  }

  // ---------------------------------------------------------------------------
  // Forms.

  $("name-form").onsubmit = (e) => {
    e.preventDefault();
    const name = $("name").value.trim();
    if (name) start(name);
  };

  let durableTouched = false;
  $("durable").onchange = () => { durableTouched = true; };
  $("room-input").oninput = () => {
    $("join-error").hidden = true;
    if (!durableTouched) $("durable").checked = /^durable-/.test($("room-input").value.trim());
  };
  $("join-form").onsubmit = (e) => {
    e.preventDefault();
    const name = $("room-input").value.trim();
    if (!name) return;
    addRoom(name, $("durable").checked);
  };

  $("send-form").onsubmit = (e) => {
    e.preventDefault();
    const text = $("text").value.trim();
    if (!text) return;
    $("text").value = "";
    send(text);
  };

  // ---------------------------------------------------------------------------
  // Start: resume this tab's session (name and rooms) after a reload, else ask for a name.

  renderRooms();
  const saved = load();
  if (saved && saved.name) {
    for (const r of saved.rooms || []) {
      if (!state.rooms.has(r.name)) state.rooms.set(r.name, newRoom(r.name, !!r.durable));
    }
    start(saved.name);
    show(state.rooms.get(saved.active) || state.rooms.values().next().value || null);
  } else {
    $("name").focus();
  }
})();
