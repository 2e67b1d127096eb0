package engineio_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-io/switchboard/engineio"
)

// nodeModules finds the repository's node_modules with engine.io-client, or
// skips the test.
func nodeModules(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node not installed")
	}
	dir, _ := os.Getwd()
	for {
		nm := filepath.Join(dir, "node_modules")
		if _, err := os.Stat(filepath.Join(nm, "engine.io-client")); err == nil {
			return nm
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skip("node_modules/engine.io-client not found (run npm ci)")
		}
		dir = parent
	}
}

// The official engine.io-client (6.6) connects, exchanges text and binary
// messages, upgrades to websocket when it may, and keeps exchanging across
// several heartbeats.
const interopScript = `
const { Socket } = require("engine.io-client");
const socket = new Socket(process.argv[1], Object.assign({ path: "/engine.io/" }, JSON.parse(process.argv[2])));
const log = (s) => console.log(s);
let echoes = 0;
socket.on("open", () => {
  log("open:" + socket.transport.name);
  socket.send("hello");
  socket.send(Buffer.from([1, 2, 3]));
});
socket.on("upgrade", (t) => log("upgrade:" + t.name));
socket.on("message", (m) => {
  log(typeof m === "string" ? "text:" + m : "bin:" + Buffer.from(m).toString("hex"));
  if (++echoes === 2) setTimeout(() => socket.send("last"), 400);
  if (m === "last") socket.close();
});
socket.on("close", (reason) => { log("close:" + reason); setTimeout(() => process.exit(0), 100); });
socket.on("error", (e) => { log("error:" + e); process.exit(1); });
setTimeout(() => { log("timeout"); process.exit(1); }, 10000);
`

func TestInteropEngineIOClient(t *testing.T) {
	nm := nodeModules(t)
	for _, tc := range []struct {
		name, opts string
		want       []string
	}{
		{"polling then websocket", `{}`, []string{"open:polling", "upgrade:websocket"}},
		{"polling only", `{"transports":["polling"]}`, []string{"open:polling"}},
		{"websocket only", `{"transports":["websocket"]}`, []string{"open:websocket"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Short heartbeats: several pings go by during the exchange.
			h := newHarness(t, &engineio.Options{PingInterval: 100 * time.Millisecond, PingTimeout: 200 * time.Millisecond})
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, "node", "-e", interopScript, strings.TrimSuffix(h.url, "/engine.io/"), tc.opts)
			cmd.Env = append(os.Environ(), "NODE_PATH="+nm)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("node: %v\nstdout:\n%s\nstderr:\n%s", err, out, stderr.String())
			}
			got := strings.Split(strings.TrimSpace(string(out)), "\n")
			want := append(tc.want, "text:hello", "bin:010203", "text:last", "close:forced close")
			// The upgrade may come before or after the first echoes.
			if len(got) != len(want) || got[0] != want[0] || got[len(got)-1] != want[len(want)-1] {
				t.Fatalf("events:\n%s\nwant (in some order):\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			seen := map[string]bool{}
			for _, g := range got {
				seen[g] = true
			}
			for _, w := range want {
				if !seen[w] {
					t.Errorf("missing event %q in:\n%s", w, strings.Join(got, "\n"))
				}
			}
			// Closing a polling client sends "1" and drops the pending GET;
			// whichever the server sees first decides the reason (as in Node).
			c := <-h.conns
			if r := h.waitClosed(c.ID()); r != "transport close" && !(tc.name == "polling only" && r == "transport error") {
				t.Errorf("server-side reason %q", r)
			}
		})
	}
}
