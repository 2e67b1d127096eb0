package main

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/switchboard-io/switchboard/client"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestContract checks the benchmark contract with the Go client: join acks,
// publish reaches every socket in the room (the sender included) and acks
// when asked, echo acks with the same arguments.
func TestContract(t *testing.T) {
	srv := newServer(nil)
	hs := httptest.NewServer(srv)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Close(ctx)
		hs.Close()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	opts := &client.Options{Transports: []string{"websocket"}}

	dial := func() (*client.Socket, chan json.RawMessage) {
		s, err := client.Dial(ctx, hs.URL, opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Manager().Close() })
		got := make(chan json.RawMessage, 10)
		s.On("msg", func(p json.RawMessage) { got <- p })
		return s, got
	}
	a, gotA := dial()
	b, gotB := dial()
	c, gotC := dial()
	for _, s := range []*client.Socket{a, b} {
		res, err := s.EmitWithAck(ctx, "join", "r1")
		if err != nil || res.Len() != 0 {
			t.Fatalf("join: %v %v", res, err)
		}
	}

	// a publishes with an ack: a and b get it, c (not in the room) does not.
	res, err := a.EmitWithAck(ctx, "publish", map[string]any{"room": "r1", "payload": map[string]any{"seq": 1}})
	if err != nil || res.Len() != 0 {
		t.Fatalf("publish: %v %v", res, err)
	}
	for name, ch := range map[string]chan json.RawMessage{"sender": gotA, "member": gotB} {
		select {
		case p := <-ch:
			if string(p) != `{"seq":1}` {
				t.Errorf("%s got %s", name, p)
			}
		case <-ctx.Done():
			t.Fatalf("%s got nothing", name)
		}
	}
	// c publishes without an ack; then an echo round trip on b orders it.
	if err := c.Emit("publish", map[string]any{"room": "r1", "payload": "two"}); err != nil {
		t.Fatal(err)
	}
	if p := <-gotB; string(p) != `"two"` {
		t.Errorf("member got %s", p)
	}
	select {
	case p := <-gotC:
		t.Errorf("non-member got %s", p)
	default:
	}

	res, err = b.EmitWithAck(ctx, "echo", 1, "x", map[string]any{"k": []int{1, 2}}, []byte{0, 1})
	if err != nil {
		t.Fatal(err)
	}
	vals, err := res.Values()
	if err != nil || len(vals) != 4 || vals[0] != 1.0 || vals[1] != "x" || string(vals[3].([]byte)) != "\x00\x01" {
		t.Errorf("echo: %v %v", vals, err)
	}
}
