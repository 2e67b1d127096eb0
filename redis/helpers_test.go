package redis_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/switchboard-io/switchboard"
	"github.com/switchboard-io/switchboard/client"
	"github.com/switchboard-io/switchboard/redis"
)

// waitLimit bounds every wait for something that should happen.
const waitLimit = 10 * time.Second

// goNode is a Go server in the test cluster.
type goNode struct {
	srv *switchboard.Server
	url string
}

// startGoNode starts a Go node on the cluster described by opts. The
// "join", "leave", "setData" and "toRoom" client events work as on the
// Node node (testdata/node.js).
func startGoNode(t *testing.T, c goredis.UniversalClient, opts *redis.Options, recovery bool) *goNode {
	t.Helper()
	o := &switchboard.Options{Adapter: redis.NewAdapter(c, opts)}
	if recovery {
		o.ConnectionStateRecovery = &switchboard.RecoveryOptions{}
	}
	srv := switchboard.NewServer(o)
	srv.OnConnection(func(s *switchboard.Socket) {
		s.On("join", func(rooms []string, ack switchboard.AckFunc) {
			if err := s.Join(rooms...); err != nil {
				ack(err.Error())
				return
			}
			ack("ok")
		})
		s.On("leave", func(room string, ack switchboard.AckFunc) { s.Leave(room); ack("ok") })
		s.On("setData", func(v any, ack switchboard.AckFunc) { s.SetData(v); ack("ok") })
		// toRoom answers once the broadcast left this node (when asked), so
		// that a fence sent afterwards cannot overtake it.
		s.On("toRoom", func(args switchboard.Args, ack switchboard.AckFunc) {
			var room, ev string
			_ = args.Decode(0, &room)
			_ = args.Decode(1, &ev)
			vals, _ := args.Values()
			_ = s.To(room).Emit(ev, vals[2:]...)
			ack("ok")
		})
	})
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			t.Errorf("server close: %v", err)
		}
		hs.Close()
	})
	return &goNode{srv: srv, url: hs.URL}
}

// switchProxy forwards to one backend at a time, as a load balancer that
// moves a client to another node when its connection drops.
type switchProxy struct {
	target atomic.Pointer[url.URL]
	url    string
}

func newSwitchProxy(t *testing.T, backend string) *switchProxy {
	p := &switchProxy{}
	p.to(backend)
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(p.target.Load())
			r.Out.Host = r.In.Host
		},
		ErrorLog: nil,
	}
	hs := httptest.NewServer(rp)
	t.Cleanup(hs.Close)
	p.url = hs.URL
	return p
}

func (p *switchProxy) to(backend string) {
	u, err := url.Parse(backend)
	if err != nil {
		panic(err)
	}
	p.target.Store(u)
}

// peer is a Go client recording the events it receives.
type peer struct {
	name string
	sock *client.Socket

	mu      sync.Mutex
	events  []recv
	arrived chan struct{}
	conns   chan bool // recovered flag of each connect
}

type recv struct {
	event string
	args  switchboard.Args
}

// dial connects a websocket client to url. Events in watch are recorded;
// "q" acknowledgement requests are answered with the peer's name.
func dial(t *testing.T, name, url string, watch ...string) *peer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	p := &peer{name: name, arrived: make(chan struct{}, 1024), conns: make(chan bool, 16)}
	s := client.NewManager(url, &client.Options{Transports: []string{"websocket"}, DisableReconnection: true}).Socket("/")
	p.sock = s
	for _, ev := range watch {
		s.On(ev, func(a client.Args) {
			p.mu.Lock()
			p.events = append(p.events, recv{ev, a})
			p.mu.Unlock()
			select {
			case p.arrived <- struct{}{}:
			default:
			}
		})
	}
	s.On("q", func(ack client.AckFunc) { ack(name) })
	connected := make(chan error, 1)
	s.On("connect", func() {
		select {
		case p.conns <- s.Recovered():
		default:
		}
		select {
		case connected <- nil:
		default:
		}
	})
	s.On("connect_error", func(err error) {
		select {
		case connected <- err:
		default:
		}
	})
	s.Connect()
	select {
	case err := <-connected:
		if err != nil {
			t.Fatalf("%s: connect: %v", name, err)
		}
	case <-ctx.Done():
		t.Fatalf("%s: connect: timed out", name)
	}
	<-p.conns
	t.Cleanup(func() { _ = s.Manager().Close() })
	return p
}

// dropTransport closes the client's transport and waits until the socket
// knows it is disconnected, so that a Connect afterwards reconnects.
func (p *peer) dropTransport(t *testing.T) {
	t.Helper()
	p.sock.Manager().Engine().CloseTransport()
	deadline := time.Now().Add(waitLimit)
	for p.sock.Connected() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: still connected %v after its transport closed", p.name, waitLimit)
		}
		time.Sleep(time.Millisecond)
	}
}

func (p *peer) mustAck(t *testing.T, event string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	res, err := p.sock.EmitWithAck(ctx, event, args...)
	if err != nil {
		t.Fatalf("%s: %s: %v", p.name, event, err)
	}
	var s string
	if err := res.Decode(0, &s); err != nil || s != "ok" {
		t.Fatalf("%s: %s answered %v (%v)", p.name, event, res, err)
	}
}

func (p *peer) received() []recv {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]recv(nil), p.events...)
}

// waitEvent waits for the first event named ev whose first argument
// decodes to want (compared as JSON), and returns its arguments.
func (p *peer) waitEvent(t *testing.T, ev string, want any) switchboard.Args {
	t.Helper()
	wantJSON, _ := json.Marshal(want)
	deadline := time.After(waitLimit)
	for {
		for _, r := range p.received() {
			if r.event != ev || r.args.Len() == 0 {
				continue
			}
			var got any
			if err := r.args.Decode(0, &got); err != nil {
				continue
			}
			gotJSON, _ := json.Marshal(got)
			if bytes.Equal(gotJSON, wantJSON) {
				return r.args
			}
		}
		select {
		case <-p.arrived:
		case <-deadline:
			t.Fatalf("%s never received %s(%s); got %v", p.name, ev, wantJSON, p.received())
			return switchboard.Args{}
		}
	}
}

// count returns how many events named ev with first argument want arrived.
func (p *peer) count(ev string, want string) int {
	n := 0
	for _, r := range p.received() {
		var s string
		if r.event == ev && r.args.Len() > 0 && r.args.Decode(0, &s) == nil && s == want {
			n++
		}
	}
	return n
}

// nodeNode is a Node socket.io server in the cluster (testdata/node.js).
type nodeNode struct {
	t     *testing.T
	url   string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	seq   atomic.Int64

	mu      sync.Mutex
	waiting map[int64]chan nodeResult
	obs     []map[string]any
	obsCh   chan struct{}
	stderr  bytes.Buffer
	done    chan struct{}
}

type nodeResult struct {
	Result json.RawMessage `json:"result"`
	Error  string          `json:"error"`
}

// requireNodeAdapter skips (or fails with SWITCHBOARD_REQUIRE_ALL=1) when
// node, socket.io or @socket.io/redis-streams-adapter is missing.
func requireNodeAdapter(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		requireOrSkip(t, "node is not installed")
	}
	for _, pkg := range []string{"socket.io", "redis", "@socket.io/redis-streams-adapter"} {
		if _, err := os.Stat(filepath.Join("..", "node_modules", filepath.FromSlash(pkg), "package.json")); err != nil {
			requireOrSkip(t, fmt.Sprintf("npm package %s is not installed in node_modules (npm install)", pkg))
		}
	}
}

// startNodeNode starts a Node member of the cluster described by opts.
func startNodeNode(t *testing.T, addr string, opts *redis.Options, recovery bool) *nodeNode {
	t.Helper()
	requireNodeAdapter(t)
	n := &nodeNode{t: t, waiting: make(map[int64]chan nodeResult), obsCh: make(chan struct{}, 1), done: make(chan struct{})}
	n.cmd = exec.Command("node", filepath.Join("testdata", "node.js"))
	n.cmd.Env = append(os.Environ(),
		"REDIS_URL=redis://"+addr,
		"STREAM="+opts.StreamName,
		"PREFIX="+opts.ChannelPrefix,
		"SESSION_PREFIX="+opts.SessionKeyPrefix,
	)
	if recovery {
		n.cmd.Env = append(n.cmd.Env, "RECOVERY=1")
	}
	n.cmd.Stderr = &lockedWriter{mu: &n.mu, w: &n.stderr}
	stdout, err := n.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if n.stdin, err = n.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := n.cmd.Start(); err != nil {
		t.Fatalf("start node: %v", err)
	}
	ready := make(chan int, 1)
	go func() {
		defer close(n.done)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 1<<24)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) != nil {
				continue
			}
			switch m["kind"] {
			case "ready":
				port, _ := m["port"].(float64)
				ready <- int(port)
			case "done":
				var r nodeResult
				_ = json.Unmarshal(sc.Bytes(), &r)
				seq, _ := m["seq"].(float64)
				n.mu.Lock()
				ch := n.waiting[int64(seq)]
				delete(n.waiting, int64(seq))
				n.mu.Unlock()
				if ch != nil {
					ch <- r
				}
			default:
				n.mu.Lock()
				n.obs = append(n.obs, m)
				n.mu.Unlock()
				select {
				case n.obsCh <- struct{}{}:
				default:
				}
			}
		}
		_ = n.cmd.Wait()
	}()
	t.Cleanup(n.stop)
	select {
	case port := <-ready:
		n.url = fmt.Sprintf("http://127.0.0.1:%d", port)
	case <-n.done:
		t.Fatalf("node exited before listening: %s", n.stderrText())
	case <-time.After(waitLimit):
		t.Fatalf("node did not start: %s", n.stderrText())
	}
	return n
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func (n *nodeNode) stderrText() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.stderr.String()
}

func (n *nodeNode) stop() {
	_ = n.stdin.Close()
	select {
	case <-n.done:
	case <-time.After(5 * time.Second):
		_ = n.cmd.Process.Kill()
		<-n.done
	}
	if s := n.stderrText(); s != "" {
		n.t.Logf("node stderr:\n%s", s)
	}
}

// do runs a command on the Node node and returns its result.
func (n *nodeNode) do(cmd map[string]any) (json.RawMessage, error) {
	seq := n.seq.Add(1)
	cmd["seq"] = seq
	ch := make(chan nodeResult, 1)
	n.mu.Lock()
	n.waiting[seq] = ch
	n.mu.Unlock()
	b, _ := json.Marshal(cmd)
	if _, err := n.stdin.Write(append(b, '\n')); err != nil {
		return nil, err
	}
	select {
	case r := <-ch:
		if r.Error != "" {
			return r.Result, fmt.Errorf("node: %s", r.Error)
		}
		return r.Result, nil
	case <-time.After(2 * waitLimit):
		return nil, fmt.Errorf("node: %v: no answer", cmd["op"])
	}
}

func (n *nodeNode) must(cmd map[string]any) json.RawMessage {
	n.t.Helper()
	r, err := n.do(cmd)
	if err != nil {
		n.t.Fatalf("node %v: %v", cmd["op"], err)
	}
	return r
}

// waitObs waits for an observation matching fn.
func (n *nodeNode) waitObs(t *testing.T, what string, fn func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.After(waitLimit)
	for {
		n.mu.Lock()
		obs := slices.Clone(n.obs)
		n.mu.Unlock()
		for _, o := range obs {
			if fn(o) {
				return o
			}
		}
		select {
		case <-n.obsCh:
		case <-deadline:
			t.Fatalf("node never reported %s; saw %v", what, obs)
		}
	}
}

// bin is a binary value in node.js's JSON form.
func bin(b []byte) map[string]any {
	return map[string]any{"$bin": base64.StdEncoding.EncodeToString(b)}
}

// decodeBin reads a node.js JSON binary value.
func decodeBin(v any) ([]byte, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, false
	}
	s, ok := m["$bin"].(string)
	if !ok {
		return nil, false
	}
	b, err := base64.StdEncoding.DecodeString(s)
	return b, err == nil
}

// sessionKeys lists the recovery sessions stored under opts.
func sessionKeys(t *testing.T, c goredis.UniversalClient, opts *redis.Options) []string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	keys, err := c.Keys(ctx, opts.SessionKeyPrefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// waitSession waits until a session is stored under opts.
func waitSession(t *testing.T, c goredis.UniversalClient, opts *redis.Options) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for len(sessionKeys(t, c, opts)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no session was persisted")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// storedSession reads a session saved in Redis.
func storedSession(t *testing.T, c goredis.UniversalClient, key string) *switchboard.SessionState {
	t.Helper()
	raw, err := c.Get(context.Background(), key).Result()
	if err != nil {
		t.Fatalf("GET %s: %v", key, err)
	}
	st, err := redis.DecodeSession(raw)
	if err != nil {
		t.Fatalf("session %s: %v", key, err)
	}
	return st
}

func hasPrefix(s, p string) bool { return strings.HasPrefix(s, p) }
