package hub

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/switchboard-io/switchboard"
	"github.com/switchboard-io/switchboard/bolt"
	"github.com/switchboard-io/switchboard/client"
)

func jwtConfig() Config {
	return Config{
		JWTSecret:     testSecret,
		APIKey:        "key",
		DurableRooms:  Patterns{"durable-*"},
		PresenceRooms: Patterns{"*"},
		Server:        switchboard.Options{ConnectionStateRecovery: &switchboard.RecoveryOptions{}},
	}
}

func userToken(t *testing.T, sub string, rooms, publish []string) map[string]any {
	return map[string]any{"token": token(t, jwt.MapClaims{"sub": sub, "rooms": rooms, "publish": publish,
		"exp": time.Now().Add(time.Hour).Unix()})}
}

func TestUnauthorized(t *testing.T) {
	h := startHub(t, jwtConfig())
	for name, auth := range map[string]any{
		"missing":   nil,
		"expired":   map[string]any{"token": token(t, jwt.MapClaims{"sub": "u", "exp": time.Now().Add(-time.Hour).Unix()})},
		"no sub":    map[string]any{"token": token(t, jwt.MapClaims{"rooms": []string{"*"}})},
		"clientId":  map[string]any{"clientId": "mallory"}, // only in development mode
		"bad token": map[string]any{"token": "x.y.z"},
	} {
		_, err := dialErr(t, h.url, auth)
		ce, ok := err.(*client.ConnectError)
		if !ok || ce.Message != "unauthorized" {
			t.Errorf("%s: err %v, want connect_error unauthorized", name, err)
		}
	}
}

func TestPermissionsAndErrors(t *testing.T) {
	h := startHub(t, jwtConfig())
	s := dial(t, h.url, userToken(t, "alice", []string{"chat-*", "durable-*", "team/*"}, []string{"chat-*"}))

	mustOK(t, call(t, s, "join", "chat-1"))
	mustOK(t, call(t, s, "join", "team/a"))
	mustFail(t, call(t, s, "join", "team/a/b"), CodeForbidden) // * does not cross /
	mustFail(t, call(t, s, "join", "secret"), CodeForbidden)
	mustFail(t, call(t, s, "join", "chat-2", map[string]any{"durable": true}), CodeNotDurable)
	mustFail(t, call(t, s, "leave", "chat-2", map[string]any{"durable": true}), CodeNotDurable)
	mustFail(t, call(t, s, "join", 5), CodeBadRequest)
	mustFail(t, call(t, s, "join"), CodeBadRequest)
	mustFail(t, call(t, s, "join", ""), CodeBadRequest)
	mustFail(t, call(t, s, "join", "chat-\n"), CodeBadRequest)
	mustFail(t, call(t, s, "join", "chat-1", "durable"), CodeBadRequest)
	mustFail(t, call(t, s, "join", s.ID()), CodeForbidden) // a connection's own room

	mustOK(t, call(t, s, "publish", map[string]any{"room": "chat-1", "event": "m", "data": 1}))
	mustFail(t, call(t, s, "publish", map[string]any{"room": "durable-1", "event": "m"}), CodeForbidden)
	mustFail(t, call(t, s, "publish", map[string]any{"room": "team/a", "event": "m"}), CodeForbidden)
	for _, ev := range []string{"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener", "switchboard:join", "switchboard:x", ""} {
		mustFail(t, call(t, s, "publish", map[string]any{"room": "chat-1", "event": ev}), CodeInvalidEvent)
	}
	mustFail(t, call(t, s, "publish", "chat-1"), CodeBadRequest)
	mustFail(t, call(t, s, "publish", map[string]any{"room": "chat-1", "event": "m", "id": 5}), CodeBadRequest)
	mustFail(t, call(t, s, "publish", map[string]any{"room": "chat-1", "event": "m", "id": string(make([]byte, 129))}), CodeBadRequest)
	mustFail(t, call(t, s, "presence", "secret"), CodeForbidden)
	mustOK(t, call(t, s, "leave", "chat-1"))

	// A token without claims allows nothing.
	n := dial(t, h.url, map[string]any{"token": token(t, jwt.MapClaims{"sub": "nobody"})})
	mustFail(t, call(t, n, "join", "chat-1"), CodeForbidden)
	mustFail(t, call(t, n, "publish", map[string]any{"room": "chat-1", "event": "m"}), CodeForbidden)
}

func TestPublishReachesOthersNotSender(t *testing.T) {
	h := startHub(t, Config{}) // development mode
	a := dial(t, h.url, map[string]any{"clientId": "alice"})
	a2 := dial(t, h.url, map[string]any{"clientId": "alice"})
	b := dial(t, h.url, map[string]any{"clientId": "bob"})
	ra, ra2, rb := record(a), record(a2), record(b)
	for _, s := range []*client.Socket{a, a2, b} {
		mustOK(t, call(t, s, "join", "lobby"))
	}
	mustOK(t, call(t, a, "publish", map[string]any{"room": "lobby", "event": "chat", "data": map[string]any{"text": "hi"}}))
	mustOK(t, call(t, b, "publish", map[string]any{"room": "lobby", "event": "chat", "data": map[string]any{"text": "end"}}))

	for name, r := range map[string]*recorder{"bob": rb, "alice's other connection": ra2} {
		e, _ := r.waitFor(t, 0, "hi", withData("chat", "text", "hi"))
		if meta := e.arg(1); meta["room"] != "lobby" || meta["from"] != "alice" {
			t.Errorf("%s: meta %v", name, meta)
		}
	}
	_, end := ra.waitFor(t, 0, "end", withData("chat", "text", "end"))
	for _, e := range ra.named("chat", end) {
		t.Errorf("the sender received its own publish: %v", e.args)
	}
	// An anonymous development connection has a per-connection identity.
	anon := dial(t, h.url, nil)
	mustOK(t, call(t, anon, "join", "lobby"))
	mustFail(t, call(t, anon, "join", "durable-x", map[string]any{"durable": true}), CodeNotDurable)
}

func TestDurableDeliveryWithAckAndNoPlainCopy(t *testing.T) {
	h := startHub(t, jwtConfig())
	all := []string{"durable-*"}
	sub := dial(t, h.url, userToken(t, "sub", all, nil))
	plain := dial(t, h.url, userToken(t, "plain", all, nil))
	pub := dial(t, h.url, userToken(t, "pub", all, all))
	rs, rp := record(sub), record(plain)
	sub.On("m", func(_ client.Args, ack client.AckFunc) { ack() })

	mustOK(t, call(t, sub, "join", "durable-q", map[string]any{"durable": true}))
	mustOK(t, call(t, plain, "join", "durable-q"))
	for i := 1; i <= 3; i++ {
		a := mustOK(t, call(t, pub, "publish", map[string]any{"room": "durable-q", "event": "m", "data": i}))
		if a["offset"] != float64(i) {
			t.Fatalf("publish %d answered %v", i, a)
		}
	}
	_, last := rs.waitFor(t, 0, "offset 3", func(e event) bool { return e.name == "m" && e.arg(1)["offset"] == float64(3) })
	got := rs.named("m", last+1)
	if len(got) != 3 {
		t.Fatalf("durable subscriber got %d deliveries, want 3 (no plain copy): %v", len(got), rs.all())
	}
	for i, e := range got {
		meta := e.arg(1)
		if meta["room"] != "durable-q" || meta["offset"] != float64(i+1) || meta["from"] != "pub" {
			t.Errorf("delivery %d meta %v", i, meta)
		}
	}
	// A plain member gets (data, meta, recoveryOffset).
	e, _ := rp.waitFor(t, 0, "offset 3", func(e event) bool { return e.name == "m" && e.arg(1)["offset"] == float64(3) })
	var off string
	if e.args.Len() != 3 || e.args.Decode(2, &off) != nil || off == "" {
		t.Errorf("plain copy args %s, want data, meta and a recovery offset", e.args)
	}
	// leave with durable:true ends the subscription.
	mustOK(t, call(t, sub, "leave", "durable-q", map[string]any{"durable": true}))
	if _, ok, _ := h.store.Cursor(context.Background(), "/#durable-q", "sub"); ok {
		t.Error("subscription kept after leave {durable:true}")
	}
}

func httpPublish(t *testing.T, url, key string, body any) (int, map[string]any) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", url+"/api/publish", bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(res.Body).Decode(&out)
	return res.StatusCode, out
}

func TestIdempotentPublishAcrossSocketAndHTTP(t *testing.T) {
	h := startHub(t, jwtConfig())
	all := []string{"*"}
	sub := dial(t, h.url, userToken(t, "sub", all, nil))
	pub := dial(t, h.url, userToken(t, "pub", all, all))
	rs := record(sub)
	sub.On("m", func(_ client.Args, ack client.AckFunc) { ack() })
	mustOK(t, call(t, sub, "join", "durable-i", map[string]any{"durable": true}))
	mustOK(t, call(t, sub, "join", "live"))

	first := mustOK(t, call(t, pub, "publish", map[string]any{"room": "durable-i", "event": "m", "data": "x", "id": "abc"}))
	again := mustOK(t, call(t, pub, "publish", map[string]any{"room": "durable-i", "event": "m", "data": "x", "id": "abc"}))
	code, viaHTTP := httpPublish(t, h.url, "key", map[string]any{"room": "durable-i", "event": "m", "data": "x", "id": "abc"})
	if first["offset"] != float64(1) || again["offset"] != float64(1) || again["duplicate"] != true ||
		code != 200 || viaHTTP["offset"] != float64(1) || viaHTTP["duplicate"] != true {
		t.Fatalf("answers %v, %v, %d %v; want offset 1 each, repeats flagged duplicate", first, again, code, viaHTTP)
	}
	// The same id in another room is another publish.
	mustOK(t, call(t, pub, "publish", map[string]any{"room": "live", "event": "m", "data": "live-1", "id": "abc"}))
	dupLive := mustOK(t, call(t, pub, "publish", map[string]any{"room": "live", "event": "m", "data": "live-1", "id": "abc"}))
	if dupLive["duplicate"] != true {
		t.Fatalf("live repeat %v", dupLive)
	}
	mustOK(t, call(t, pub, "publish", map[string]any{"room": "durable-i", "event": "m", "data": "end"}))
	_, end := rs.waitFor(t, 0, "end", func(e event) bool { var s string; return e.args.Decode(0, &s) == nil && s == "end" })
	count := map[string]int{}
	for _, e := range rs.named("m", end) {
		var s string
		_ = e.args.Decode(0, &s)
		count[s]++
	}
	if count["x"] != 1 || count["live-1"] != 1 {
		t.Fatalf("deliveries %v, want x and live-1 once each", count)
	}
}

func presenceEvents(r *recorder, end int) []string {
	var out []string
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.events[:min(end, len(r.events))] {
		if e.name == PresenceJoinEvent || e.name == PresenceLeaveEvent {
			out = append(out, e.name+":"+e.arg(0)["identity"].(string))
		}
	}
	return out
}

func TestPresence(t *testing.T) {
	h := startHub(t, Config{PresenceRooms: Patterns{"p-*"}, Server: switchboard.Options{
		ConnectionStateRecovery: &switchboard.RecoveryOptions{MaxDisconnectionDuration: time.Hour}}})
	a := dial(t, h.url, map[string]any{"clientId": "alice"})
	ra := record(a)
	mustOK(t, call(t, a, "join", "p-room"))
	b := dial(t, h.url, map[string]any{"clientId": "bob"})
	rb := record(b)
	mustOK(t, call(t, b, "join", "p-room"))
	ra.waitFor(t, 0, "bob joins", withData(PresenceJoinEvent, "identity", "bob"))

	// A second connection of bob: no notice (per identity).
	b2 := dial(t, h.url, map[string]any{"clientId": "bob"})
	mustOK(t, call(t, b2, "join", "p-room"))
	ids := mustOK(t, call(t, a, "presence", "p-room"))["identities"]
	if jsonString(ids) != `["alice","bob"]` {
		t.Fatalf("presence %v", ids)
	}
	mustFail(t, call(t, a, "presence", "other"), CodeBadRequest)
	// bob's first connection leaves: bob is still there.
	mustOK(t, call(t, b, "leave", "p-room"))
	// bob's second drops its transport and is recovered: nothing fires.
	// (Recovery needs an offset: the client must have received an event.)
	rb2 := record(b2)
	mustOK(t, call(t, a, "publish", map[string]any{"room": "p-room", "event": "warmup"}))
	rb2.waitFor(t, 0, "warmup", isEvent("warmup"))
	reconnected := make(chan struct{})
	b2.Once("connect", func() { close(reconnected) })
	b2.Manager().Engine().CloseTransport()
	<-reconnected
	if !b2.Recovered() {
		t.Fatal("bob's connection was not recovered")
	}
	mustOK(t, call(t, b2, "publish", map[string]any{"room": "p-room", "event": "marker"}))
	_, end := ra.waitFor(t, 0, "marker", isEvent("marker"))
	if got := presenceEvents(ra, end); jsonString(got) != `["switchboard:join:bob"]` {
		t.Fatalf("alice saw %v; want only bob's first join (no notice for a second connection, a partial leave or a recovery)", got)
	}
	// Now bob's last connection leaves.
	mustOK(t, call(t, b2, "leave", "p-room"))
	ra.waitFor(t, end, "bob leaves", withData(PresenceLeaveEvent, "identity", "bob"))
	// bob never heard about himself.
	mustOK(t, call(t, a, "publish", map[string]any{"room": "p-room", "event": "marker2"}))
	mustOK(t, call(t, b, "join", "p-room"))
	mustOK(t, call(t, a, "publish", map[string]any{"room": "p-room", "event": "marker3"}))
	_, end = rb.waitFor(t, 0, "marker3", isEvent("marker3"))
	for _, p := range presenceEvents(rb, end) {
		if p == "switchboard:join:bob" || p == "switchboard:leave:bob" {
			t.Errorf("bob was told about himself: %v", presenceEvents(rb, end))
		}
	}
	// alice disconnects for good: bob sees her leave.
	a.Disconnect()
	rb.waitFor(t, end, "alice leaves", withData(PresenceLeaveEvent, "identity", "alice"))
}

func TestPresenceLeaveAfterRecoveryWindow(t *testing.T) {
	h := startHub(t, Config{PresenceRooms: Patterns{"*"}, Server: switchboard.Options{
		ConnectionStateRecovery: &switchboard.RecoveryOptions{MaxDisconnectionDuration: 300 * time.Millisecond}}})
	a := dial(t, h.url, map[string]any{"clientId": "alice"})
	ra := record(a)
	mustOK(t, call(t, a, "join", "room"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b, err := client.Dial(ctx, h.url, &client.Options{Auth: map[string]any{"clientId": "bob"}, Transports: []string{"websocket"}, DisableReconnection: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Manager().Close()
	if _, err := b.EmitWithAck(ctx, "join", "room"); err != nil {
		t.Fatal(err)
	}
	ra.waitFor(t, 0, "bob joins", withData(PresenceJoinEvent, "identity", "bob"))
	b.Manager().Engine().CloseTransport() // recoverable, but bob never comes back
	ra.waitFor(t, 0, "bob leaves after the window", withData(PresenceLeaveEvent, "identity", "bob"))
}

func TestHTTPAPIClosedWithoutKeyOutsideDevMode(t *testing.T) {
	cfg := jwtConfig()
	cfg.APIKey = ""
	h := startHub(t, cfg)
	code, body := httpPublish(t, h.url, "", map[string]any{"room": "r", "event": "e"})
	if code != 401 || body["error"] != CodeUnauthorized {
		t.Fatalf("%d %v, want 401 unauthorized", code, body)
	}
	dev := startHub(t, Config{})
	if code, body := httpPublish(t, dev.url, "", map[string]any{"room": "r", "event": "e"}); code != 200 {
		t.Fatalf("development mode without key: %d %v, want open", code, body)
	}
}

// A publisher with many durable publishes in flight (no id) gets them
// pipelined into shared commits: every answer comes, offsets follow the
// order it emitted them, and the subscriber receives them in that order.
func TestDurablePublishesPipelined(t *testing.T) {
	t.Run("memory", func(t *testing.T) { testDurablePublishesPipelined(t, jwtConfig()) })
	t.Run("bolt", func(t *testing.T) {
		cfg := jwtConfig()
		store, err := bolt.Open(filepath.Join(t.TempDir(), "hub.db"), nil)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Server.Store = store
		testDurablePublishesPipelined(t, cfg)
	})
}

func testDurablePublishesPipelined(t *testing.T, cfg Config) {
	h := startHub(t, cfg)
	all := []string{"durable-*"}
	sub := dial(t, h.url, userToken(t, "sub", all, nil))
	pub := dial(t, h.url, userToken(t, "pub", all, all))
	rs := record(sub)
	sub.On("m", func(_ client.Args, ack client.AckFunc) { ack() })
	mustOK(t, call(t, sub, "join", "durable-p", map[string]any{"durable": true}))

	const n = 200
	type answerOf struct {
		i   int
		ans map[string]any
		err error
	}
	answers := make(chan answerOf, n)
	for i := range n {
		err := pub.EmitWithAckFunc("publish", func(res client.Args, err error) {
			var a map[string]any
			if err == nil {
				err = res.Decode(0, &a)
			}
			answers <- answerOf{i, a, err}
		}, map[string]any{"room": "durable-p", "event": "m", "data": i})
		if err != nil {
			t.Fatal(err)
		}
	}
	for range n {
		select {
		case a := <-answers:
			if a.err != nil || a.ans["ok"] != true || a.ans["offset"] != float64(a.i+1) {
				t.Fatalf("publish %d answered %v, %v; want ok with offset %d", a.i, a.ans, a.err, a.i+1)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("not every pipelined publish was answered")
		}
	}
	_, last := rs.waitFor(t, 0, "the last delivery", func(e event) bool { return e.name == "m" && e.arg(1)["offset"] == float64(n) })
	got := rs.named("m", last+1)
	if len(got) != n {
		t.Fatalf("subscriber got %d deliveries, want %d", len(got), n)
	}
	for i, e := range got {
		var v int
		if err := e.args.Decode(0, &v); err != nil || v != i || e.arg(1)["offset"] != float64(i+1) {
			t.Fatalf("delivery %d: %s, want data %d at offset %d", i, e.args, i, i+1)
		}
	}
}
