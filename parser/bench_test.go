package parser

import (
	"encoding/json"
	"strings"
	"testing"
)

// A typical chat event.
var benchEvent = []byte(`2["chat",{"user":"ann","text":"hello world","ts":1700000000}]`)

func BenchmarkEncodeEvent(b *testing.B) {
	p := &Packet{Type: Event, Data: json.RawMessage(benchEvent[1:])}
	b.ReportAllocs()
	b.SetBytes(int64(len(benchEvent)))
	for b.Loop() {
		text, _ := Encode(p)
		if len(text) != len(benchEvent) {
			b.Fatalf("Encode = %q", text)
		}
	}
}

func BenchmarkAppendEncodeEvent(b *testing.B) {
	p := &Packet{Type: Event, Data: json.RawMessage(benchEvent[1:])}
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	b.SetBytes(int64(len(benchEvent)))
	for b.Loop() {
		buf = AppendEncode(buf[:0], p)
	}
}

func BenchmarkDecodeEvent(b *testing.B) {
	d := NewDecoder(nil)
	b.ReportAllocs()
	b.SetBytes(int64(len(benchEvent)))
	for b.Loop() {
		p, err := d.AddText(benchEvent)
		if err != nil || p == nil {
			b.Fatal(p, err)
		}
	}
}

func BenchmarkDecodeBinaryEvent(b *testing.B) {
	d := NewDecoder(nil)
	text := []byte(`51-["upload",{"name":"a.png","data":{"_placeholder":true,"num":0}}]`)
	att := make([]byte, 1024)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.AddText(text); err != nil {
			b.Fatal(err)
		}
		if p, err := d.AddBinary(att); err != nil || p == nil {
			b.Fatal(p, err)
		}
	}
}

func BenchmarkMarshalEvent(b *testing.B) {
	arg := map[string]any{"user": "ann", "text": "hello world", "ts": 1700000000}
	b.ReportAllocs()
	for b.Loop() {
		data, _, err := MarshalEvent("chat", arg)
		if err != nil || len(data) != len(benchEvent)-1 {
			b.Fatal(string(data), err)
		}
	}
}

// An ack echoing the arguments of an event as they came (what the
// benchmark server's echo handler sends).
func BenchmarkMarshalEchoAck(b *testing.B) {
	args := []any{json.RawMessage(`4294967297`), json.RawMessage(`"` + strings.Repeat("x", 64) + `"`)}
	b.ReportAllocs()
	for b.Loop() {
		data, _, err := MarshalArgs(args...)
		if err != nil || len(data) != 2+10+1+66 {
			b.Fatal(string(data), err)
		}
	}
}

func BenchmarkEventName(b *testing.B) {
	data := json.RawMessage(benchEvent[1:])
	b.ReportAllocs()
	for b.Loop() {
		if name, args, err := EventName(data); err != nil || name != "chat" || len(args) != 1 {
			b.Fatal(name, err)
		}
	}
}
