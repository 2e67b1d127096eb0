package parser

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// FuzzDecoder feeds a connection's worth of messages to one Decoder. The
// input is split at '\x1e' (as in an Engine.IO polling payload) into
// messages; a message starting with 'b' is binary (the rest, raw), any other
// is text. The decoder must never panic, must wrap ErrInvalidPacket in every
// error, and every packet it returns must be well formed and must re-encode
// to messages that decode to the same packet.
//
// Seed corpus: testdata/fuzz/FuzzDecoder.
func FuzzDecoder(f *testing.F) {
	f.Add([]byte(`2["chat",{"user":"ann"}]`))
	f.Add([]byte("51-/up,3[\"f\",{\"_placeholder\":true,\"num\":0}]\x1ebhello"))
	f.Fuzz(func(t *testing.T, input []byte) {
		d := NewDecoder(&DecoderOptions{MaxAttachments: 4})
		for _, msg := range bytes.Split(input, []byte{0x1e}) {
			var p *Packet
			var err error
			if len(msg) > 0 && msg[0] == 'b' {
				p, err = d.AddBinary(msg[1:])
			} else {
				p, err = d.AddText(msg)
			}
			if err != nil {
				if !errors.Is(err, ErrInvalidPacket) {
					t.Fatalf("error %v does not wrap ErrInvalidPacket", err)
				}
				if d.Pending() != 0 {
					t.Fatalf("Pending = %d after error", d.Pending())
				}
				continue
			}
			if p != nil {
				checkPacket(t, p)
			}
		}
	})
}

// checkPacket asserts the invariants of a decoded packet and that it
// survives re-encoding.
func checkPacket(t *testing.T, p *Packet) {
	t.Helper()
	if p.Type > BinaryAck {
		t.Fatalf("type %d", p.Type)
	}
	if !strings.HasPrefix(p.Namespace, "/") || strings.Contains(p.Namespace, ",") {
		t.Fatalf("namespace %q", p.Namespace)
	}
	if p.HasID && p.ID > 999999999999999 {
		t.Fatalf("id %d", p.ID)
	}
	if !isBinary(p.Type) && p.Attachments != nil {
		t.Fatalf("%s with attachments", p.Type)
	}
	if p.Data != nil && !json.Valid(p.Data) {
		t.Fatalf("invalid JSON data %q", p.Data)
	}
	switch p.Type {
	case Event, BinaryEvent:
		if _, _, err := EventName(p.Data); err != nil {
			t.Fatalf("EventName(%q): %v", p.Data, err)
		}
	case Ack, BinaryAck:
		if _, err := SplitArgs(p.Data); err != nil {
			t.Fatalf("SplitArgs(%q): %v", p.Data, err)
		}
	case Disconnect:
		if p.Data != nil {
			t.Fatalf("DISCONNECT data %q", p.Data)
		}
	}
	if isBinary(p.Type) {
		// Every placeholder must resolve.
		var v any
		if err := Unmarshal(p.Data, p.Attachments, &v); err != nil {
			t.Fatalf("Unmarshal(%q) with %d attachments: %v", p.Data, len(p.Attachments), err)
		}
	}

	text, atts := Encode(p)
	if got := AppendEncode([]byte("x"), p); string(got[1:]) != string(text) {
		t.Fatalf("AppendEncode %q != Encode %q", got[1:], text)
	}
	again := decodeMessages(t, NewDecoder(&DecoderOptions{MaxAttachments: len(p.Attachments)}), text, atts...)
	if !samePacket(again, p) {
		t.Fatalf("re-decoded %+v\nwant        %+v\n(text %q)", again, p, text)
	}
}

// FuzzRoundTrip builds packets of every type from fuzzed fields with
// MarshalEvent/MarshalArgs, encodes them, decodes them and checks that the
// packet and its arguments (including binary ones) come back unchanged.
//
// Seed corpus: testdata/fuzz/FuzzRoundTrip.
func FuzzRoundTrip(f *testing.F) {
	f.Add(uint8(2), "/chat", uint64(7), true, "message", "hello", []byte("bin"), uint8(2))
	f.Fuzz(func(t *testing.T, typ uint8, nsp string, id uint64, hasID bool, name, arg string, bin []byte, nbin uint8) {
		p := Packet{Type: PacketType(typ % 7), Namespace: "/" + strings.ReplaceAll(nsp, ",", ""), ID: id % 1e15, HasID: hasID}
		nbin %= 4
		var bins []any
		for i := range int(nbin) {
			bins = append(bins, append([]byte{byte(i)}, bin...))
		}
		var err error
		switch p.Type {
		case Connect:
			p.Data, _, err = MarshalArgs(map[string]any{"token": arg})
			p.Data = p.Data[1 : len(p.Data)-1]
		case Disconnect:
		case ConnectError:
			p.Data, _, err = MarshalArgs(arg)
			p.Data = p.Data[1 : len(p.Data)-1]
		case Event, BinaryEvent:
			p.Data, p.Attachments, err = MarshalEvent(name, append([]any{arg, map[string]any{"b": bins}}, bins...)...)
		case Ack, BinaryAck:
			p.Data, p.Attachments, err = MarshalArgs(append([]any{arg}, bins...)...)
		}
		if err != nil {
			t.Fatal(err)
		}
		text, atts := Encode(&p)
		got := decodeMessages(t, NewDecoder(nil), text, atts...)
		want := p
		want.Type = wireType(&p)
		if !samePacket(got, &want) {
			t.Fatalf("decoded %+v\nwant    %+v\n(text %q)", got, &want, text)
		}
		checkPacket(t, got)

		wantArg := string([]rune(arg)) // invalid UTF-8 becomes U+FFFD
		var args []json.RawMessage
		switch p.Type {
		case Event, BinaryEvent:
			var gotName string
			gotName, args, err = EventName(got.Data)
			if err != nil || gotName != string([]rune(name)) {
				t.Fatalf("EventName = %q, %v; want %q", gotName, err, name)
			}
		case Ack, BinaryAck:
			if args, err = SplitArgs(got.Data); err != nil {
				t.Fatal(err)
			}
		default:
			return
		}
		var s string
		if err := Unmarshal(args[0], got.Attachments, &s); err != nil || s != wantArg {
			t.Fatalf("arg = %q, %v; want %q", s, err, wantArg)
		}
		if len(args) != 1+len(bins)+boolInt(p.Type == Event || p.Type == BinaryEvent) {
			t.Fatalf("%d args for %d binaries", len(args), len(bins))
		}
		for i, b := range bins {
			var gb []byte
			if err := Unmarshal(args[len(args)-len(bins)+i], got.Attachments, &gb); err != nil || !bytes.Equal(gb, b.([]byte)) {
				t.Fatalf("binary %d = %q, %v; want %q", i, gb, err, b)
			}
		}
	})
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
