package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	goredis "github.com/redis/go-redis/v9"
	"github.com/switchboard-io/switchboard/client"
	"github.com/switchboard-io/switchboard/redis"
)

// requireTool skips the test loudly when a tool is missing, and fails it
// when SWITCHBOARD_REQUIRE_ALL=1.
func requireTool(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	msg := fmt.Sprintf("SKIPPING %s: %v (SWITCHBOARD_REQUIRE_ALL=1 makes this a failure)", what, err)
	fmt.Fprintln(os.Stderr, "\n*** "+msg+" ***")
	if os.Getenv("SWITCHBOARD_REQUIRE_ALL") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// startRedis runs a private redis-server on a free port (AOF with fsync
// always, so that what it acknowledged survives) and returns its URL.
func startRedis(t *testing.T) string {
	t.Helper()
	return startRedisOn(t, freePort(t))
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func startRedisOn(t *testing.T, port int) string {
	t.Helper()
	_, err := exec.LookPath("redis-server")
	requireTool(t, "the cluster test: redis-server is not installed", err)
	srv := exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "",
		"--appendonly", "yes", "--appendfsync", "always", "--dir", t.TempDir())
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	addr := "127.0.0.1:" + strconv.Itoa(port)
	for start := time.Now(); ; {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Since(start) > 30*time.Second {
			t.Fatalf("redis-server did not start: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return "redis://" + addr + "/0"
}

// startCluster runs n hubs on one Redis.
func startCluster(t *testing.T, url string, n int, extra ...string) []*hubProc {
	var hubs []*hubProc
	for range n {
		args := jwtArgs(append([]string{"--redis-url", url, "--node-ttl", "1500ms", "--presence-rooms", "*"}, extra...)...)
		hubs = append(hubs, startHub(t, t.TempDir(), args...))
	}
	return hubs
}

func allRooms(t *testing.T, sub string) map[string]any {
	return userAuth(t, sub, []string{"*"}, []string{"*"})
}

// TestClusterThroughRedis runs two hubs sharing a private redis-server: a
// publish to one reaches a client of the other, and members count across
// the cluster.
func TestClusterThroughRedis(t *testing.T) {
	url := startRedis(t)
	hubs := startCluster(t, url, 2)
	a, b := hubs[0], hubs[1]
	s := dial(t, b.url, userAuth(t, "u", []string{"*"}, nil))
	in := collect(s, "news", false)
	expectOK(t, "join", call(t, s, "join", "live"))
	code, _, body := request(t, "POST", a.url+"/api/publish", testAPIKey, map[string]any{"room": "live", "event": "news", "data": "from a"})
	if code != 200 {
		t.Fatalf("publish on a: %d %s", code, body)
	}
	got := in.waitUntil(t, "the publish made on the other hub", func(a []client.Args) bool { return len(a) == 1 })
	var data string
	if got[0].Decode(0, &data); data != "from a" {
		t.Errorf("got %v", got[0])
	}
	// Hub a counts b's member.
	code, _, body = request(t, "GET", a.url+"/api/rooms/live", testAPIKey, nil)
	if code != 200 || jsonBody(t, body)["members"] != float64(1) {
		t.Errorf("room on a: %d %s", code, body)
	}
	if code, _, _ := request(t, "GET", a.url+"/readyz", "", nil); code != 200 {
		t.Errorf("readyz %d", code)
	}
}

// TestClusterThreeNodes: three hubs on one Redis, clients spread over
// them: publishes from every node reach members on every node, presence is
// cluster-wide and announced once per identity, HTTP publish dedupe spans
// nodes, and a durable subscriber resumes on another node.
func TestClusterThreeNodes(t *testing.T) {
	url := startRedis(t)
	hubs := startCluster(t, url, 3)

	t.Run("fan-out", func(t *testing.T) {
		var socks []*client.Socket
		var ins []*inbox
		for i, h := range hubs {
			s := dial(t, h.url, allRooms(t, fmt.Sprintf("fan%d", i)))
			ins = append(ins, collect(s, "msg", false))
			expectOK(t, "join", call(t, s, "join", "fan"))
			socks = append(socks, s)
		}
		for i, h := range hubs {
			expectOK(t, "publish", call(t, socks[i], "publish", map[string]any{"room": "fan", "event": "msg", "data": fmt.Sprintf("socket@%d", i)}))
			code, _, body := request(t, "POST", h.url+"/api/publish", testAPIKey, map[string]any{"room": "fan", "event": "msg", "data": fmt.Sprintf("http@%d", i)})
			if code != 200 {
				t.Fatalf("publish on hub %d: %d %s", i, code, body)
			}
		}
		for i, in := range ins {
			// Every HTTP publish, and every other member's socket publish.
			var want []string
			for j := range hubs {
				want = append(want, fmt.Sprintf("http@%d", j))
				if j != i {
					want = append(want, fmt.Sprintf("socket@%d", j))
				}
			}
			slices.Sort(want)
			got := in.waitUntil(t, fmt.Sprintf("5 events on hub %d", i), func(a []client.Args) bool { return len(a) >= len(want) })
			var names []string
			for _, a := range got {
				var s string
				a.Decode(0, &s)
				names = append(names, s)
			}
			slices.Sort(names)
			if !slices.Equal(names, want) {
				t.Errorf("member on hub %d got %v, want %v", i, names, want)
			}
			code, _, body := request(t, "GET", hubs[i].url+"/api/rooms/fan", testAPIKey, nil)
			if code != 200 || jsonBody(t, body)["members"] != float64(3) {
				t.Errorf("members on hub %d: %d %s", i, code, body)
			}
		}
	})

	t.Run("presence", func(t *testing.T) {
		// watcher on hub 0 sees the notices of everyone else.
		watcher := dial(t, hubs[0].url, allRooms(t, "watcher"))
		joins := collect(watcher, "switchboard:join", false)
		leaves := collect(watcher, "switchboard:leave", false)
		expectOK(t, "join", call(t, watcher, "join", "lobby"))

		alice1 := dial(t, hubs[1].url, allRooms(t, "alice"))
		expectOK(t, "join", call(t, alice1, "join", "lobby"))
		alice2 := dial(t, hubs[2].url, allRooms(t, "alice")) // a second connection, another node
		expectOK(t, "join", call(t, alice2, "join", "lobby"))
		bob := dial(t, hubs[2].url, allRooms(t, "bob"))
		expectOK(t, "join", call(t, bob, "join", "lobby"))
		// bob's notice comes from hub 2 after alice2's join there: when it
		// arrived, a duplicate alice join from hub 2 would have too.
		joins.waitUntil(t, "bob's join", func(a []client.Args) bool { return hasIdentity(a, "bob") })
		if n := countIdentity(joins.snapshot(), "alice"); n != 1 {
			t.Errorf("alice announced %d times, want once", n)
		}
		for i, h := range hubs {
			s := dial(t, h.url, allRooms(t, fmt.Sprintf("asker%d", i)))
			got := call(t, s, "presence", "lobby")
			ids, _ := json.Marshal(got["identities"])
			if string(ids) != `["alice","bob","watcher"]` {
				t.Errorf("presence on hub %d: %s", i, ids)
			}
		}
		// alice's first connection leaves: she is still present through
		// the second; then the second disconnects: one leave.
		expectOK(t, "leave", call(t, alice1, "leave", "lobby"))
		alice2.Disconnect() // a client-side disconnect is not recoverable
		leaves.waitUntil(t, "alice's leave", func(a []client.Args) bool { return hasIdentity(a, "alice") })
		// A marker from hub 1 after alice1's leave went through it.
		carol := dial(t, hubs[1].url, allRooms(t, "carol"))
		expectOK(t, "join", call(t, carol, "join", "lobby"))
		expectOK(t, "leave", call(t, carol, "leave", "lobby"))
		leaves.waitUntil(t, "carol's leave", func(a []client.Args) bool { return hasIdentity(a, "carol") })
		if n := countIdentity(leaves.snapshot(), "alice"); n != 1 {
			t.Errorf("alice's leave announced %d times, want once", n)
		}
		if n := countIdentity(leaves.snapshot(), "bob"); n != 0 {
			t.Errorf("bob announced as leaving %d times", n)
		}
		got := call(t, bob, "presence", "lobby")
		if ids, _ := json.Marshal(got["identities"]); string(ids) != `["bob","watcher"]` {
			t.Errorf("presence after the leaves: %s", ids)
		}
	})

	t.Run("dedupe", func(t *testing.T) {
		sub := dial(t, hubs[2].url, allRooms(t, "deduper"))
		in := collect(sub, "order", true)
		expectOK(t, "join", call(t, sub, "join", "durable-dedupe", map[string]any{"durable": true}))
		var offsets []any
		for i, h := range hubs[:2] {
			code, _, body := request(t, "POST", h.url+"/api/publish", testAPIKey,
				map[string]any{"room": "durable-dedupe", "event": "order", "data": "once", "id": "order-1"})
			if code != 200 {
				t.Fatalf("publish on hub %d: %d %s", i, code, body)
			}
			m := jsonBody(t, body)
			offsets = append(offsets, m["offset"])
			if i == 1 && m["duplicate"] != true {
				t.Errorf("second publish with the same id on another node: %s, want duplicate", body)
			}
		}
		if offsets[0] != offsets[1] || offsets[0] == nil {
			t.Errorf("offsets %v, want the same", offsets)
		}
		code, _, body := request(t, "POST", hubs[1].url+"/api/publish", testAPIKey,
			map[string]any{"room": "durable-dedupe", "event": "order", "data": "marker"})
		if code != 200 {
			t.Fatalf("marker: %d %s", code, body)
		}
		got := in.waitUntil(t, "the marker", func(a []client.Args) bool { return hasData(a, "marker") })
		if len(got) != 2 {
			t.Errorf("got %d events, want the deduplicated one and the marker: %v", len(got), got)
		}
	})

	t.Run("durable resume on another node", func(t *testing.T) {
		room := "durable-resume"
		rdb := redisClient(t, url)
		store := redis.NewStore(rdb, &redis.StoreOptions{Prefix: "sb"})
		defer store.Close()

		type delivery struct{ offset uint64 }
		var mu sync.Mutex
		var first []uint64
		firstDone := make(chan struct{})
		s := dialSetup(t, hubs[0].url, &client.Options{Auth: allRooms(t, "durer")}, func(s *client.Socket) {
			s.On("tick", func(a client.Args, ack client.AckFunc) {
				off := uint64(metaOf(a)["offset"].(float64))
				mu.Lock()
				defer mu.Unlock()
				first = append(first, off)
				if off <= 5 {
					ack()
				}
				if off == 5 {
					close(firstDone)
				}
			})
		})
		expectOK(t, "join", call(t, s, "join", room, map[string]any{"durable": true}))
		for i := 1; i <= 10; i++ {
			code, _, body := request(t, "POST", hubs[i%3].url+"/api/publish", testAPIKey,
				map[string]any{"room": room, "event": "tick", "data": i})
			if code != 200 {
				t.Fatalf("publish %d: %d %s", i, code, body)
			}
		}
		select {
		case <-firstDone:
		case <-time.After(30 * time.Second):
			t.Fatal("the first five events never arrived")
		}
		s.Manager().Close()
		// Wait until hub 0 saved the cursor (at 5: the unacknowledged rest
		// must come again).
		waitFor(t, "the cursor saved at 5", func() bool {
			sub, ok, err := store.Cursor(context.Background(), "/#"+room, "durer")
			return err == nil && ok && sub.Cursor >= 5
		})
		var second []uint64
		rest := make(chan struct{})
		dialSetup(t, hubs[2].url, &client.Options{Auth: allRooms(t, "durer")}, func(s *client.Socket) {
			s.On("tick", func(a client.Args, ack client.AckFunc) {
				off := uint64(metaOf(a)["offset"].(float64))
				ack()
				mu.Lock()
				defer mu.Unlock()
				second = append(second, off)
				if off == 11 {
					close(rest)
				}
			})
		})
		code, _, body := request(t, "POST", hubs[1].url+"/api/publish", testAPIKey, map[string]any{"room": room, "event": "tick", "data": 11})
		if code != 200 {
			t.Fatalf("publish 11: %d %s", code, body)
		}
		select {
		case <-rest:
		case <-time.After(30 * time.Second):
			mu.Lock()
			t.Fatalf("event 11 never arrived on hub 2; got %v", second)
		}
		mu.Lock()
		defer mu.Unlock()
		if want := []uint64{6, 7, 8, 9, 10, 11}; !slices.Equal(second, want) {
			t.Errorf("resumed on hub 2 with %v, want %v", second, want)
		}
	})
}

// TestClusterNodeKilled SIGKILLs one of three hubs while durable publishes
// flow through the others: they go on, every acknowledged durable event
// reaches every durable subscriber (those of the dead node once they
// reconnect elsewhere), and the dead node's presence members leave.
func TestClusterNodeKilled(t *testing.T) {
	url := startRedis(t)
	hubs := startCluster(t, url, 3)
	room := "durable-kill"

	type sub struct {
		mu   sync.Mutex
		got  map[uint64]int
		wake chan struct{}
	}
	newSub := func() *sub { return &sub{got: map[uint64]int{}, wake: make(chan struct{}, 1)} }
	handler := func(sb *sub) func(*client.Socket) {
		return func(s *client.Socket) {
			s.On("tick", func(a client.Args, ack client.AckFunc) {
				off := uint64(metaOf(a)["offset"].(float64))
				sb.mu.Lock()
				sb.got[off]++
				sb.mu.Unlock()
				ack()
				select {
				case sb.wake <- struct{}{}:
				default:
				}
			})
		}
	}
	subs := []*sub{newSub(), newSub(), newSub()}
	for i, h := range hubs {
		s := dialSetup(t, h.url, &client.Options{Auth: allRooms(t, fmt.Sprintf("sub%d", i))}, handler(subs[i]))
		expectOK(t, "join", call(t, s, "join", room, map[string]any{"durable": true}))
	}
	// Presence: a watcher on hub 0, a ghost on hub 2 (to be killed).
	watcher := dial(t, hubs[0].url, allRooms(t, "watcher"))
	joins := collect(watcher, "switchboard:join", false)
	leaves := collect(watcher, "switchboard:leave", false)
	expectOK(t, "join", call(t, watcher, "join", "lobby"))
	ghost := dial(t, hubs[2].url, allRooms(t, "ghost"))
	expectOK(t, "join", call(t, ghost, "join", "lobby"))
	joins.waitUntil(t, "the ghost's join", func(a []client.Args) bool { return hasIdentity(a, "ghost") })

	// Publish through hubs 0 and 1 while hub 2 is killed.
	const total = 300
	var acked []uint64
	for i := 1; i <= total; i++ {
		if i == total/3 {
			hubs[2].cmd.Process.Signal(syscall.SIGKILL)
			<-hubs[2].exited
		}
		code, _, body := request(t, "POST", hubs[i%2].url+"/api/publish", testAPIKey,
			map[string]any{"room": room, "event": "tick", "data": i})
		if code != 200 {
			t.Fatalf("publish %d on hub %d: %d %s", i, i%2, code, body)
		}
		acked = append(acked, uint64(jsonBody(t, body)["offset"].(float64)))
	}
	// sub2 was on the dead node: it reconnects to hub 1 and resumes.
	s := dialSetup(t, hubs[1].url, &client.Options{Auth: allRooms(t, "sub2")}, handler(subs[2]))
	_ = s
	for i, sb := range subs {
		deadline := time.After(60 * time.Second)
		for {
			sb.mu.Lock()
			missing := 0
			for _, off := range acked {
				if sb.got[off] == 0 {
					missing++
				}
			}
			sb.mu.Unlock()
			if missing == 0 {
				break
			}
			select {
			case <-sb.wake:
			case <-time.After(100 * time.Millisecond):
			case <-deadline:
				t.Fatalf("subscriber %d misses %d of %d acknowledged events", i, missing, len(acked))
			}
		}
	}
	// The ghost leaves once hub 2's heartbeat expires (1.5 s here).
	leaves.waitUntil(t, "the dead node's member leaving", func(a []client.Args) bool { return hasIdentity(a, "ghost") })
	got := call(t, watcher, "presence", "lobby")
	if ids, _ := json.Marshal(got["identities"]); string(ids) != `["watcher"]` {
		t.Errorf("presence after the node died: %s", ids)
	}
	if n := countIdentity(leaves.snapshot(), "ghost"); n != 1 {
		t.Errorf("ghost left %d times", n)
	}
	for i, h := range hubs[:2] {
		if code, _, body := request(t, "GET", h.url+"/readyz", "", nil); code != 200 {
			t.Errorf("readyz on hub %d: %d %s", i, code, body)
		}
	}
}

// TestClusterRedisDownAtStart: a hub whose Redis is down at start says so,
// serves with /readyz 503, and joins the cluster once Redis is up.
func TestClusterRedisDownAtStart(t *testing.T) {
	port := freePort(t)
	url := "redis://127.0.0.1:" + strconv.Itoa(port) + "/0"
	a := startHub(t, t.TempDir(), jwtArgs("--redis-url", url, "--redis-wait", "200ms", "--node-ttl", "1500ms")...)
	if !strings.Contains(a.logs(), "Redis is not reachable") {
		t.Errorf("no clear error in the log:\n%s", a.logs())
	}
	if code, _, body := request(t, "GET", a.url+"/readyz", "", nil); code != 503 {
		t.Errorf("readyz with Redis down: %d %s, want 503", code, body)
	}
	startRedisOn(t, port)
	waitFor(t, "readyz 200 once Redis is up", func() bool {
		code, _, _ := request(t, "GET", a.url+"/readyz", "", nil)
		return code == 200
	})
	b := startHub(t, t.TempDir(), jwtArgs("--redis-url", url, "--node-ttl", "1500ms")...)
	s := dial(t, a.url, allRooms(t, "early"))
	in := collect(s, "tick", true)
	expectOK(t, "join", call(t, s, "join", "durable-late", map[string]any{"durable": true}))
	code, _, body := request(t, "POST", b.url+"/api/publish", testAPIKey, map[string]any{"room": "durable-late", "event": "tick", "data": 1})
	if code != 200 {
		t.Fatalf("publish on b: %d %s", code, body)
	}
	in.waitUntil(t, "b's durable publish on a", func(a []client.Args) bool { return len(a) == 1 })
	other := dial(t, b.url, allRooms(t, "other"))
	got := call(t, other, "presence", "durable-late")
	if ids, _ := json.Marshal(got["identities"]); string(ids) != `["early"]` {
		t.Errorf("presence seen from b: %s", ids)
	}
}

// TestClusterOfficialClient: the official socket.io-client on three
// clustered hubs: presence, durable delivery and dedupe across nodes.
func TestClusterOfficialClient(t *testing.T) {
	root, _ := filepath.Abs(filepath.Join("..", ".."))
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(root, "node_modules", "socket.io-client", "package.json"))
	}
	requireTool(t, "the clustered official socket.io-client test (run `npm ci`)", err)
	url := startRedis(t)
	hubs := startCluster(t, url, 3)
	exp := time.Now().Add(time.Hour).Unix()
	alice := token(t, jwt.MapClaims{"sub": "alice", "rooms": []string{"durable-*"}, "exp": exp})
	bob := token(t, jwt.MapClaims{"sub": "bob", "rooms": []string{"durable-*"}, "publish": []string{"durable-*"}, "exp": exp})
	cmd := exec.Command(node, filepath.Join("testdata", "cluster.js"), hubs[0].url, hubs[1].url, hubs[2].url, alice, bob)
	cmd.Env = append(os.Environ(), "REPO_ROOT="+root)
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("node: %v\n%s\n%s", err, out, stderr)
	}
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("node output %q: %v", out, err)
	}
	j := func(k string) string { b, _ := json.Marshal(got[k]); return string(b) }
	want := map[string]string{
		"aliceJoin":       `{"ok":true}`,
		"bobJoin":         `{"ok":true}`,
		"bob2Join":        `{"ok":true}`,
		"joinNotice":      `{"identity":"bob","room":"durable-js"}`,
		"publish":         `{"offset":1,"ok":true}`,
		"repeat":          `{"duplicate":true,"offset":1,"ok":true}`,
		"delivery":        `{"ackType":"function","data":{"text":"hi"},"meta":{"from":"bob","offset":1,"room":"durable-js"}}`,
		"presence":        `{"identities":["alice","bob"],"ok":true,"room":"durable-js"}`,
		"afterFirstClose": `{"identities":["alice","bob"],"ok":true,"room":"durable-js"}`,
		"leaveNotice":     `{"identity":"bob","room":"durable-js"}`,
		"presenceAfter":   `{"identities":["alice"],"ok":true,"room":"durable-js"}`,
		"notices":         `[{"identity":"bob","room":"durable-js"}]`,
	}
	for k, w := range want {
		if g := j(k); g != w {
			t.Errorf("%s = %s, want %s", k, g, w)
		}
	}
}

func redisClient(t *testing.T, url string) *goredis.Client {
	t.Helper()
	opts, err := goredis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := goredis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	return c
}

// waitFor polls cond; the 30 s bound only turns a hang into a failure.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for start := time.Now(); !cond(); {
		if time.Since(start) > 30*time.Second {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (in *inbox) snapshot() []client.Args {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]client.Args(nil), in.got...)
}

func countIdentity(a []client.Args, id string) int {
	n := 0
	for _, x := range a {
		var m map[string]any
		if x.Decode(0, &m) == nil && m["identity"] == id {
			n++
		}
	}
	return n
}

func hasIdentity(a []client.Args, id string) bool { return countIdentity(a, id) > 0 }

func hasData(a []client.Args, s string) bool {
	for _, x := range a {
		var d string
		if x.Decode(0, &d) == nil && d == s {
			return true
		}
	}
	return false
}
