package client

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// waitTimeout bounds every wait in the tests.
const waitTimeout = 10 * time.Second

// requireOrSkip skips the test, or fails it when SWITCHBOARD_REQUIRE_ALL=1.
func requireOrSkip(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("SWITCHBOARD_REQUIRE_ALL") == "1" {
		t.Fatalf("SWITCHBOARD_REQUIRE_ALL=1 but %s", why)
	}
	t.Skipf("SKIPPING: %s (set SWITCHBOARD_REQUIRE_ALL=1 to make this fatal)", why)
}

// startRefServer runs testdata/refserver.js (the Node reference server,
// socket.io 4.8.4) for the duration of the test and returns its base URL.
// env adds environment variables such as "PING_INTERVAL=100".
func startRefServer(t *testing.T, env ...string) string {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		requireOrSkip(t, "node is not installed")
	}
	if _, err := os.Stat("../node_modules/socket.io/package.json"); err != nil {
		requireOrSkip(t, "../node_modules/socket.io is missing (run npm ci in the repository root)")
	}
	cmd := exec.Command("node", "testdata/refserver.js")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start refserver: %v", err)
	}
	t.Cleanup(func() {
		stdin.Close() // the server exits when stdin closes
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	port := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		port <- strings.TrimSpace(line)
	}()
	select {
	case p := <-port:
		if p == "" {
			t.Fatal("refserver exited without printing its port")
		}
		return "http://127.0.0.1:" + p
	case <-time.After(waitTimeout):
		t.Fatal("refserver did not print its port")
	}
	return ""
}

// transportMode is one way of carrying the session.
type transportMode struct {
	name string
	opts Options
}

var transportModes = []transportMode{
	{"polling", Options{Transports: []string{"polling"}}},
	{"websocket", Options{Transports: []string{"websocket"}}},
	{"upgrade", Options{}}, // polling, then upgraded to websocket
}

// forEachTransport runs fn as a subtest per transport mode, with fast
// reconnection settings.
func forEachTransport(t *testing.T, fn func(t *testing.T, opts Options)) {
	for _, m := range transportModes {
		t.Run(m.name, func(t *testing.T) {
			opts := m.opts
			opts.ReconnectionDelay = 20 * time.Millisecond
			opts.ReconnectionDelayMax = 200 * time.Millisecond
			opts.Timeout = 5 * time.Second
			fn(t, opts)
		})
	}
}

// dial connects to url (whose path is the namespace) and closes the
// Manager at the end of the test.
func dial(t *testing.T, url string, opts Options) *Socket {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	s, err := Dial(ctx, url, &opts)
	if err != nil {
		t.Fatalf("Dial(%s): %v", url, err)
	}
	t.Cleanup(func() { s.Manager().Close() })
	return s
}

// events returns a channel receiving the first argument of every event
// name, decoded as T. The channel is large enough for the tests.
func events[T any](s *Socket, name string) <-chan T {
	ch := make(chan T, 4096)
	s.On(name, func(v T) { ch <- v })
	return ch
}

// reasons returns a channel receiving the reason of every disconnect.
func reasons(s *Socket) <-chan string {
	ch := make(chan string, 16)
	s.On("disconnect", func(reason string) { ch <- reason })
	return ch
}

// signal returns a channel receiving a value on every event name of the
// reserved kind "connect".
func connects(s *Socket) <-chan struct{} {
	ch := make(chan struct{}, 16)
	s.On("connect", func() { ch <- struct{}{} })
	return ch
}

// recv waits for a value from ch.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitTimeout):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// ack emits event with args, waits for the acknowledgement and decodes its
// first argument into a T.
func ack[T any](t *testing.T, s *Socket, event string, args ...any) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	res, err := s.EmitWithAck(ctx, event, args...)
	if err != nil {
		t.Fatalf("EmitWithAck(%q): %v", event, err)
	}
	var v T
	if res.Len() > 0 {
		if err := res.Decode(0, &v); err != nil {
			t.Fatalf("EmitWithAck(%q): decode: %v", event, err)
		}
	}
	return v
}

// eventually polls cond until it is true.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
