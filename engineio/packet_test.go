package engineio_test

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/switchboard-io/switchboard/engineio"
)

func TestAppendPacket(t *testing.T) {
	for _, tc := range []struct {
		p       engineio.Packet
		polling bool
		want    string
	}{
		{engineio.Packet{Type: engineio.Open, Data: []byte(`{"sid":"x"}`)}, true, `0{"sid":"x"}`},
		{engineio.Packet{Type: engineio.Close}, true, "1"},
		{engineio.Packet{Type: engineio.Ping, Data: []byte("probe")}, false, "2probe"},
		{engineio.Packet{Type: engineio.Pong}, false, "3"},
		{engineio.Packet{Type: engineio.MessagePacket, Data: []byte("héllo")}, true, "4héllo"},
		{engineio.Packet{Type: engineio.MessagePacket}, false, "4"},
		{engineio.Packet{Type: engineio.Upgrade}, true, "5"},
		{engineio.Packet{Type: engineio.Noop}, true, "6"},
		{engineio.Packet{Type: engineio.MessagePacket, Data: []byte{1, 2, 3}, Binary: true}, true, "bAQID"},
		{engineio.Packet{Type: engineio.MessagePacket, Data: []byte{1, 2, 3}, Binary: true}, false, "\x01\x02\x03"},
		{engineio.Packet{Type: engineio.MessagePacket, Data: nil, Binary: true}, true, "b"},
	} {
		if got := string(engineio.AppendPacket([]byte("pre"), tc.p, tc.polling)); got != "pre"+tc.want {
			t.Errorf("AppendPacket(%+v, %v) = %q, want %q", tc.p, tc.polling, got, "pre"+tc.want)
		}
	}
}

func TestDecodePacket(t *testing.T) {
	for _, tc := range []struct {
		in     string
		binary bool
		want   engineio.Packet
		err    bool
	}{
		{"4hello", false, engineio.Packet{Type: engineio.MessagePacket, Data: []byte("hello")}, false},
		{"4", false, engineio.Packet{Type: engineio.MessagePacket, Data: []byte{}}, false},
		{"2probe", false, engineio.Packet{Type: engineio.Ping, Data: []byte("probe")}, false},
		{"3", false, engineio.Packet{Type: engineio.Pong, Data: []byte{}}, false},
		{"6", false, engineio.Packet{Type: engineio.Noop, Data: []byte{}}, false},
		{"bAQID", false, engineio.Packet{Type: engineio.MessagePacket, Data: []byte{1, 2, 3}, Binary: true}, false},
		{"bAQI", false, engineio.Packet{Type: engineio.MessagePacket, Data: []byte{1, 2}, Binary: true}, false}, // unpadded
		{"b", false, engineio.Packet{Type: engineio.MessagePacket, Data: []byte{}, Binary: true}, false},
		{"\x00\xff", true, engineio.Packet{Type: engineio.MessagePacket, Data: []byte{0, 0xff}, Binary: true}, false},
		{"", true, engineio.Packet{Type: engineio.MessagePacket, Data: []byte{}, Binary: true}, false},
		{"", false, engineio.Packet{}, true},
		{"7", false, engineio.Packet{}, true},
		{"/", false, engineio.Packet{}, true},
		{"x4", false, engineio.Packet{}, true},
		{"b!!", false, engineio.Packet{}, true},
		{"bA", false, engineio.Packet{}, true},
	} {
		got, err := engineio.DecodePacket([]byte(tc.in), tc.binary)
		if tc.err {
			if !errors.Is(err, engineio.ErrInvalidPacket) {
				t.Errorf("DecodePacket(%q): err %v, want ErrInvalidPacket", tc.in, err)
			}
			continue
		}
		if err != nil || got.Type != tc.want.Type || got.Binary != tc.want.Binary || !bytes.Equal(got.Data, tc.want.Data) {
			t.Errorf("DecodePacket(%q, %v) = %+v, %v; want %+v", tc.in, tc.binary, got, err, tc.want)
		}
	}
}

func TestPayloadRoundTrip(t *testing.T) {
	packets := []engineio.Packet{
		{Type: engineio.MessagePacket, Data: []byte("hello")},
		{Type: engineio.MessagePacket, Data: []byte{0, 0x1e, 0xff}, Binary: true},
		{Type: engineio.Ping, Data: []byte{}},
		{Type: engineio.MessagePacket, Data: []byte("€")},
	}
	body := engineio.AppendPayload(nil, packets)
	if want := "4hello\x1ebAB7/\x1e2\x1e4€"; string(body) != want {
		t.Fatalf("AppendPayload = %q, want %q", body, want)
	}
	got, err := engineio.DecodePayload(body)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, packets) {
		t.Errorf("DecodePayload = %+v, want %+v", got, packets)
	}
}

func TestDecodePayloadErrors(t *testing.T) {
	for _, in := range []string{"", "\x1e", "4a\x1e", "\x1e4a", "4a\x1e\x1e4b", "4a\x1e9", "4a\x1eb%"} {
		if _, err := engineio.DecodePayload([]byte(in)); !errors.Is(err, engineio.ErrInvalidPacket) {
			t.Errorf("DecodePayload(%q): %v, want ErrInvalidPacket", in, err)
		}
	}
}

func TestPacketTypeString(t *testing.T) {
	if engineio.MessagePacket.String() != "message" || engineio.Noop.String() != "noop" || !strings.Contains(engineio.PacketType('x').String(), "x") {
		t.Error("PacketType.String")
	}
}

// FuzzDecodePayload: no panic; whatever decodes re-encodes to a payload
// that decodes to the same packets.
func FuzzDecodePayload(f *testing.F) {
	for _, s := range []string{"4hello", "4a\x1ebAQID\x1e2probe", "b", "", "\x1e\x1e", "6", "bAQI", "0{\"sid\":\"x\"}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		packets, err := engineio.DecodePayload(body)
		if err != nil {
			if !errors.Is(err, engineio.ErrInvalidPacket) {
				t.Fatalf("error not ErrInvalidPacket: %v", err)
			}
			return
		}
		if len(packets) == 0 {
			t.Fatal("no packets and no error")
		}
		again, err := engineio.DecodePayload(engineio.AppendPayload(nil, packets))
		if err != nil {
			t.Fatalf("re-encoded payload invalid: %v", err)
		}
		if len(again) != len(packets) {
			t.Fatalf("%d packets, %d after round trip", len(packets), len(again))
		}
		for i := range packets {
			a, b := packets[i], again[i]
			if a.Type != b.Type || a.Binary != b.Binary || !bytes.Equal(a.Data, b.Data) {
				t.Fatalf("packet %d: %+v became %+v", i, a, b)
			}
		}
	})
}
