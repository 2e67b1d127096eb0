package parser

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestDecode(t *testing.T) {
	tests := []struct {
		msg  string
		want Packet
	}{
		{"0", Packet{Type: Connect, Namespace: "/"}},
		{`0{"token":"x"}`, Packet{Type: Connect, Namespace: "/", Data: json.RawMessage(`{"token":"x"}`)}},
		{"0/custom", Packet{Type: Connect, Namespace: "/custom"}},
		{"0/custom,", Packet{Type: Connect, Namespace: "/custom"}},
		{`0/custom,{"a":1}`, Packet{Type: Connect, Namespace: "/custom", Data: json.RawMessage(`{"a":1}`)}},
		{"0/,", Packet{Type: Connect, Namespace: "/"}},
		{"1", Packet{Type: Disconnect, Namespace: "/"}},
		{"1/custom", Packet{Type: Disconnect, Namespace: "/custom"}},
		{"1/custom,", Packet{Type: Disconnect, Namespace: "/custom"}},
		{`2["hello"]`, Packet{Type: Event, Namespace: "/", Data: json.RawMessage(`["hello"]`)}},
		{`2["hello",1,{"a":[true]}]`, Packet{Type: Event, Namespace: "/", Data: json.RawMessage(`["hello",1,{"a":[true]}]`)}},
		{`2 [ "hello" ] `, Packet{Type: Event, Namespace: "/", Data: json.RawMessage(` [ "hello" ] `)}},
		{`212["hello"]`, Packet{Type: Event, Namespace: "/", ID: 12, HasID: true, Data: json.RawMessage(`["hello"]`)}},
		{`20["hello"]`, Packet{Type: Event, Namespace: "/", ID: 0, HasID: true, Data: json.RawMessage(`["hello"]`)}},
		{`2007["hello"]`, Packet{Type: Event, Namespace: "/", ID: 7, HasID: true, Data: json.RawMessage(`["hello"]`)}},
		{`2/chat,["hello"]`, Packet{Type: Event, Namespace: "/chat", Data: json.RawMessage(`["hello"]`)}},
		{`2/chat,5["hello"]`, Packet{Type: Event, Namespace: "/chat", ID: 5, HasID: true, Data: json.RawMessage(`["hello"]`)}},
		{`2/a/b?x=1,5["hello"]`, Packet{Type: Event, Namespace: "/a/b?x=1", ID: 5, HasID: true, Data: json.RawMessage(`["hello"]`)}},
		{`2999999999999999["x"]`, Packet{Type: Event, Namespace: "/", ID: 999999999999999, HasID: true, Data: json.RawMessage(`["x"]`)}},
		{`3[]`, Packet{Type: Ack, Namespace: "/", Data: json.RawMessage(`[]`)}},
		{`31[]`, Packet{Type: Ack, Namespace: "/", ID: 1, HasID: true, Data: json.RawMessage(`[]`)}},
		{`3/chat,31["ok",null]`, Packet{Type: Ack, Namespace: "/chat", ID: 31, HasID: true, Data: json.RawMessage(`["ok",null]`)}},
		{`4{"message":"nope"}`, Packet{Type: ConnectError, Namespace: "/", Data: json.RawMessage(`{"message":"nope"}`)}},
		{`4/random,{"message":"Invalid namespace"}`, Packet{Type: ConnectError, Namespace: "/random", Data: json.RawMessage(`{"message":"Invalid namespace"}`)}},
		// `42{}` is a valid CONNECT_ERROR with ack id 2 (as in socket.io-parser);
		// refusing it from a client is the socket layer's job.
		{`42{}`, Packet{Type: ConnectError, Namespace: "/", ID: 2, HasID: true, Data: json.RawMessage(`{}`)}},
		{`4"just a string"`, Packet{Type: ConnectError, Namespace: "/", Data: json.RawMessage(`"just a string"`)}},
		{`50-["x"]`, Packet{Type: BinaryEvent, Namespace: "/", Data: json.RawMessage(`["x"]`)}},
		{`60-/n,1[]`, Packet{Type: BinaryAck, Namespace: "/n", ID: 1, HasID: true, Data: json.RawMessage(`[]`)}},
		// A placeholder-like object in a non-binary packet is plain data, as in socket.io-parser.
		{`2["x",{"_placeholder":true,"num":"splice"}]`, Packet{Type: Event, Namespace: "/", Data: json.RawMessage(`["x",{"_placeholder":true,"num":"splice"}]`)}},
	}
	for _, tt := range tests {
		t.Run(tt.msg, func(t *testing.T) {
			p, err := NewDecoder(nil).AddText([]byte(tt.msg))
			if err != nil {
				t.Fatalf("AddText: %v", err)
			}
			if p == nil {
				t.Fatal("AddText returned no packet")
			}
			if !samePacket(p, &tt.want) {
				t.Fatalf("got  %+v\nwant %+v", *p, tt.want)
			}
			if tt.want.Data == nil && p.Data != nil {
				t.Errorf("Data = %q, want nil", p.Data)
			}
		})
	}
}

func TestDecodeBinary(t *testing.T) {
	d := NewDecoder(nil)
	text := `52-/up,9["files",{"_placeholder":true,"num":1},[{"a":{"_placeholder":true,"num":0}}]]`
	p, err := d.AddText([]byte(text))
	if p != nil || err != nil {
		t.Fatalf("AddText = %v, %v; want nil, nil while attachments are pending", p, err)
	}
	if d.Pending() != 2 {
		t.Fatalf("Pending = %d, want 2", d.Pending())
	}
	first := []byte("first")
	if p, err = d.AddBinary(first); p != nil || err != nil {
		t.Fatalf("AddBinary #0 = %v, %v; want nil, nil", p, err)
	}
	first[0] = 'X' // the decoder must have copied it
	if p, err = d.AddBinary(nil); err != nil || p == nil {
		t.Fatalf("AddBinary #1 = %v, %v; want the packet", p, err)
	}
	want := Packet{Type: BinaryEvent, Namespace: "/up", ID: 9, HasID: true,
		Data: json.RawMessage(text[8:]), Attachments: [][]byte{[]byte("first"), {}}}
	if !samePacket(p, &want) {
		t.Fatalf("got  %+v\nwant %+v", *p, want)
	}
	if p.Attachments[1] == nil {
		t.Error("empty attachment is nil, want empty non-nil")
	}
	if d.Pending() != 0 {
		t.Errorf("Pending after completion = %d", d.Pending())
	}

	name, args, err := EventName(p.Data)
	if err != nil || name != "files" || len(args) != 2 {
		t.Fatalf("EventName = %q, %d args, %v", name, len(args), err)
	}
	var b []byte
	if err := Unmarshal(args[0], p.Attachments, &b); err != nil || string(b) != "" {
		t.Errorf("Unmarshal placeholder 1 = %q, %v", b, err)
	}
	var v any
	if err := Unmarshal(args[1], p.Attachments, &v); err != nil {
		t.Fatal(err)
	}
	got := v.([]any)[0].(map[string]any)["a"]
	if bb, ok := got.([]byte); !ok || string(bb) != "first" {
		t.Errorf("nested placeholder = %#v, want []byte(\"first\")", got)
	}

	// The decoder is ready for the next packet.
	if p, err = d.AddText([]byte(`2["next"]`)); err != nil || p == nil || p.Type != Event {
		t.Fatalf("next packet: %v, %v", p, err)
	}
}

func TestDecoderDoesNotRetainText(t *testing.T) {
	msg := []byte(`2["hello"]`)
	p, err := NewDecoder(nil).AddText(msg)
	if err != nil {
		t.Fatal(err)
	}
	copy(msg, `2["HELLO"]`)
	if string(p.Data) != `["hello"]` {
		t.Errorf("Data changed with the input buffer: %q", p.Data)
	}
}

// TestDecoderErrors covers every codec case of bad-inputs.md items 1, 2, 4,
// 5 and 6: each must be rejected with an error wrapping ErrInvalidPacket
// (and the specific sentinel where there is one), never a panic.
func TestDecoderErrors(t *testing.T) {
	tests := []struct {
		name   string
		text   string
		bins   []string // binary messages fed after text, if it was accepted
		is     error    // extra sentinel expected besides ErrInvalidPacket
		substr string   // expected in the message
	}{
		// Item 1 (CVE-2022-2421).
		{"placeholder num splice", `51-["hello",{"_placeholder":true,"num":"splice"}]`, []string{"x"}, nil, "not an integer"},
		{"placeholder num past end", `51-["hello",{"_placeholder":true,"num":1}]`, []string{"x"}, nil, "outside [0, 1)"},
		{"placeholder num negative", `51-["hello",{"_placeholder":true,"num":-1}]`, nil, nil, "outside"},
		{"placeholder num fraction", `52-["hello",{"_placeholder":true,"num":0.5}]`, nil, nil, "not an integer"},
		{"placeholder num huge", `51-["hello",{"_placeholder":true,"num":1e400}]`, nil, nil, "not an integer"},
		{"placeholder num long", `51-["hello",{"_placeholder":true,"num":0.0000000000000000000000000000000000}]`, nil, nil, "not an integer"},
		{"placeholder num missing", `51-["hello",{"_placeholder":true}]`, nil, nil, "without num"},
		{"placeholder num null", `51-["hello",{"_placeholder":true,"num":null}]`, nil, nil, "not an integer"},
		{"placeholder num object", `51-["hello",{"_placeholder":true,"num":{"valueOf":0}}]`, nil, nil, "not an integer"},
		{"placeholder duplicate num last wins", `51-["hello",{"_placeholder":true,"num":0,"num":"splice"}]`, nil, nil, "not an integer"},
		{"placeholder escaped key", `51-["hello",{"_placeholde\u0072":true,"n\u0075m":"splice"}]`, nil, nil, "not an integer"},
		{"placeholder nested deep", `51-["hello",[{"a":[{"_placeholder":true,"num":3}]}]]`, nil, nil, "outside"},
		{"placeholder with zero attachments", `50-["hello",{"_placeholder":true,"num":0}]`, nil, nil, "outside [0, 0)"},
		{"placeholder in binary ack", `61-[{"_placeholder":true,"num":"__proto__"}]`, nil, nil, "not an integer"},
		{"binary frame with no header", "", []string{"\x04abc"}, ErrUnexpectedBinary, "unexpected binary"},
		{"text while attachments expected", `51-["hello",{"_placeholder":true,"num":0}]`, nil, nil, ""},
		// Item 2 (CVE-2023-32695).
		{"event name object", `2[{"toString":"foo"}]`, nil, nil, "event name"},
		{"event name bool", `2[true,"foo"]`, nil, nil, "event name"},
		{"event name null", `2[null,"bar"]`, nil, nil, "event name"},
		{"event name number", `2[1,"bar"]`, nil, nil, "event name"},
		// bad-inputs.md lists Engine.IO messages: `42{}` is Engine.IO
		// message "4" carrying Socket.IO `2{}`.
		{"event object payload", `2{}`, nil, nil, "must be an array"},
		{"event empty array", `2[]`, nil, nil, "event name"},
		{"connect error empty array", `42[]`, nil, nil, "object or a string"},
		{"event without payload", `2`, nil, nil, "without payload"},
		{"event with id without payload", `212`, nil, nil, "without payload"},
		{"event string payload", `2"hello"`, nil, nil, "must be an array"},
		{"binary event object payload", `51-{}`, nil, nil, "must be an array"},
		{"binary event empty array", `50-[]`, nil, nil, "event name"},
		// Item 4 (CVE-2026-33151).
		{"too many attachments", `511-["x"]`, nil, ErrTooManyAttachments, "limit 10"},
		{"way too many attachments", `599999999999-["x"]`, nil, nil, "longer than 10 digits"},
		{"count of ten digits over limit", `54294967296-["x"]`, nil, ErrTooManyAttachments, ""},
		{"count letters", `5abc-["x"]`, nil, nil, "attachment count"},
		{"count letters only", `5abc-`, nil, nil, "attachment count"},
		{"count fraction", `51.5-["x"]`, nil, nil, "attachment count"},
		{"count negative", `5-1-["x"]`, nil, nil, "attachment count"},
		{"count missing", `5-["x"]`, nil, nil, "attachment count"},
		{"count without dash", `51["x"]`, nil, nil, "attachment count"},
		{"count at end", `51`, nil, nil, "attachment count"},
		{"type only binary", `5`, nil, nil, "attachment count"},
		{"count exponent", `51e1-["x"]`, nil, nil, "attachment count"},
		{"count hex", `50x1-["x"]`, nil, nil, "attachment count"},
		// Item 5 (CVE-2020-36049, CVE-2020-36048): long digit runs.
		{"ack id 16 digits", `21234567890123456["x"]`, nil, nil, "longer than 15 digits"},
		{"ack id after nsp 16 digits", `2/a,1234567890123456["x"]`, nil, nil, "longer than 15 digits"},
		// Item 6, as Socket.IO packets and as the Socket.IO part of the
		// Engine.IO messages (`4abc` carries `abc`).
		{"type 4 garbage", `4abc`, nil, nil, "not valid JSON"},
		{"type a", `abc`, nil, nil, "unknown packet type"},
		{"type 9", `999`, nil, nil, "unknown packet type"},
		{"type 9 short", `99`, nil, nil, "unknown packet type"},
		{"type 7", `7["x"]`, nil, nil, "unknown packet type"},
		{"type letter", `a["x"]`, nil, nil, "unknown packet type"},
		{"empty", ``, nil, nil, "empty message"},
		{"garbage after ack id", `42abc["x"]`, nil, nil, "not valid JSON"},
		{"event garbage after ack id", `2abc["x"]`, nil, nil, "not valid JSON"},
		{"event garbage after long ack id", `22abc["x"]`, nil, nil, "not valid JSON"},
		// Payload shape per type.
		{"connect array", `0["x"]`, nil, nil, "must be an object"},
		{"connect string", `0"x"`, nil, nil, "must be an object"},
		{"connect trailing garbage", `0{}x`, nil, nil, "not valid JSON"},
		{"disconnect with payload", `1{}`, nil, nil, "DISCONNECT with payload"},
		{"ack without payload", `31`, nil, nil, "without payload"},
		{"ack object", `31{}`, nil, nil, "must be an array"},
		{"connect error array", `4[]`, nil, nil, "object or a string"},
		{"connect error without payload", `4`, nil, nil, "without payload"},
		{"invalid JSON", `2["x"`, nil, nil, "not valid JSON"},
		{"invalid JSON two values", `2["x"]["y"]`, nil, nil, "not valid JSON"},
		{"whitespace payload", `2 `, nil, nil, "not valid JSON"},
		{"nsp without comma before payload", `2/chat["x"]`, nil, nil, "without payload"},
		{"nested too deep", "2[\"x\"," + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + "]", nil, nil, "not valid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := NewDecoder(nil)
			var err error
			if tt.text != "" || tt.bins == nil {
				var p *Packet
				p, err = d.AddText([]byte(tt.text))
				if err == nil && p == nil && tt.bins == nil {
					// The packet awaits attachments: a text message now is an error.
					_, err = d.AddText([]byte(`2["next"]`))
				}
			}
			for _, b := range tt.bins {
				if err != nil {
					break
				}
				_, err = d.AddBinary([]byte(b))
			}
			if err == nil {
				t.Fatal("accepted, want an error")
			}
			if !errors.Is(err, ErrInvalidPacket) {
				t.Errorf("error %q does not wrap ErrInvalidPacket", err)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %q does not wrap %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.substr) {
				t.Errorf("error %q does not mention %q", err, tt.substr)
			}
			if len(err.Error()) > 200 {
				t.Errorf("error message too long (%d bytes): %.200q", len(err.Error()), err)
			}
			// The decoder holds no partial packet after an error.
			if p, err := d.AddText([]byte(`2["ok"]`)); err != nil || p == nil {
				t.Errorf("decoder not reusable after error: %v, %v", p, err)
			}
		})
	}
}

func TestDecoderTextWhileAttachmentsExpected(t *testing.T) {
	d := NewDecoder(nil)
	if p, err := d.AddText([]byte(`52-["x",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`)); p != nil || err != nil {
		t.Fatalf("AddText = %v, %v", p, err)
	}
	if p, err := d.AddBinary([]byte("a")); p != nil || err != nil {
		t.Fatalf("AddBinary = %v, %v", p, err)
	}
	_, err := d.AddText([]byte(`2["x"]`))
	if !errors.Is(err, ErrInvalidPacket) || !strings.Contains(err.Error(), "attachment 2 of 2") {
		t.Fatalf("text while attachments expected: err = %v", err)
	}
	if d.Pending() != 0 {
		t.Errorf("Pending after error = %d, want 0", d.Pending())
	}
	if _, err := d.AddBinary([]byte("b")); !errors.Is(err, ErrUnexpectedBinary) {
		t.Errorf("binary after reset: err = %v, want ErrUnexpectedBinary", err)
	}
}

func TestDecoderReset(t *testing.T) {
	d := NewDecoder(nil)
	if _, err := d.AddText([]byte(`51-["x",{"_placeholder":true,"num":0}]`)); err != nil {
		t.Fatal(err)
	}
	d.Reset()
	if d.Pending() != 0 {
		t.Fatalf("Pending after Reset = %d", d.Pending())
	}
	if p, err := d.AddText([]byte(`2["x"]`)); err != nil || p == nil {
		t.Fatalf("AddText after Reset = %v, %v", p, err)
	}
}

func TestDecoderMaxAttachments(t *testing.T) {
	for _, tt := range []struct {
		opts *DecoderOptions
		max  int
	}{
		{nil, 10},
		{&DecoderOptions{}, 10},
		{&DecoderOptions{MaxAttachments: -1}, 10},
		{&DecoderOptions{MaxAttachments: 2}, 2},
		{&DecoderOptions{MaxAttachments: 100}, 100},
	} {
		d := NewDecoder(tt.opts)
		ok := []byte(`5` + itoa(tt.max) + `-["x"]`)
		if p, err := d.AddText(ok); p != nil || err != nil {
			t.Errorf("opts %+v: %q = %v, %v; want pending", tt.opts, ok, p, err)
		}
		d.Reset()
		bad := []byte(`5` + itoa(tt.max+1) + `-["x"]`)
		if _, err := d.AddText(bad); !errors.Is(err, ErrTooManyAttachments) {
			t.Errorf("opts %+v: %q err = %v, want ErrTooManyAttachments", tt.opts, bad, err)
		}
	}
}

func itoa(n int) string {
	return string(AppendEncode(nil, &Packet{HasID: true, ID: uint64(n)})[1:])
}

// TestDecoderLongDigitRuns feeds 10^8-digit attachment counts and ack ids:
// the decoder must reject them after the digit cap without scanning the rest
// (CVE-2020-36049 style).
func TestDecoderLongDigitRuns(t *testing.T) {
	const n = 100_000_000
	// One buffer: prefix slack, the digits, suffix slack; each case writes
	// its prefix and suffix around the same digits.
	const slack = 16
	buf := make([]byte, slack+n+slack)
	copy(buf[slack:], bytes.Repeat([]byte{'1'}, 1<<20))
	for filled := 1 << 20; filled < n; filled *= 2 {
		copy(buf[slack+filled:slack+n], buf[slack:slack+filled])
	}
	for _, tt := range []struct{ prefix, suffix, substr string }{
		{"5", `-["x"]`, "attachment count"},
		{"2", `["x"]`, "ack id"},
		{"3/chat,", `[]`, "ack id"},
		{"61-/chat,", `[]`, "ack id"},
	} {
		start := slack - len(tt.prefix)
		copy(buf[start:], tt.prefix)
		end := slack + n + copy(buf[slack+n:], tt.suffix)
		msg := buf[start:end]
		_, err := NewDecoder(nil).AddText(msg)
		if !errors.Is(err, ErrInvalidPacket) || !strings.Contains(err.Error(), tt.substr) {
			t.Errorf("%s...: err = %v, want invalid %s", tt.prefix, err, tt.substr)
		}
	}
}

// BenchmarkDecoderLinear decodes payloads full of objects (the placeholder
// walk) of two sizes: ns/op should grow 16x between them, not 256x.
func BenchmarkDecoderLinear(b *testing.B) {
	for _, k := range []int{10_000, 160_000} {
		msg := []byte(`51-["x",` + strings.Repeat(`{"_placeholder":false,"num":"a","k":[{}]},`, k) + `{"_placeholder":true,"num":0}]`)
		b.Run(fmt.Sprintf("objects=%d", k), func(b *testing.B) {
			b.SetBytes(int64(len(msg)))
			d := NewDecoder(nil)
			for i := 0; i < b.N; i++ {
				if _, err := d.AddText(msg); err != nil {
					b.Fatal(err)
				}
				d.Reset()
			}
		})
	}
}
