package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/switchboard-io/switchboard/client"
)

func jwtArgs(extra ...string) []string {
	return append([]string{"--jwt-secret", testSecret, "--api-key", testAPIKey, "--durable-rooms", "durable-*,orders/*"}, extra...)
}

func TestJWT(t *testing.T) {
	h := startHub(t, t.TempDir(), jwtArgs()...)
	now := time.Now()
	refused := map[string]any{
		"missing":       nil,
		"expired":       map[string]any{"token": token(t, jwt.MapClaims{"sub": "u", "exp": now.Add(-2 * time.Minute).Unix()})},
		"bad signature": map[string]any{"token": mustSign(t, "another-secret-another-secret-!!!", jwt.MapClaims{"sub": "u"})},
		"no sub":        map[string]any{"token": token(t, jwt.MapClaims{"rooms": []string{"*"}})},
		"not yet valid": map[string]any{"token": token(t, jwt.MapClaims{"sub": "u", "nbf": now.Add(time.Hour).Unix()})},
	}
	for name, auth := range refused {
		_, err := dialErr(t, h.url, &client.Options{Auth: auth, DisableReconnection: true})
		ce, ok := err.(*client.ConnectError)
		if !ok || ce.Message != "unauthorized" {
			t.Errorf("%s: %v, want connect_error {message:\"unauthorized\"}", name, err)
		}
	}
	// Allowed: a valid token in the auth payload, or in the handshake's
	// Authorization header.
	s := dial(t, h.url, userAuth(t, "alice", []string{"chat-*"}, []string{"chat-*"}))
	expectOK(t, "join allowed", call(t, s, "join", "chat-1"))
	if a := call(t, s, "join", "admin"); a["ok"] != false || a["error"] != "forbidden" {
		t.Errorf("join forbidden: %v", a)
	}
	if a := call(t, s, "publish", map[string]any{"room": "durable-x", "event": "m"}); a["error"] != "forbidden" {
		t.Errorf("publish forbidden: %v", a)
	}
	hdr := http.Header{"Authorization": {"Bearer " + token(t, jwt.MapClaims{"sub": "bob", "rooms": []string{"chat-1"}})}}
	viaHeader, err := dialErr(t, h.url, &client.Options{Header: hdr, Transports: []string{"polling"}})
	if err != nil {
		t.Fatalf("token in the Authorization header: %v", err)
	}
	expectOK(t, "join with header token", call(t, viaHeader, "join", "chat-1"))
}

func mustSign(t *testing.T, secret string, claims jwt.MapClaims) string {
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestHTTPAPI(t *testing.T) {
	h := startHub(t, t.TempDir(), jwtArgs("--body-limit", "2000")...)
	u := h.url
	sub := dial(t, u, userAuth(t, "sub", []string{"*", "*/*"}, nil))
	expectOK(t, "join", call(t, sub, "join", "live"))
	live := collect(sub, "news", false)

	// Authentication.
	for _, key := range []string{"", "wrong"} {
		code, hdr, body := request(t, "POST", u+"/api/publish", key, map[string]any{"room": "live", "event": "news"})
		if code != 401 || jsonBody(t, body)["error"] != "unauthorized" || hdr.Get("WWW-Authenticate") == "" {
			t.Errorf("key %q: %d %s", key, code, body)
		}
	}
	for _, path := range []string{"/api/rooms", "/api/rooms/live"} {
		if code, _, _ := request(t, "GET", u+path, "", nil); code != 401 {
			t.Errorf("GET %s without key: %d", path, code)
		}
	}
	// Publish.
	code, _, body := request(t, "POST", u+"/api/publish", testAPIKey, map[string]any{"room": "live", "event": "news", "data": map[string]any{"n": 1}})
	if code != 200 || string(body) != "{\"ok\":true}\n" {
		t.Fatalf("publish: %d %s", code, body)
	}
	got := live.waitUntil(t, "the published event", func(a []client.Args) bool { return len(a) == 1 })
	if m := metaOf(got[0]); m["room"] != "live" {
		t.Errorf("meta %v", m)
	}
	code, _, body = request(t, "POST", u+"/api/publish", testAPIKey, map[string]any{"room": "durable-a", "event": "e", "data": 1})
	if code != 200 || jsonBody(t, body)["offset"] != float64(1) {
		t.Fatalf("durable publish: %d %s", code, body)
	}
	// Bad input.
	bad := []struct {
		body   any
		status int
		code   string
	}{
		{`{"room":`, 400, "bad_request"},
		{`not json`, 400, "bad_request"},
		{``, 400, "bad_request"},
		{`[1,2]`, 400, "bad_request"},
		{`{"room":"a","event":"e"} {}`, 400, "bad_request"},
		{map[string]any{"event": "e"}, 400, "bad_request"},
		{map[string]any{"room": "a"}, 400, "invalid_event"},
		{map[string]any{"room": "a", "event": "connect"}, 400, "invalid_event"},
		{map[string]any{"room": "a", "event": "switchboard:join"}, 400, "invalid_event"},
		{map[string]any{"room": "", "event": "e"}, 400, "bad_request"},
		{map[string]any{"room": 5, "event": "e"}, 400, "bad_request"},
		{map[string]any{"room": "a", "event": "e", "id": strings.Repeat("x", 129)}, 400, "bad_request"},
		{map[string]any{"room": "a", "event": "e", "data": strings.Repeat("x", 3000)}, 413, "too_large"},
	}
	for _, c := range bad {
		code, hdr, body := request(t, "POST", u+"/api/publish", testAPIKey, c.body)
		if code != c.status || hdr.Get("Content-Type") != "application/json" {
			t.Errorf("%v: %d %s, want %d", c.body, code, body, c.status)
			continue
		}
		if m := jsonBody(t, body); m["error"] != c.code || m["message"] == "" || m["ok"] != false {
			t.Errorf("%v: %s, want error %q with a message", c.body, body, c.code)
		}
	}
	if code, hdr, _ := request(t, "GET", u+"/api/publish", testAPIKey, nil); code != 405 || hdr.Get("Allow") != "POST" {
		t.Errorf("GET /api/publish: %d", code)
	}
	if code, _, body := request(t, "GET", u+"/api/nothing", testAPIKey, nil); code != 404 || jsonBody(t, body)["error"] != "not_found" {
		t.Errorf("unknown endpoint: %d %s", code, body)
	}

	// Rooms.
	code, _, body = request(t, "GET", u+"/api/rooms", testAPIKey, nil)
	var rooms struct {
		Rooms []map[string]any `json:"rooms"`
	}
	if code != 200 || json.Unmarshal(body, &rooms) != nil {
		t.Fatalf("rooms: %d %s", code, body)
	}
	want := `[{"durable":true,"lastOffset":1,"members":0,"name":"durable-a"},{"durable":false,"lastOffset":0,"members":1,"name":"live"}]`
	if g, _ := json.Marshal(rooms.Rooms); string(g) != want {
		t.Errorf("rooms %s\nwant %s", g, want)
	}
	code, _, body = request(t, "GET", u+"/api/rooms/live", testAPIKey, nil)
	if m := jsonBody(t, body); code != 200 || m["members"] != float64(1) || m["durable"] != false || m["name"] != "live" {
		t.Errorf("room live: %d %s", code, body)
	}
	code, _, body = request(t, "GET", u+"/api/rooms/durable-a", testAPIKey, nil)
	if m := jsonBody(t, body); code != 200 || m["lastOffset"] != float64(1) || m["durable"] != true {
		t.Errorf("room durable-a: %d %s", code, body)
	}
	if code, _, body := request(t, "GET", u+"/api/rooms/nobody", testAPIKey, nil); code != 404 || jsonBody(t, body)["error"] != "not_found" {
		t.Errorf("empty room: %d %s", code, body)
	}
	// Room names with slashes and escapes.
	expectOK(t, "join orders/1", call(t, sub, "join", "orders/1"))
	if code, _, body := request(t, "GET", u+"/api/rooms/orders%2F1", testAPIKey, nil); code != 200 || jsonBody(t, body)["name"] != "orders/1" {
		t.Errorf("orders/1: %d %s", code, body)
	}

	// Disconnect.
	for _, b := range []any{`{}`, map[string]any{"sid": "a", "identity": "b"}, `{"sid":`} {
		if code, _, _ := request(t, "POST", u+"/api/disconnect", testAPIKey, b); code != 400 {
			t.Errorf("disconnect %v: %d", b, code)
		}
	}
	if code, _, _ := request(t, "POST", u+"/api/disconnect", testAPIKey, map[string]any{"sid": "nope"}); code != 404 {
		t.Errorf("disconnect unknown sid: %d", code)
	}
	other := dial(t, u, userAuth(t, "other", nil, nil))
	gone := make(chan string, 1)
	other.On("disconnect", func(reason string) { gone <- reason })
	code, _, body = request(t, "POST", u+"/api/disconnect", testAPIKey, map[string]any{"sid": other.ID()})
	if code != 200 || jsonBody(t, body)["disconnected"] != float64(1) {
		t.Fatalf("disconnect by sid: %d %s", code, body)
	}
	if r := <-gone; r != "io server disconnect" {
		t.Errorf("disconnect reason %q", r)
	}
	gone2 := make(chan string, 1)
	sub.On("disconnect", func(reason string) { gone2 <- reason })
	code, _, body = request(t, "POST", u+"/api/disconnect", testAPIKey, map[string]any{"identity": "sub"})
	if code != 200 || jsonBody(t, body)["disconnected"] != float64(1) {
		t.Fatalf("disconnect by identity: %d %s", code, body)
	}
	<-gone2

	// Health, readiness, the JS client and the demo page need no key.
	for _, path := range []string{"/healthz", "/readyz"} {
		if code, _, body := request(t, "GET", u+path, "", nil); code != 200 {
			t.Errorf("%s: %d %s", path, code, body)
		}
	}
	for _, path := range []string{"/socket.io/socket.io.js", "/switchboard.js"} {
		code, hdr, body := request(t, "GET", u+path, "", nil)
		etag := hdr.Get("ETag")
		if code != 200 || !bytes.Contains(body, []byte("function io(")) || etag == "" || hdr.Get("Cache-Control") == "" ||
			!strings.HasPrefix(hdr.Get("Content-Type"), "text/javascript") {
			t.Fatalf("%s: %d %v", path, code, hdr)
		}
		req, _ := http.NewRequest("GET", u+path, nil)
		req.Header.Set("If-None-Match", etag)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 304 {
			t.Errorf("%s with If-None-Match: %d, want 304", path, res.StatusCode)
		}
	}
	if code, hdr, body := request(t, "GET", u+"/", "", nil); code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/html") ||
		!bytes.Contains(body, []byte("switchboard.js")) {
		t.Errorf("demo page: %d %v", code, hdr)
	}
}

func TestHTTPAPIDevMode(t *testing.T) {
	h := startHub(t, t.TempDir())
	if !strings.Contains(h.logs(), "DEVELOPMENT MODE") || !strings.Contains(h.logs(), "open to anyone") {
		t.Errorf("no loud development-mode warning:\n%s", h.logs())
	}
	if code, _, body := request(t, "POST", h.url+"/api/publish", "", map[string]any{"room": "r", "event": "e"}); code != 200 {
		t.Errorf("development mode API: %d %s", code, body)
	}
	// A client names its identity.
	a := dial(t, h.url, map[string]any{"clientId": "ann"})
	b := dial(t, h.url, map[string]any{"clientId": "ben"})
	in := collect(b, "hello", false)
	expectOK(t, "join", call(t, a, "join", "room"))
	expectOK(t, "join", call(t, b, "join", "room"))
	expectOK(t, "publish", call(t, a, "publish", map[string]any{"room": "room", "event": "hello", "data": "hi"}))
	got := in.waitUntil(t, "hello", func(a []client.Args) bool { return len(a) == 1 })
	if m := metaOf(got[0]); m["from"] != "ann" {
		t.Errorf("meta %v", m)
	}
}

func TestDurableAcrossSIGKILL(t *testing.T) {
	dir := t.TempDir()
	h := startHub(t, dir, jwtArgs()...)
	auth := userAuth(t, "worker", []string{"orders/*"}, nil)
	publish := func(h *hubProc, n int) {
		t.Helper()
		code, _, body := request(t, "POST", h.url+"/api/publish", testAPIKey, map[string]any{"room": "orders/eu", "event": "order", "data": map[string]any{"n": n}})
		if code != 200 || jsonBody(t, body)["offset"] != float64(n) {
			t.Fatalf("publish %d: %d %s", n, code, body)
		}
	}
	s := dial(t, h.url, auth)
	in := collect(s, "order", true)
	expectOK(t, "durable join", call(t, s, "join", "orders/eu", map[string]any{"durable": true}))
	for n := 1; n <= 3; n++ {
		publish(h, n)
	}
	in.waitUntil(t, "3 deliveries", func(a []client.Args) bool { return len(a) == 3 })
	s.Manager().Close()
	for n := 4; n <= 8; n++ {
		publish(h, n) // stored while the subscriber is away
	}
	if code := h.stop(syscall.SIGKILL); code == 0 {
		t.Fatal("SIGKILL exit code 0?")
	}

	h2 := startHub(t, dir, jwtArgs()...)
	for n := 9; n <= 10; n++ {
		publish(h2, n)
	}
	var in2 *inbox
	dialSetup(t, h2.url, &client.Options{Auth: auth}, func(s *client.Socket) {
		in2 = collect(s, "order", true) // the subscription resumes on connect
	})
	got := in2.waitUntil(t, "offset 10", func(a []client.Args) bool {
		return len(a) > 0 && metaOf(a[len(a)-1])["offset"] == float64(10)
	})
	// At least once and in order: acknowledged events may come again only
	// if their acknowledgement was not saved before the kill.
	var offsets []float64
	for _, a := range got {
		offsets = append(offsets, metaOf(a)["offset"].(float64))
	}
	for i := 1; i < len(offsets); i++ {
		if offsets[i] != offsets[i-1]+1 {
			t.Fatalf("offsets after restart %v: not contiguous and increasing", offsets)
		}
	}
	if offsets[0] > 4 {
		t.Fatalf("offsets after restart %v: events 4..%v lost", offsets, offsets[0]-1)
	}
	var data map[string]any
	_ = got[len(got)-1].Decode(0, &data)
	if data["n"] != float64(10) || metaOf(got[len(got)-1])["room"] != "orders/eu" {
		t.Errorf("last delivery %v", got[len(got)-1])
	}
	if code := h2.stop(syscall.SIGTERM); code != 0 {
		t.Errorf("SIGTERM exit code %d", code)
	}
}

func TestIdempotentPublish(t *testing.T) {
	h := startHub(t, t.TempDir(), jwtArgs()...)
	s := dial(t, h.url, userAuth(t, "w", []string{"*"}, []string{"*"}))
	in := collect(s, "e", true)
	expectOK(t, "join", call(t, s, "join", "durable-d", map[string]any{"durable": true}))
	var offsets []any
	for i := 0; i < 3; i++ {
		code, _, body := request(t, "POST", h.url+"/api/publish", testAPIKey, map[string]any{"room": "durable-d", "event": "e", "data": "once", "id": "req-1"})
		if code != 200 {
			t.Fatalf("publish: %d %s", code, body)
		}
		m := jsonBody(t, body)
		offsets = append(offsets, m["offset"])
		if (i > 0) != (m["duplicate"] == true) {
			t.Errorf("publish %d: %s", i, body)
		}
	}
	// A socket publisher retrying with the same id gets the same answer.
	a := expectOK(t, "socket repeat", call(t, s, "publish", map[string]any{"room": "durable-d", "event": "e", "data": "once", "id": "req-1"}))
	offsets = append(offsets, a["offset"])
	if g, _ := json.Marshal(offsets); string(g) != "[1,1,1,1]" {
		t.Fatalf("offsets %s, want the original offset every time", g)
	}
	code, _, body := request(t, "POST", h.url+"/api/publish", testAPIKey, map[string]any{"room": "durable-d", "event": "e", "data": "end"})
	if code != 200 || jsonBody(t, body)["offset"] != float64(2) {
		t.Fatalf("next publish: %d %s", code, body)
	}
	got := in.waitUntil(t, "end", func(a []client.Args) bool {
		var s string
		return len(a) > 0 && a[len(a)-1].Decode(0, &s) == nil && s == "end"
	})
	if len(got) != 2 {
		t.Fatalf("%d deliveries, want 2 (the duplicate not published again)", len(got))
	}
}

func TestPresenceThroughBinary(t *testing.T) {
	h := startHub(t, t.TempDir(), jwtArgs("--presence-rooms", "team-*")...)
	a := dial(t, h.url, userAuth(t, "alice", []string{"team-*"}, nil))
	joins := collect(a, "switchboard:join", false)
	leaves := collect(a, "switchboard:leave", false)
	expectOK(t, "join", call(t, a, "join", "team-1"))
	b := dial(t, h.url, userAuth(t, "bob", []string{"team-*"}, nil))
	expectOK(t, "join", call(t, b, "join", "team-1"))
	got := joins.waitUntil(t, "bob's join", func(a []client.Args) bool { return len(a) == 1 })
	var n map[string]any
	_ = got[0].Decode(0, &n)
	if n["room"] != "team-1" || n["identity"] != "bob" {
		t.Errorf("join notice %v", n)
	}
	p := expectOK(t, "presence", call(t, a, "presence", "team-1"))
	if g, _ := json.Marshal(p["identities"]); string(g) != `["alice","bob"]` {
		t.Errorf("presence %s", g)
	}
	b.Disconnect()
	got = leaves.waitUntil(t, "bob's leave", func(a []client.Args) bool { return len(a) == 1 })
	_ = got[0].Decode(0, &n)
	if n["identity"] != "bob" {
		t.Errorf("leave notice %v", n)
	}
}

func TestMetrics(t *testing.T) {
	h := startHub(t, t.TempDir(), jwtArgs()...)
	s := dial(t, h.url, userAuth(t, "m", []string{"*"}, []string{"*"}))
	in := collect(s, "e", true)
	expectOK(t, "join", call(t, s, "join", "durable-m", map[string]any{"durable": true}))
	for i := 0; i < 3; i++ {
		request(t, "POST", h.url+"/api/publish", testAPIKey, map[string]any{"room": "durable-m", "event": "e", "data": i})
	}
	in.waitUntil(t, "3 deliveries", func(a []client.Args) bool { return len(a) == 3 })
	expectOK(t, "socket publish", call(t, s, "publish", map[string]any{"room": "elsewhere", "event": "x"}))
	_, err := dialErr(t, h.url, &client.Options{DisableReconnection: true})
	if err == nil {
		t.Fatal("connected without a token")
	}

	code, hdr, body := request(t, "GET", h.url+"/metrics", "", nil)
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parsing /metrics (%s): %v", hdr.Get("Content-Type"), err)
	}
	value := func(name string, labels map[string]string) float64 {
		t.Helper()
		f := families[name]
		if f == nil {
			t.Fatalf("metric %s missing", name)
		}
	next:
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if v, ok := labels[l.GetName()]; ok && v != l.GetValue() {
					continue next
				}
			}
			switch {
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			}
		}
		t.Fatalf("metric %s%v missing", name, labels)
		return 0
	}
	checks := []struct {
		name   string
		labels map[string]string
		min    float64
	}{
		{"switchboard_connections", map[string]string{"transport": "websocket"}, 1},
		{"switchboard_sockets", nil, 1},
		{"switchboard_events_received_total", nil, 2}, // join and publish
		{"switchboard_events_sent_total", nil, 3},
		{"switchboard_received_bytes_total", nil, 1},
		{"switchboard_sent_bytes_total", nil, 1},
		{"switchboard_rooms", nil, 1},
		{"switchboard_publishes_total", map[string]string{"source": "http", "result": "ok"}, 3},
		{"switchboard_publishes_total", map[string]string{"source": "socket", "result": "ok"}, 1},
		{"switchboard_publish_duration_seconds", map[string]string{"source": "http", "durable": "true"}, 3},
		{"switchboard_durable_last_offset", map[string]string{"room": "durable-m"}, 3},
		{"switchboard_durable_subscribers", map[string]string{"room": "durable-m"}, 1},
		{"switchboard_room_events_total", map[string]string{"event": "create-room"}, 1},
		{"switchboard_room_events_total", map[string]string{"event": "join-room"}, 1},
		{"switchboard_auth_failures_total", nil, 1},
	}
	for _, c := range checks {
		if v := value(c.name, c.labels); v < c.min {
			t.Errorf("%s%v = %v, want at least %v", c.name, c.labels, v, c.min)
		}
	}
	if f := families["switchboard_durable_backlog"]; f == nil {
		t.Error("switchboard_durable_backlog missing")
	}
	if v := value("switchboard_durable_last_offset", map[string]string{"room": "durable-m"}); v != 3 {
		t.Errorf("last offset %v, want 3", v)
	}
}

func TestGracefulShutdown(t *testing.T) {
	h := startHub(t, t.TempDir(), "--log-level", "debug")
	s, err := dialErr(t, h.url, &client.Options{Auth: map[string]any{"clientId": "x"}, DisableReconnection: true})
	if err != nil {
		t.Fatal(err)
	}
	expectOK(t, "join", call(t, s, "join", "durable-g", map[string]any{"durable": true}))
	gone := make(chan string, 1)
	s.On("disconnect", func(reason string) { gone <- reason })
	if code := h.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("exit code %d after SIGTERM:\n%s", code, h.logs())
	}
	// A recoverable reason, so that the client reconnects (to another node,
	// or to this one restarted): "transport close", or, about 1 run in 40
	// here, "transport error" (as when the shutdown catches the client
	// upgrading to websocket); never "io server disconnect", after which a
	// socket.io client stays away.
	if r := <-gone; r != "transport close" && r != "transport error" {
		t.Errorf("client disconnect reason %q, want a recoverable one (transport close or error)", r)
	}
	logs := h.logs()
	for _, want := range []string{"shutting down", "msg=stopped", "room lifecycle"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
	// SIGINT too.
	h2 := startHub(t, t.TempDir())
	if code := h2.stop(syscall.SIGINT); code != 0 {
		t.Fatalf("exit code %d after SIGINT", code)
	}
}

func run(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = cleanEnv(env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-ctx.Done():
		cmd.Process.Kill()
		<-done
		t.Fatalf("%v did not exit", args)
	}
	return cmd.ProcessState.ExitCode(), out.String(), errb.String()
}

func TestCommandLine(t *testing.T) {
	code, out, _ := run(t, nil, "version")
	if code != 0 || !strings.HasPrefix(out, "switchboard ") {
		t.Errorf("version: %d %q", code, out)
	}
	code, _, errOut := run(t, nil, "--help")
	if code != 0 {
		t.Errorf("--help exit %d", code)
	}
	var c Config
	fs := c.flagSet(nil)
	fs.VisitAll(func(f *flagT) {
		if !strings.Contains(errOut, "--"+f.Name) || !strings.Contains(errOut, envName(f.Name)) {
			t.Errorf("--help does not document --%s and %s", f.Name, envName(f.Name))
		}
	})
	for _, want := range []string{"listen", "data-dir", "jwt-secret", "jwt-secret-file", "jwt-public-key-file", "api-key",
		"durable-rooms", "presence-rooms", "cors-origin", "redis-url", "dedupe-window", "max-payload", "rooms-per-socket",
		"recovery-window", "ack-timeout", "body-limit", "max-connections"} {
		if fs.Lookup(want) == nil {
			t.Errorf("no --%s", want)
		}
	}
	bad := [][]string{
		{"--redis-url", "mysql://nope"},
		{"--durable-rooms", "a,["},
		{"--jwt-leeway", "2m", "--jwt-secret", "x"},
		{"--jwt-public-key-file", "/nonexistent"},
		{"--sync", "sometimes"},
		{"--max-payload", "0"},
		{"--no-such-flag"},
		{"extra-arg"},
	}
	for _, args := range bad {
		code, _, errOut := run(t, nil, append(args, "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0")...)
		if code != 2 || !strings.Contains(errOut, "switchboard") && !strings.Contains(errOut, "flag") {
			t.Errorf("%v: exit %d, stderr %q; want 2 and a message", args, code, errOut)
		}
	}
}

// flagT is flag.Flag (aliased to keep the test imports short).
type flagT = flagFlag

func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "switchboard.json")
	os.WriteFile(file, []byte(`{"durable-rooms": ["file-*", "f2-*"], "presence-rooms": "file-*", "recovery-window": "1m", "max-payload": 5000}`), 0o600)
	p := startHub(t, filepath.Join(dir, "data"), "--config", file, "--presence-rooms", "flag-*")
	logs := p.logs()
	for _, want := range []string{"durable_rooms=file-*,f2-*", "presence_rooms=flag-*", "recovery_window=1m0s"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %s:\n%s", want, logs)
		}
	}
	p.stop(syscall.SIGTERM)

	// Environment over the file; key=value files too.
	kv := filepath.Join(dir, "switchboard.conf")
	os.WriteFile(kv, []byte("# comment\ndurable-rooms = kv-*\npresence-rooms=\"kv-*\"\n"), 0o600)
	cmd := exec.Command(binary, "--listen", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "data"))
	cmd.Env = cleanEnv("SWITCHBOARD_CONFIG="+kv, "SWITCHBOARD_PRESENCE_ROOMS=env-*")
	var errb syncBuffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for !strings.Contains(errb.String(), "switchboard listening") {
		if cmd.ProcessState != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	for _, want := range []string{"durable_rooms=kv-*", "presence_rooms=env-*"} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, errb.String())
		}
	}
	code, _, errOut := run(t, []string{"SWITCHBOARD_MAX_PAYLOAD=lots"}, "--data-dir", dir)
	if code != 2 || !strings.Contains(errOut, "SWITCHBOARD_MAX_PAYLOAD") {
		t.Errorf("bad environment value: %d %q", code, errOut)
	}
	os.WriteFile(kv, []byte("nonsense-setting = 1\n"), 0o600)
	code, _, errOut = run(t, nil, "--config", kv, "--data-dir", dir)
	if code != 2 || !strings.Contains(errOut, "unknown setting") {
		t.Errorf("unknown config key: %d %q", code, errOut)
	}
}
