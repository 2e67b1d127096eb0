package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/switchboard-io/switchboard/client"
)

// TestClusterThroughRedis runs two hubs sharing a private redis-server: a
// publish to one reaches a client of the other. Without redis-server it is
// skipped loudly, and fails when SWITCHBOARD_REQUIRE_ALL=1.
func TestClusterThroughRedis(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		msg := "SKIPPING the cluster test: redis-server is not installed (SWITCHBOARD_REQUIRE_ALL=1 makes this a failure)"
		fmt.Fprintln(os.Stderr, "\n*** "+msg+" ***")
		if os.Getenv("SWITCHBOARD_REQUIRE_ALL") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	redis := exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	if err := redis.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { redis.Process.Kill(); redis.Wait() })
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
	url := "redis://" + addr + "/0"
	a := startHub(t, t.TempDir(), jwtArgs("--redis-url", url)...)
	b := startHub(t, t.TempDir(), jwtArgs("--redis-url", url)...)
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
