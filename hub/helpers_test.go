package hub

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/switchboard-io/switchboard/client"
	"github.com/switchboard-io/switchboard/memory"
)

var testSecret = []byte("test-secret-test-secret-test-secret!")

// testHub runs a hub on an httptest server.
type testHub struct {
	*Hub
	url string
}

func startHub(t *testing.T, cfg Config) *testHub {
	t.Helper()
	if cfg.Server.Store == nil {
		cfg.Server.Store = memory.NewStore(nil)
	}
	h, err := New(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(h)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.Close(ctx); err != nil {
			t.Errorf("hub close: %v", err)
		}
		ts.Close()
		cfg.Server.Store.Close()
	})
	return &testHub{Hub: h, url: ts.URL}
}

func token(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// dial connects a Go client with the auth payload; it is closed at cleanup.
func dial(t *testing.T, url string, auth any) *client.Socket {
	t.Helper()
	s, err := dialErr(t, url, auth)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	return s
}

func dialErr(t *testing.T, url string, auth any) (*client.Socket, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := client.Dial(ctx, url, &client.Options{Auth: auth, Transports: []string{"websocket"}, AckTimeout: 20 * time.Second})
	if s != nil {
		t.Cleanup(func() { s.Manager().Close() })
	}
	return s, err
}

// call emits a hub request and decodes its answer.
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

func mustOK(t *testing.T, a map[string]any) map[string]any {
	t.Helper()
	if a["ok"] != true {
		t.Fatalf("answer %v, want ok", a)
	}
	return a
}

func mustFail(t *testing.T, a map[string]any, code string) {
	t.Helper()
	if a["ok"] != false || a["error"] != code {
		t.Fatalf("answer %v, want error %q", a, code)
	}
	if m, _ := a["message"].(string); m == "" {
		t.Fatalf("answer %v has no message", a)
	}
}

// event is one event a client received.
type event struct {
	name string
	args client.Args
}

func (e event) arg(i int) map[string]any {
	var m map[string]any
	_ = e.args.Decode(i, &m)
	return m
}

// recorder keeps every event a client receives, in order.
type recorder struct {
	mu      sync.Mutex
	events  []event
	changed chan struct{}
}

func record(s *client.Socket) *recorder {
	r := &recorder{changed: make(chan struct{}, 1)}
	s.OnAny(func(name string, args client.Args) {
		r.mu.Lock()
		r.events = append(r.events, event{name, args})
		r.mu.Unlock()
		select {
		case r.changed <- struct{}{}:
		default:
		}
	})
	return r
}

// waitFor waits for the first event from index `from` matching pred and
// returns it with its index. The 20 s bound only turns a hang into a
// failure.
func (r *recorder) waitFor(t *testing.T, from int, what string, pred func(event) bool) (event, int) {
	t.Helper()
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		for i := from; i < len(r.events); i++ {
			if pred(r.events[i]) {
				e := r.events[i]
				r.mu.Unlock()
				return e, i
			}
		}
		r.mu.Unlock()
		select {
		case <-r.changed:
		case <-deadline.C:
			t.Fatalf("never received %s; got %v", what, r.all())
		}
	}
}

func (r *recorder) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		out = append(out, e.name+e.args.String())
	}
	return out
}

// named returns the events named name received before index end.
func (r *recorder) named(name string, end int) []event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []event
	for _, e := range r.events[:min(end, len(r.events))] {
		if e.name == name {
			out = append(out, e)
		}
	}
	return out
}

func isEvent(name string) func(event) bool { return func(e event) bool { return e.name == name } }

func withData(name, key string, value any) func(event) bool {
	return func(e event) bool { return e.name == name && e.arg(0)[key] == value }
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
