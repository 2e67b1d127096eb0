// switchboard.js against the Go server: the example binary of cmd/switchboard, built once.
// Without a `go` toolchain the suite is skipped (reported as skipped), or fails when
// SWITCHBOARD_REQUIRE_ALL=1.
"use strict";

const { describe, it, before, after, afterEach } = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");
const os = require("node:os");
const fs = require("node:fs");
const { spawn, spawnSync, execFile } = require("node:child_process");
const { client, closeClients, waitFor, freePort, waitForPort } = require("../testlib/harness.js");
const { commonScenarios } = require("../testlib/scenarios.js");

const repo = path.resolve(__dirname, "..", "..");
const haveGo = spawnSync("go", ["version"], { stdio: "ignore" }).status === 0;
const requireAll = process.env.SWITCHBOARD_REQUIRE_ALL === "1";

if (!haveGo) {
  const msg = "SKIPPING the Go server tests of web/: no `go` on PATH (set SWITCHBOARD_REQUIRE_ALL=1 to make this a failure)";
  process.stderr.write("\n*** " + msg + " ***\n\n");
  if (requireAll) it("go toolchain available (SWITCHBOARD_REQUIRE_ALL=1)", () => assert.fail("`go` not found on PATH"));
  else it("Go server (cmd/switchboard)", { skip: "no `go` on PATH" }, () => {});
}

if (haveGo) describe("Go server (cmd/switchboard)", () => {
  let dir;
  let bin;
  let server; // { proc, port, url, log }

  async function start(port) {
    port = port || (await freePort());
    const proc = spawn(bin, ["--listen", `127.0.0.1:${port}`], { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
    const s = { proc, port, url: `http://127.0.0.1:${port}`, log: "" };
    proc.stderr.setEncoding("utf8");
    proc.stderr.on("data", (d) => (s.log += d));
    s.exited = new Promise((r) => proc.on("exit", (code, signal) => r({ code, signal })));
    try {
      await waitForPort(port);
    } catch (err) {
      proc.kill("SIGKILL");
      throw new Error(`switchboard did not start: ${err.message}\n${s.log}`);
    }
    return s;
  }
  async function stop(s) {
    if (s.proc.exitCode !== null || s.proc.signalCode !== null) return s.exited;
    s.proc.kill("SIGTERM");
    const timer = setTimeout(() => s.proc.kill("SIGKILL"), 10000);
    const res = await s.exited;
    clearTimeout(timer);
    return res;
  }

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "switchboard-web-"));
    bin = path.join(dir, "switchboard");
    await new Promise((resolve, reject) =>
      execFile("go", ["build", "-o", bin, "./cmd/switchboard"], { cwd: repo, timeout: 170000 }, (err, _out, stderr) =>
        err ? reject(new Error("go build ./cmd/switchboard failed: " + stderr)) : resolve()));
    server = await start();
  }, { timeout: 180000 });

  after(async () => {
    closeClients();
    if (server) await stop(server);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  describe("common scenarios", () => {
    commonScenarios(() => server.url);
  });

  describe("more", () => {
    afterEach(closeClients);

    it("the hub helper join() resolves with the server's {ok:true} answer", async () => {
      const a = client(server.url, { transports: ["websocket"] });
      const b = client(server.url, { transports: ["websocket"] });
      assert.deepEqual(await a.join("go-room"), { ok: true });
      assert.deepEqual(await b.join("go-room"), { ok: true });
      const got = waitFor(b, "chat");
      const answer = await a.publish("go-room", "chat", "hello from a");
      assert.equal(answer.ok, true);
      const [data, meta] = await got;
      assert.equal(data, "hello from a");
      assert.equal(meta.room, "go-room");
    });

    it("reconnects by itself when the server restarts", async () => {
      const s = client(server.url, { transports: ["polling", "websocket"], reconnectionDelay: 100, reconnectionDelayMax: 300 });
      await waitFor(s, "connect");
      assert.equal(await s.emitWithAck("echo", "before"), "before");
      const firstId = s.id;
      const down = waitFor(s, "disconnect", 10000);
      const exit = await stop(server);
      assert.equal(exit.code, 0, "graceful shutdown exits 0");
      const [reason] = await down;
      assert.ok(["transport close", "transport error"].includes(reason), "recoverable reason, got " + reason);
      let reconnects = 0;
      s.io.on("reconnect", () => reconnects++);
      const back = waitFor(s, "connect", 15000);
      server = await start(server.port);
      await back;
      assert.equal(reconnects, 1);
      assert.equal(s.connected, true);
      assert.notEqual(s.id, firstId);
      assert.equal(await s.emitWithAck("echo", "after"), "after");
    });
  });
});
