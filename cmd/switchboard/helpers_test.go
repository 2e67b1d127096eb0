package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/switchboard-io/switchboard/client"
)

// binary is the switchboard binary built once by TestMain.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "switchboard-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "switchboard")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building switchboard:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const (
	testSecret = "e2e-secret-e2e-secret-e2e-secret-!"
	testAPIKey = "e2e-api-key"
)

// hubProc is a running switchboard process.
type hubProc struct {
	t      *testing.T
	cmd    *exec.Cmd
	url    string
	addr   string
	mu     sync.Mutex
	log    bytes.Buffer
	exited chan struct{}
	err    error
}

var listenRE = regexp.MustCompile(`msg="switchboard listening" url=(\S+) addr=(\S+)`)

// startHub runs the binary with args (plus --listen 127.0.0.1:0 unless
// given) in dataDir and waits for it to listen.
func startHub(t *testing.T, dataDir string, args ...string) *hubProc {
	t.Helper()
	if !containsFlag(args, "--listen") {
		args = append([]string{"--listen", "127.0.0.1:0"}, args...)
	}
	args = append([]string{"--data-dir", dataDir, "--sync", "always"}, args...)
	p := &hubProc{t: t, cmd: exec.Command(binary, args...), exited: make(chan struct{})}
	p.cmd.Env = cleanEnv()
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		found := false
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.log.WriteString(line + "\n")
			p.mu.Unlock()
			if m := listenRE.FindStringSubmatch(line); m != nil && !found {
				found = true
				p.url, p.addr = m[1], m[2]
				close(ready)
			}
		}
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	select {
	case <-ready:
	case <-p.exited:
		t.Fatalf("switchboard exited before listening (%v):\n%s", p.err, p.logs())
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		t.Fatalf("switchboard did not start:\n%s", p.logs())
	}
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("switchboard log:\n%s", p.logs())
		}
	})
	return p
}

func containsFlag(args []string, name string) bool {
	for _, a := range args {
		if a == name || strings.HasPrefix(a, name+"=") {
			return true
		}
	}
	return false
}

// cleanEnv is the environment without SWITCHBOARD_* settings.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SWITCHBOARD_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

func (p *hubProc) logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// stop sends sig and returns the exit code.
func (p *hubProc) stop(sig syscall.Signal) int {
	p.t.Helper()
	p.cmd.Process.Signal(sig)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		p.t.Fatalf("switchboard did not exit after %v:\n%s", sig, p.logs())
	}
	return p.cmd.ProcessState.ExitCode()
}

func token(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func userAuth(t *testing.T, sub string, rooms, publish []string) map[string]any {
	return map[string]any{"token": token(t, jwt.MapClaims{"sub": sub, "rooms": rooms, "publish": publish,
		"exp": time.Now().Add(time.Hour).Unix()})}
}

func dialErr(t *testing.T, url string, opts *client.Options) (*client.Socket, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if opts.AckTimeout == 0 {
		opts.AckTimeout = 20 * time.Second
	}
	s, err := client.Dial(ctx, url, opts)
	if s != nil {
		t.Cleanup(func() { s.Manager().Close() })
	}
	return s, err
}

// dialSetup connects after setup registered its handlers, so that events
// sent right after CONNECT (durable replays) are not missed.
func dialSetup(t *testing.T, url string, opts *client.Options, setup func(*client.Socket)) *client.Socket {
	t.Helper()
	if opts.AckTimeout == 0 {
		opts.AckTimeout = 20 * time.Second
	}
	m := client.NewManager(url, opts)
	t.Cleanup(func() { m.Close() })
	s := m.Socket("/")
	setup(s)
	res := make(chan error, 2)
	s.Once("connect", func() { res <- nil })
	s.Once("connect_error", func(err error) { res <- err })
	s.Connect()
	select {
	case err := <-res:
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no connect")
	}
	return s
}

func dial(t *testing.T, url string, auth any) *client.Socket {
	t.Helper()
	s, err := dialErr(t, url, &client.Options{Auth: auth})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	return s
}

func call(t *testing.T, s *client.Socket, event string, args ...any) map[string]any {
	t.Helper()
	res, err := s.EmitWithAck(context.Background(), event, args...)
	if err != nil {
		t.Fatalf("%s: %v", event, err)
	}
	var out map[string]any
	if err := res.Decode(0, &out); err != nil {
		t.Fatalf("%s answer %s: %v", event, res, err)
	}
	return out
}

func expectOK(t *testing.T, what string, a map[string]any) map[string]any {
	t.Helper()
	if a["ok"] != true {
		t.Fatalf("%s: answer %v, want ok", what, a)
	}
	return a
}

// request does an HTTP request with an optional API key and JSON body
// (a string body is sent as is).
func request(t *testing.T, method, url, key string, body any) (int, http.Header, []byte) {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	case []byte:
		r = bytes.NewReader(b)
	default:
		enc, _ := json.Marshal(b)
		r = bytes.NewReader(enc)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, out
}

func jsonBody(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", b, err)
	}
	return m
}

// inbox collects events of one name with their args, acking durable ones.
type inbox struct {
	mu      sync.Mutex
	got     []client.Args
	changed chan struct{}
}

func collect(s *client.Socket, event string, ack bool) *inbox {
	in := &inbox{changed: make(chan struct{}, 1)}
	s.On(event, func(a client.Args, reply client.AckFunc) {
		in.mu.Lock()
		in.got = append(in.got, a)
		in.mu.Unlock()
		if ack {
			reply()
		}
		select {
		case in.changed <- struct{}{}:
		default:
		}
	})
	return in
}

// waitUntil waits until pred holds on the received list; the 30 s bound
// only turns a hang into a failure.
func (in *inbox) waitUntil(t *testing.T, what string, pred func([]client.Args) bool) []client.Args {
	t.Helper()
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	for {
		in.mu.Lock()
		got := append([]client.Args(nil), in.got...)
		in.mu.Unlock()
		if pred(got) {
			return got
		}
		select {
		case <-in.changed:
		case <-deadline.C:
			t.Fatalf("never got %s; got %v", what, got)
		}
	}
}

func metaOf(a client.Args) map[string]any {
	var m map[string]any
	_ = a.Decode(1, &m)
	return m
}

type flagFlag = flag.Flag

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
