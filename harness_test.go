package switchboard_test

// The interop harness: a scenario is written once against testClient and
// runs against every client kind and transport (forEachClient). Clients
// report what a user of them sees as a stream of observations; scenarios
// read that stream with a bounded wait (waitBound), which fails the test
// when something never arrives. The bound is a deadlock guard, not a speed
// assertion.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/switchboard-io/switchboard"
	"github.com/switchboard-io/switchboard/client"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// waitBound is how long the harness waits for something that should happen.
const waitBound = 10 * time.Second

// observation is one thing a client saw, in the driver's JSON form (see
// testdata/interop/driver.js). Binary values anywhere in Data and Args are
// []byte; numbers are float64.
type observation struct {
	Kind      string `json:"kind"` // connect, connect_error, disconnect, event, ack, upgrade, error
	ID        string `json:"id"`   // connect: the socket id
	Recovered bool   `json:"recovered"`
	Transport string `json:"transport"` // connect, upgrade
	Message   string `json:"message"`   // connect_error, error
	Data      any    `json:"data"`      // connect_error
	Reason    string `json:"reason"`    // disconnect
	Event     string `json:"event"`     // event
	Args      []any  `json:"args"`      // event, ack
	Ack       bool   `json:"ack"`       // event: the server asked for an acknowledgement
	Seq       int    `json:"seq"`       // ack
	Error     string `json:"error"`     // ack: the acknowledgement failed
}

func (o observation) String() string {
	b, _ := json.Marshal(encodeBinary(o))
	return string(b)
}

// testClient is one Socket.IO client connected (or connecting) to one
// namespace. Methods are called from the test goroutine.
type testClient interface {
	// Emit sends an event.
	Emit(event string, args ...any)
	// EmitVolatile sends a volatile event (dropped when not sendable).
	EmitVolatile(event string, args ...any)
	// EmitWithAck sends an event asking for an acknowledgement and waits
	// for it; timeout 0 means the client applies no timeout of its own.
	// A client-side timeout returns an error whose message is "operation
	// has timed out", as with socket.io-client.
	EmitWithAck(timeout time.Duration, event string, args ...any) ([]any, error)
	// Disconnect disconnects the socket (client namespace disconnect).
	Disconnect()
	// CloseTransport drops the underlying connection; the client reconnects.
	CloseTransport()
	// ConnectAgain reconnects a disconnected socket.
	ConnectAgain()

	// Expect returns the first unread observation of that kind.
	Expect(t *testing.T, kind string) observation
	// ExpectEvent returns the arguments of the first unread event of that
	// name.
	ExpectEvent(t *testing.T, event string) []any
	// NextEvent returns the first unread event, whatever its name.
	NextEvent(t *testing.T) observation
}

// dialOptions configures a test client. The transport comes from the
// dialer.
type dialOptions struct {
	Namespace string            // default "/"
	Auth      any               // CONNECT payload
	Query     map[string]string // handshake query
	Header    map[string]string // handshake headers
	// Replies answers the server's acknowledgement requests, per event:
	// []any to answer with those arguments, or "echo" to answer with the
	// arguments received. Requests for other events are never answered.
	Replies map[string]any
	// AckTimeout is the client's default acknowledgement timeout.
	AckTimeout time.Duration
	// NoReconnection stops the client from reconnecting by itself.
	NoReconnection bool
}

// dialer makes clients of one kind ("node" or "go") over one transport mode
// ("polling", "websocket", or "upgrade": polling then websocket).
type dialer struct {
	kind, mode string
	dial       func(t *testing.T, url string, mode string, opts dialOptions) testClient
}

// Dial starts a client; it connects in the background.
func (d dialer) Dial(t *testing.T, ts *testServer, opts dialOptions) testClient {
	t.Helper()
	nsp := opts.Namespace
	if nsp == "" {
		nsp = "/"
	}
	return d.dial(t, ts.URL+nsp, d.mode, opts)
}

// Connect starts a client and waits for it to connect, returning the
// connect observation. In upgrade mode it also waits for the upgrade to
// websocket, so that scenarios run on the final transport.
func (d dialer) Connect(t *testing.T, ts *testServer, opts dialOptions) (testClient, observation) {
	t.Helper()
	c := d.Dial(t, ts, opts)
	conn := c.Expect(t, "connect")
	if conn.ID == "" {
		t.Fatalf("connect observation without id: %v", conn)
	}
	if d.mode == "upgrade" {
		if up := c.Expect(t, "upgrade"); up.Transport != "websocket" {
			t.Fatalf("upgraded to %q, want websocket", up.Transport)
		}
	}
	return c, conn
}

var clientModes = []string{"polling", "websocket", "upgrade"}

// forEachClient runs a scenario as subtests, once per client kind and
// transport mode: node/polling, node/websocket, node/upgrade, go/polling,
// go/websocket, go/upgrade.
func forEachClient(t *testing.T, scenario func(t *testing.T, d dialer)) {
	t.Helper()
	kinds := []struct {
		name string
		dial func(t *testing.T, url string, mode string, opts dialOptions) testClient
	}{
		{"node", dialNode},
		{"go", dialGo},
	}
	for _, k := range kinds {
		for _, mode := range clientModes {
			d := dialer{kind: k.name, mode: mode, dial: k.dial}
			t.Run(k.name+"/"+mode, func(t *testing.T) {
				t.Parallel()
				scenario(t, d)
			})
		}
	}
}

// testServer is a switchboard.Server behind an httptest server on
// 127.0.0.1, closed at the end of the test.
type testServer struct {
	*switchboard.Server
	URL string // http://127.0.0.1:port, without a trailing slash
}

// The server logs into a buffer shown when the test fails.
func newTestServer(t *testing.T, opts *switchboard.Options) *testServer {
	t.Helper()
	var o switchboard.Options
	if opts != nil {
		o = *opts
	}
	var (
		logMu  sync.Mutex
		logBuf bytes.Buffer
	)
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(lockedWriter{&logMu, &logBuf}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if o.Engine.ReleaseIdleReaderAfter == 0 {
		// Idle readers park after 10 ms, not 500 ms: every scenario also runs
		// over connections that wait without a reader goroutine.
		o.Engine.ReleaseIdleReaderAfter = 10 * time.Millisecond
	}
	srv := switchboard.NewServer(&o)
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitBound)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			t.Errorf("server Close: %v", err)
		}
		hs.Close()
		logMu.Lock()
		defer logMu.Unlock()
		if t.Failed() && logBuf.Len() > 0 {
			t.Logf("server log:\n%s", logBuf.String())
		}
	})
	return &testServer{Server: srv, URL: hs.URL}
}

// sockets returns a channel that receives every socket connecting to ns.
// Register it before clients dial.
func sockets(ns *switchboard.Namespace) <-chan *switchboard.Socket {
	ch := make(chan *switchboard.Socket, 64)
	ns.OnConnection(func(s *switchboard.Socket) { ch <- s })
	return ch
}

// recv receives from ch, failing the test if nothing comes within waitBound.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitBound):
		t.Fatalf("timed out after %v waiting for %s", waitBound, what)
		var zero T
		return zero
	}
}

// observations is a client's stream of observations: pushed by a reader
// goroutine, taken by the test in any order of kinds but in arrival order
// within what a predicate selects.
type observations struct {
	mu     sync.Mutex
	buf    []observation
	ended  bool   // no more observations will come
	reason string // why the stream ended
	wake   chan struct{}
}

func newObservations() *observations {
	return &observations{wake: make(chan struct{}, 1)}
}

func (o *observations) push(ob observation) {
	o.mu.Lock()
	o.buf = append(o.buf, ob)
	o.mu.Unlock()
	o.signal()
}

func (o *observations) end(reason string) {
	o.mu.Lock()
	if !o.ended {
		o.ended, o.reason = true, reason
	}
	o.mu.Unlock()
	o.signal()
}

func (o *observations) signal() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// take removes and returns the first observation that match selects,
// waiting up to bound. An "error" observation (the driver failed to run a
// command) fails the take at once.
func (o *observations) take(bound time.Duration, what string, match func(observation) bool) (observation, error) {
	deadline := time.NewTimer(bound)
	defer deadline.Stop()
	for {
		o.mu.Lock()
		for i, ob := range o.buf {
			if ob.Kind == "error" {
				o.mu.Unlock()
				return observation{}, fmt.Errorf("client reported an error while waiting for %s: %s", what, ob.Message)
			}
			if match(ob) {
				o.buf = append(o.buf[:i:i], o.buf[i+1:]...)
				o.mu.Unlock()
				return ob, nil
			}
		}
		ended, reason, pending := o.ended, o.reason, o.pendingLocked()
		o.mu.Unlock()
		if ended {
			return observation{}, fmt.Errorf("client stream ended (%s) before %s; unread: %s", reason, what, pending)
		}
		select {
		case <-o.wake:
		case <-deadline.C:
			o.mu.Lock()
			pending = o.pendingLocked()
			o.mu.Unlock()
			return observation{}, fmt.Errorf("timed out after %v waiting for %s; unread: %s", bound, what, pending)
		}
	}
}

func (o *observations) pendingLocked() string {
	if len(o.buf) == 0 {
		return "none"
	}
	parts := make([]string, 0, len(o.buf))
	for i, ob := range o.buf {
		if i == 10 {
			parts = append(parts, fmt.Sprintf("... (%d more)", len(o.buf)-10))
			break
		}
		parts = append(parts, ob.String())
	}
	return strings.Join(parts, " ")
}

// streamClient implements the reading half of testClient over observations.
type streamClient struct {
	name string
	obs  *observations
}

func (c *streamClient) Expect(t *testing.T, kind string) observation {
	t.Helper()
	ob, err := c.obs.take(waitBound, fmt.Sprintf("%q", kind), func(o observation) bool { return o.Kind == kind })
	if err != nil {
		t.Fatalf("%s: %v", c.name, err)
	}
	return ob
}

func (c *streamClient) ExpectEvent(t *testing.T, event string) []any {
	t.Helper()
	ob, err := c.obs.take(waitBound, fmt.Sprintf("event %q", event), func(o observation) bool {
		return o.Kind == "event" && o.Event == event
	})
	if err != nil {
		t.Fatalf("%s: %v", c.name, err)
	}
	return ob.Args
}

func (c *streamClient) NextEvent(t *testing.T) observation {
	t.Helper()
	ob, err := c.obs.take(waitBound, "an event", func(o observation) bool { return o.Kind == "event" })
	if err != nil {
		t.Fatalf("%s: %v", c.name, err)
	}
	return ob
}

// waitAck takes the ack observation with that sequence number.
func (c *streamClient) waitAck(bound time.Duration, seq int) ([]any, error) {
	ob, err := c.obs.take(bound, fmt.Sprintf("ack #%d", seq), func(o observation) bool {
		return o.Kind == "ack" && o.Seq == seq
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.name, err)
	}
	if ob.Error != "" {
		return ob.Args, errors.New(ob.Error)
	}
	return ob.Args, nil
}

// ---- binary normalisation ----

// encodeBinary returns v with every []byte replaced by {"$bin": base64},
// recursively through []any and map[string]any.
func encodeBinary(v any) any {
	switch x := v.(type) {
	case []byte:
		return map[string]any{"$bin": base64.StdEncoding.EncodeToString(x)}
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = encodeBinary(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = encodeBinary(e)
		}
		return out
	case observation:
		x.Data = encodeBinary(x.Data)
		x.Args, _ = encodeBinary(x.Args).([]any)
		return x
	}
	return v
}

// decodeBinary is the inverse of encodeBinary.
func decodeBinary(v any) any {
	switch x := v.(type) {
	case []any:
		for i, e := range x {
			x[i] = decodeBinary(e)
		}
		return x
	case map[string]any:
		if s, ok := x["$bin"].(string); ok && len(x) == 1 {
			b, err := base64.StdEncoding.DecodeString(s)
			if err == nil {
				return b
			}
		}
		for k, e := range x {
			x[k] = decodeBinary(e)
		}
		return x
	}
	return v
}

// ---- node: the official socket.io-client through testdata/interop/driver.js ----

var (
	nodeOnce   sync.Once
	nodeReason string // why node cannot run; "" when it can
)

func nodeAvailable() string {
	nodeOnce.Do(func() {
		if _, err := exec.LookPath("node"); err != nil {
			nodeReason = "node is not installed (" + err.Error() + ")"
			return
		}
		if _, err := os.Stat(filepath.Join("node_modules", "socket.io-client", "package.json")); err != nil {
			nodeReason = "socket.io-client is not installed in node_modules (run npm ci): " + err.Error()
		}
	})
	return nodeReason
}

// requireNode skips the test when node or socket.io-client is missing, or
// fails it when SWITCHBOARD_REQUIRE_ALL=1.
func requireNode(t *testing.T) {
	t.Helper()
	reason := nodeAvailable()
	if reason == "" {
		return
	}
	if os.Getenv("SWITCHBOARD_REQUIRE_ALL") == "1" {
		t.Fatalf("SWITCHBOARD_REQUIRE_ALL=1 but %s", reason)
	}
	t.Skipf("SKIPPING interop with the official socket.io-client: %s", reason)
}

type nodeClient struct {
	streamClient
	t     *testing.T
	cmd   *exec.Cmd
	stdin io.WriteCloser
	seq   int
	mu    sync.Mutex // guards stderr
	errb  bytes.Buffer
	done  chan struct{} // closed when the reader and the process are done
}

func dialNode(t *testing.T, url, mode string, opts dialOptions) testClient {
	t.Helper()
	requireNode(t)
	c := &nodeClient{
		streamClient: streamClient{name: "node client", obs: newObservations()},
		t:            t,
		done:         make(chan struct{}),
	}
	c.cmd = exec.Command("node", filepath.Join("testdata", "interop", "driver.js"))
	c.cmd.Stderr = lockedWriter{&c.mu, &c.errb}
	stdin, err := c.cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("starting node driver: %v", err)
	}
	c.stdin = stdin
	go c.read(stdout)
	t.Cleanup(c.close)

	ioOpts := map[string]any{"forceNew": true, "reconnectionDelay": 50, "reconnectionDelayMax": 200}
	switch mode {
	case "polling":
		ioOpts["transports"] = []string{"polling"}
	case "websocket":
		ioOpts["transports"] = []string{"websocket"}
	case "upgrade":
		ioOpts["transports"] = []string{"polling", "websocket"}
		ioOpts["upgrade"] = true
	default:
		t.Fatalf("unknown transport mode %q", mode)
	}
	if opts.Auth != nil {
		ioOpts["auth"] = encodeBinary(opts.Auth)
	}
	if opts.Query != nil {
		ioOpts["query"] = opts.Query
	}
	if opts.Header != nil {
		ioOpts["extraHeaders"] = opts.Header
	}
	if opts.AckTimeout > 0 {
		ioOpts["ackTimeout"] = opts.AckTimeout.Milliseconds()
	}
	if opts.NoReconnection {
		ioOpts["reconnection"] = false
	}
	replies := map[string]any{}
	for ev, r := range opts.Replies {
		replies[ev] = encodeBinary(r)
	}
	c.send(map[string]any{"op": "connect", "url": url, "opts": ioOpts, "replies": replies})
	return c
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

func (c *nodeClient) read(stdout io.Reader) {
	defer close(c.done)
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for sc.Scan() {
		var ob observation
		if err := json.Unmarshal(sc.Bytes(), &ob); err != nil {
			c.obs.push(observation{Kind: "error", Message: fmt.Sprintf("bad driver output %q: %v", sc.Text(), err)})
			continue
		}
		ob.Data = decodeBinary(ob.Data)
		for i, a := range ob.Args {
			ob.Args[i] = decodeBinary(a)
		}
		c.obs.push(ob)
	}
	err := c.cmd.Wait()
	c.obs.end(fmt.Sprintf("node driver exited: %v", err))
}

func (c *nodeClient) send(cmd map[string]any) {
	c.t.Helper()
	b, err := json.Marshal(cmd)
	if err != nil {
		c.t.Fatalf("encoding driver command: %v", err)
	}
	if _, err := c.stdin.Write(append(b, '\n')); err != nil {
		c.t.Fatalf("writing to node driver: %v", err)
	}
}

// close ends the driver: stdin closes, the driver disconnects and exits.
func (c *nodeClient) close() {
	_ = c.stdin.Close()
	select {
	case <-c.done:
	case <-time.After(waitBound):
		c.t.Errorf("node driver did not exit within %v; killing it", waitBound)
		_ = c.cmd.Process.Kill()
		<-c.done
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.t.Failed() && c.errb.Len() > 0 {
		c.t.Logf("node driver stderr:\n%s", c.errb.String())
	}
}

func (c *nodeClient) Emit(event string, args ...any) {
	c.t.Helper()
	c.send(map[string]any{"op": "emit", "event": event, "args": encodeBinary(nonNil(args))})
}

func (c *nodeClient) EmitVolatile(event string, args ...any) {
	c.t.Helper()
	c.send(map[string]any{"op": "emit", "event": event, "args": encodeBinary(nonNil(args)), "volatile": true})
}

func (c *nodeClient) EmitWithAck(timeout time.Duration, event string, args ...any) ([]any, error) {
	c.t.Helper()
	c.seq++
	cmd := map[string]any{"op": "emit", "event": event, "args": encodeBinary(nonNil(args)), "ack": true, "seq": c.seq}
	if timeout > 0 {
		cmd["timeout"] = timeout.Milliseconds()
	}
	c.send(cmd)
	return c.waitAck(timeout+waitBound, c.seq)
}

func (c *nodeClient) Disconnect()     { c.send(map[string]any{"op": "disconnect"}) }
func (c *nodeClient) CloseTransport() { c.send(map[string]any{"op": "closeTransport"}) }
func (c *nodeClient) ConnectAgain()   { c.send(map[string]any{"op": "connectAgain"}) }

func nonNil(args []any) []any {
	if args == nil {
		return []any{}
	}
	return args
}

// ---- go: package client ----

type goClient struct {
	streamClient
	t    *testing.T
	m    *client.Manager
	s    *client.Socket
	stop chan struct{} // ends the upgrade watcher
	wg   sync.WaitGroup
}

func dialGo(t *testing.T, rawURL, mode string, opts dialOptions) testClient {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	copts := &client.Options{
		ReconnectionDelay:    50 * time.Millisecond,
		ReconnectionDelayMax: 200 * time.Millisecond,
		RandomizationFactor:  -1,
		Auth:                 opts.Auth,
		AckTimeout:           opts.AckTimeout,
		DisableReconnection:  opts.NoReconnection,
	}
	switch mode {
	case "polling":
		copts.Transports = []string{"polling"}
	case "websocket":
		copts.Transports = []string{"websocket"}
	case "upgrade":
		copts.Transports = []string{"polling", "websocket"}
	default:
		t.Fatalf("unknown transport mode %q", mode)
	}
	if opts.Query != nil {
		copts.Query = url.Values{}
		for k, v := range opts.Query {
			copts.Query.Set(k, v)
		}
	}
	if opts.Header != nil {
		copts.Header = http.Header{}
		for k, v := range opts.Header {
			copts.Header.Set(k, v)
		}
	}
	c := &goClient{
		streamClient: streamClient{name: "go client", obs: newObservations()},
		t:            t,
		m:            client.NewManager(rawURL, copts),
		stop:         make(chan struct{}),
	}
	c.s = c.m.Socket(u.Path)
	s := c.s
	s.On("connect", func() {
		ob := observation{Kind: "connect", ID: s.ID(), Recovered: s.Recovered()}
		if e := c.m.Engine(); e != nil {
			ob.Transport = e.Transport()
		}
		c.obs.push(ob)
	})
	s.On("connect_error", func(err error) {
		ob := observation{Kind: "connect_error", Message: err.Error()}
		var ce *client.ConnectError
		if errors.As(err, &ce) && len(ce.Data) > 0 {
			if jerr := json.Unmarshal(ce.Data, &ob.Data); jerr != nil {
				ob.Data = "undecodable data: " + string(ce.Data)
			}
		}
		c.obs.push(ob)
	})
	s.On("disconnect", func(reason string) {
		c.obs.push(observation{Kind: "disconnect", Reason: reason})
	})
	s.OnAny(func(event string, args client.Args) {
		vals, err := args.Values()
		if err != nil {
			c.obs.push(observation{Kind: "error", Message: fmt.Sprintf("decoding event %q %v: %v", event, args, err)})
			return
		}
		c.obs.push(observation{Kind: "event", Event: event, Args: vals})
	})
	for event, reply := range opts.Replies {
		if reply == "echo" {
			s.On(event, func(a switchboard.Args, ack switchboard.AckFunc) { ack(a.Echo()...) })
			continue
		}
		answer, ok := reply.([]any)
		if !ok {
			t.Fatalf("reply for %q must be []any or \"echo\", got %T", event, reply)
		}
		s.On(event, func(_ switchboard.Args, ack switchboard.AckFunc) { ack(answer...) })
	}
	if mode == "upgrade" {
		c.wg.Add(1)
		go c.watchUpgrade()
	}
	t.Cleanup(c.close)
	s.Connect()
	return c
}

// watchUpgrade reports the switch to websocket as an "upgrade" observation
// (package client has no upgrade event): it watches each session's
// transport.
func (c *goClient) watchUpgrade() {
	defer c.wg.Done()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	var seen *client.Engine
	for {
		select {
		case <-c.stop:
			return
		case <-tick.C:
		}
		if e := c.m.Engine(); e != nil && e != seen && e.Transport() == "websocket" {
			seen = e
			c.obs.push(observation{Kind: "upgrade", Transport: "websocket"})
		}
	}
}

func (c *goClient) close() {
	close(c.stop)
	c.wg.Wait()
	_ = c.m.Close()
}

func (c *goClient) Emit(event string, args ...any) {
	c.t.Helper()
	if err := c.s.Emit(event, args...); err != nil {
		c.t.Fatalf("go client Emit(%q): %v", event, err)
	}
}

func (c *goClient) EmitVolatile(event string, args ...any) {
	c.t.Helper()
	if err := c.s.Volatile().Emit(event, args...); err != nil {
		c.t.Fatalf("go client Volatile().Emit(%q): %v", event, err)
	}
}

func (c *goClient) EmitWithAck(timeout time.Duration, event string, args ...any) ([]any, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout+waitBound)
	defer cancel()
	var (
		a   client.Args
		err error
	)
	if timeout > 0 {
		a, err = c.s.Timeout(timeout).EmitWithAck(ctx, event, args...)
	} else {
		a, err = c.s.EmitWithAck(ctx, event, args...)
	}
	if err != nil {
		return nil, err
	}
	return a.Values()
}

func (c *goClient) Disconnect() { c.s.Disconnect() }

func (c *goClient) CloseTransport() {
	if e := c.m.Engine(); e != nil {
		e.CloseTransport()
	}
}

func (c *goClient) ConnectAgain() { c.s.Connect() }
