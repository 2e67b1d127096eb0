package parser

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"testing"
)

func TestEncode(t *testing.T) {
	tests := []struct {
		name string
		p    Packet
		text string
		atts int
	}{
		{"connect", Packet{Type: Connect}, "0", 0},
		{"connect slash nsp", Packet{Type: Connect, Namespace: "/"}, "0", 0},
		{"connect auth", Packet{Type: Connect, Data: json.RawMessage(`{"token":"t"}`)}, `0{"token":"t"}`, 0},
		{"connect nsp", Packet{Type: Connect, Namespace: "/admin", Data: json.RawMessage(`{"sid":"a"}`)}, `0/admin,{"sid":"a"}`, 0},
		{"disconnect", Packet{Type: Disconnect}, "1", 0},
		{"disconnect nsp", Packet{Type: Disconnect, Namespace: "/admin"}, "1/admin,", 0},
		{"event", Packet{Type: Event, Data: json.RawMessage(`["hi"]`)}, `2["hi"]`, 0},
		{"event ack id", Packet{Type: Event, ID: 12, HasID: true, Data: json.RawMessage(`["hi"]`)}, `212["hi"]`, 0},
		{"event ack id zero", Packet{Type: Event, ID: 0, HasID: true, Data: json.RawMessage(`["hi"]`)}, `20["hi"]`, 0},
		{"event id without HasID", Packet{Type: Event, ID: 12, Data: json.RawMessage(`["hi"]`)}, `2["hi"]`, 0},
		{"event nsp ack", Packet{Type: Event, Namespace: "/chat", ID: 7, HasID: true, Data: json.RawMessage(`["hi",1]`)}, `2/chat,7["hi",1]`, 0},
		{"ack", Packet{Type: Ack, ID: 3, HasID: true, Data: json.RawMessage(`[]`)}, `33[]`, 0},
		{"ack max id", Packet{Type: Ack, ID: 999999999999999, HasID: true, Data: json.RawMessage(`[]`)}, `3999999999999999[]`, 0},
		{"connect error", Packet{Type: ConnectError, Namespace: "/random", Data: json.RawMessage(`{"message":"Invalid namespace"}`)}, `4/random,{"message":"Invalid namespace"}`, 0},
		{"event with attachments", Packet{Type: Event, Data: json.RawMessage(`["up",{"_placeholder":true,"num":0}]`), Attachments: [][]byte{{1}}},
			`51-["up",{"_placeholder":true,"num":0}]`, 1},
		{"ack with attachments", Packet{Type: Ack, Namespace: "/f", ID: 5, HasID: true, Data: json.RawMessage(`[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`), Attachments: [][]byte{{1}, {}}},
			`62-/f,5[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`, 2},
		{"binary event type kept", Packet{Type: BinaryEvent, Data: json.RawMessage(`["x"]`)}, `50-["x"]`, 0},
		{"binary event twelve", Packet{Type: BinaryEvent, Data: json.RawMessage(`["x"]`), Attachments: make([][]byte, 12)}, `512-["x"]`, 12},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text, atts := Encode(&tt.p)
			if string(text) != tt.text {
				t.Errorf("Encode text = %q, want %q", text, tt.text)
			}
			if len(atts) != tt.atts {
				t.Errorf("Encode attachments = %d, want %d", len(atts), tt.atts)
			}
			if len(text) != cap(text) {
				t.Errorf("Encode len %d != cap %d: size estimate is off", len(text), cap(text))
			}
			prefix := []byte("xyz")
			got := AppendEncode(prefix, &tt.p)
			if string(got) != "xyz"+tt.text {
				t.Errorf("AppendEncode = %q, want %q", got, "xyz"+tt.text)
			}
		})
	}
}

func TestEncodeAllocs(t *testing.T) {
	p := &Packet{Type: Event, Namespace: "/chat", ID: 42, HasID: true, Data: json.RawMessage(`["chat",{"user":"ann"}]`)}
	if n := testing.AllocsPerRun(100, func() { Encode(p) }); n != 1 {
		t.Errorf("Encode allocs = %v, want 1", n)
	}
	buf := make([]byte, 0, 256)
	if n := testing.AllocsPerRun(100, func() { buf = AppendEncode(buf[:0], p) }); n != 0 {
		t.Errorf("AppendEncode into a large enough buffer allocs = %v, want 0", n)
	}
}

func TestPacketTypeString(t *testing.T) {
	for typ, want := range map[PacketType]string{Connect: "CONNECT", BinaryAck: "BINARY_ACK", 9: "PacketType(9)"} {
		if got := typ.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", byte(typ), got, want)
		}
	}
}

// golden is one packet encoded by the reference socket.io-parser
// (testdata/golden.js).
type golden struct {
	Name        string   `json:"name"`
	Text        string   `json:"text"`
	Attachments []string `json:"attachments"`
}

func mustEvent(t *testing.T, name string, args ...any) (json.RawMessage, [][]byte) {
	t.Helper()
	data, atts, err := MarshalEvent(name, args...)
	if err != nil {
		t.Fatalf("MarshalEvent: %v", err)
	}
	return data, atts
}

func mustArgs(t *testing.T, args ...any) (json.RawMessage, [][]byte) {
	t.Helper()
	data, atts, err := MarshalArgs(args...)
	if err != nil {
		t.Fatalf("MarshalArgs: %v", err)
	}
	return data, atts
}

// TestGolden checks that packets built with MarshalEvent/MarshalArgs encode
// byte for byte like socket.io-parser, and that its output decodes to them.
func TestGolden(t *testing.T) {
	raw, err := os.ReadFile("testdata/golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []golden
	if err := json.Unmarshal(raw, &cases); err != nil {
		t.Fatal(err)
	}
	build := map[string]func() Packet{
		"connect": func() Packet { return Packet{Type: Connect} },
		"connect_auth": func() Packet {
			return Packet{Type: Connect, Data: json.RawMessage(`{"token":"abc"}`)}
		},
		"connect_nsp": func() Packet {
			return Packet{Type: Connect, Namespace: "/admin", Data: json.RawMessage(`{"sid":"x1"}`)}
		},
		"disconnect_nsp": func() Packet { return Packet{Type: Disconnect, Namespace: "/admin"} },
		"event": func() Packet {
			d, a := mustEvent(t, "chat", map[string]any{"user": "ann", "text": "hello world", "ts": 1700000000})
			return Packet{Type: Event, Data: d, Attachments: a}
		},
		"event_ack": func() Packet {
			d, a := mustEvent(t, "hi")
			return Packet{Type: Event, ID: 12, HasID: true, Data: d, Attachments: a}
		},
		"event_nsp_ack": func() Packet {
			d, a := mustEvent(t, "hi", 1, true, nil)
			return Packet{Type: Event, Namespace: "/chat", ID: 7, HasID: true, Data: d, Attachments: a}
		},
		"event_unicode": func() Packet {
			d, a := mustEvent(t, "é", "<b>&\u2028\n\"\\")
			return Packet{Type: Event, Data: d, Attachments: a}
		},
		"ack": func() Packet {
			d, a := mustArgs(t)
			return Packet{Type: Ack, ID: 3, HasID: true, Data: d, Attachments: a}
		},
		"ack_nsp": func() Packet {
			d, a := mustArgs(t, "ok", 2.5)
			return Packet{Type: Ack, Namespace: "/chat", ID: 999999999999999, HasID: true, Data: d, Attachments: a}
		},
		"connect_error": func() Packet {
			return Packet{Type: ConnectError, Namespace: "/random", Data: json.RawMessage(`{"message":"Invalid namespace"}`)}
		},
		"binary_event": func() Packet {
			d, a := mustEvent(t, "upload", []byte("abc"))
			return Packet{Type: Event, Data: d, Attachments: a}
		},
		"binary_event_nested": func() Packet {
			d, a := mustEvent(t, "up", []any{[]byte("a"), map[string]any{"x": []byte("b"), "y": []any{[]byte("c")}}}, []byte("d"))
			return Packet{Type: Event, Namespace: "/files", ID: 4, HasID: true, Data: d, Attachments: a}
		},
		"binary_ack": func() Packet {
			d, a := mustArgs(t, []byte{})
			return Packet{Type: Ack, ID: 5, HasID: true, Data: d, Attachments: a}
		},
	}
	if len(cases) != len(build) {
		t.Fatalf("golden.json has %d cases, test knows %d", len(cases), len(build))
	}
	for _, g := range cases {
		t.Run(g.Name, func(t *testing.T) {
			mk, ok := build[g.Name]
			if !ok {
				t.Fatalf("no builder for golden case %q", g.Name)
			}
			want := mk()
			var wantAtts [][]byte
			for _, s := range g.Attachments {
				b, err := base64.StdEncoding.DecodeString(s)
				if err != nil {
					t.Fatal(err)
				}
				wantAtts = append(wantAtts, b)
			}
			text, atts := Encode(&want)
			if string(text) != g.Text {
				t.Errorf("Encode = %q\n     reference %q", text, g.Text)
			}
			if !equalAttachments(atts, wantAtts) {
				t.Errorf("attachments = %q, reference %q", atts, wantAtts)
			}

			got := decodeMessages(t, NewDecoder(nil), []byte(g.Text), wantAtts...)
			want.Type = wireType(&want)
			if want.Namespace == "" {
				want.Namespace = "/"
			}
			if !samePacket(got, &want) {
				t.Errorf("decoded %+v, want %+v", got, &want)
			}
		})
	}
}

// decodeMessages feeds a text message and its attachments to d and returns
// the packet, failing the test on any error or if the packet is not complete
// exactly after the last message.
func decodeMessages(t *testing.T, d *Decoder, text []byte, atts ...[]byte) *Packet {
	t.Helper()
	p, err := d.AddText(text)
	if err != nil {
		t.Fatalf("AddText(%q): %v", text, err)
	}
	for i, a := range atts {
		if p != nil {
			t.Fatalf("packet complete after %d of %d attachments", i, len(atts))
		}
		if p, err = d.AddBinary(a); err != nil {
			t.Fatalf("AddBinary #%d: %v", i, err)
		}
	}
	if p == nil {
		t.Fatalf("packet %q incomplete after %d attachments", text, len(atts))
	}
	return p
}

func equalAttachments(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// samePacket compares packets, treating nil and empty slices alike.
func samePacket(a, b *Packet) bool {
	return a.Type == b.Type && a.Namespace == b.Namespace && a.HasID == b.HasID &&
		(!a.HasID || a.ID == b.ID) && bytes.Equal(a.Data, b.Data) &&
		equalAttachments(a.Attachments, b.Attachments)
}
