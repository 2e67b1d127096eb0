package redis

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-io/switchboard"
	"github.com/switchboard-io/switchboard/parser"
)

// golden is one entry of testdata/msgpack_golden.json, written by
// testdata/gen_msgpack_golden.js with @msgpack/msgpack (the Node adapter's
// codec).
type golden struct {
	Value  json.RawMessage `json:"value"`
	Hex    string          `json:"hex"`
	Len    int             `json:"len"`
	SHA256 string          `json:"sha256"`
}

func loadGolden(t testing.TB) []golden {
	b, err := os.ReadFile(filepath.Join("testdata", "msgpack_golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	var g []golden
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	return g
}

// expand turns the golden file's specs ($bin, $str, $arr, $fill) into tree
// values.
func expand(v any) any {
	switch x := v.(type) {
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = expand(e)
		}
		return out
	case obj:
		n, _ := getNumber(x, "n")
		if s, ok := x.get("$bin"); ok {
			b, _ := base64.StdEncoding.DecodeString(s.(string))
			return b
		}
		if s, ok := x.get("$str"); ok {
			return strings.Repeat(s.(string), int(n))
		}
		if e, ok := x.get("$arr"); ok {
			out := make([]any, int(n))
			for i := range out {
				out[i] = expand(e)
			}
			return out
		}
		if f, ok := getNumber(x, "$fill"); ok {
			return bytes.Repeat([]byte{byte(f)}, int(n))
		}
		out := make(obj, len(x))
		for i, e := range x {
			out[i] = kv{e.Key, expand(e.Val)}
		}
		return out
	}
	return v
}

func checkGolden(t *testing.T, what string, g golden, got []byte) {
	t.Helper()
	if g.Hex != "" {
		if h := hex.EncodeToString(got); h != g.Hex {
			t.Errorf("%s: encoded %s\n want %s", what, h, g.Hex)
		}
		return
	}
	sum := sha256.Sum256(got)
	if len(got) != g.Len || hex.EncodeToString(sum[:]) != g.SHA256 {
		t.Errorf("%s: encoded %d bytes (sha256 %x), want %d bytes (sha256 %s)", what, len(got), sum, g.Len, g.SHA256)
	}
}

// TestMsgpackGolden checks that the Go codec writes exactly what
// @msgpack/msgpack writes for the same values, and reads it back.
func TestMsgpackGolden(t *testing.T) {
	for _, g := range loadGolden(t) {
		what := string(g.Value)
		if len(what) > 60 {
			what = what[:60] + "..."
		}
		if what == "9007199254740992" {
			// JavaScript has no integer above 2^53-1 and writes a float64;
			// Go keeps an integer it was given exactly.
			continue
		}
		tree, err := jsonToTree(g.Value, nil)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		v := expand(tree)
		enc := appendMsgpack(nil, v)
		checkGolden(t, what, g, enc)
		dec, err := decodeMsgpack(enc)
		if err != nil {
			t.Fatalf("%s: decode: %v", what, err)
		}
		if again := appendMsgpack(nil, dec); !bytes.Equal(again, enc) {
			t.Errorf("%s: decode+encode changed the bytes", what)
		}
	}
}

// TestPubSubPayloadGolden builds a broadcast-with-ack request the way the
// adapter publishes it and compares it with the Node adapter's bytes for
// the same message (the last golden entry).
func TestPubSubPayloadGolden(t *testing.T) {
	gs := loadGolden(t)
	g := gs[len(gs)-1]
	data, atts, err := parser.MarshalEvent("ev", []byte{0, 1, 2}, map[string]any{"nested": []any{1, "two"}})
	if err != nil {
		t.Fatal(err)
	}
	p := &parser.Packet{Type: parser.Event, Namespace: "/", Data: data, Attachments: atts}
	opts := switchboard.BroadcastOptions{Rooms: []string{"r1"}, Flags: switchboard.BroadcastFlags{Timeout: 5 * time.Second}}
	d, err := encodeBroadcast(p, opts, "0123456789abcdef")
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "broadcast with ack", g, pubSubPayload("2a0ecab340ec8615", "/", typeBroadcast, d))

	// And reading it back gives the same event.
	m, err := decodePubSub(pubSubPayload("2a0ecab340ec8615", "/", typeBroadcast, d))
	if err != nil {
		t.Fatal(err)
	}
	b, err := decodeBroadcast(m)
	if err != nil {
		t.Fatal(err)
	}
	if string(b.data) != string(data) || !reflect.DeepEqual(b.atts, atts) || b.requestID != "0123456789abcdef" ||
		!reflect.DeepEqual(b.opts.Rooms, []string{"r1"}) || b.opts.Flags.Timeout != 5*time.Second {
		t.Errorf("decoded %+v", b)
	}
}

// TestStreamEntryFormat checks the stream fields of every persistent
// message type against the Node adapter's format.
func TestStreamEntryFormat(t *testing.T) {
	opts := switchboard.BroadcastOptions{Rooms: []string{"room1"}, Except: []string{"room2"}}
	p := &parser.Packet{Type: parser.Event, Namespace: "/", Data: json.RawMessage(`["room-msg",42]`)}
	d, err := encodeBroadcast(p, opts, "")
	if err != nil {
		t.Fatal(err)
	}
	vals, err := streamValues("2a0ecab340ec8615", "/", typeBroadcast, d)
	if err != nil {
		t.Fatal(err)
	}
	want := []any{"uid", "2a0ecab340ec8615", "nsp", "/", "type", "3", "data",
		`{"packet":{"type":2,"data":["room-msg",42]},"opts":{"rooms":["room1"],"except":["room2"],"flags":{}}}`}
	if !reflect.DeepEqual(vals, want) {
		t.Errorf("broadcast entry:\n got %q\nwant %q", vals, want)
	}

	vol := switchboard.BroadcastOptions{Flags: switchboard.BroadcastFlags{Volatile: true}}
	join, _ := treeToJSON(obj{{"opts", optsTree(vol)}, {"rooms", strs([]string{"a", "b"})}})
	vals, _ = streamValues("u", "/chat", typeSocketsJoin, join)
	if got := vals[7]; got != `{"opts":{"rooms":[],"except":[],"flags":{"volatile":true}},"rooms":["a","b"]}` {
		t.Errorf("socketsJoin data = %s", got)
	}
	disc, _ := treeToJSON(obj{{"opts", optsTree(switchboard.BroadcastOptions{})}, {"close", false}})
	vals, _ = streamValues("u", "/", typeDisconnectSockets, disc)
	if got := vals[5:]; !reflect.DeepEqual(got, []any{"6", "data", `{"opts":{"rooms":[],"except":[],"flags":{}},"close":false}`}) {
		t.Errorf("disconnectSockets fields = %q", got)
	}

	// Binary: base64(msgpack(data)), decoded back to the same packet.
	bp := &parser.Packet{Type: parser.Event, Namespace: "/", Data: json.RawMessage(`["b",{"_placeholder":true,"num":0}]`), Attachments: [][]byte{{1, 2}}}
	d, _ = encodeBroadcast(bp, switchboard.BroadcastOptions{}, "")
	vals, _ = streamValues("u", "/", typeBroadcast, d)
	field := vals[7].(string)
	if strings.HasPrefix(field, "{") {
		t.Fatalf("binary data written as JSON: %s", field)
	}
	m, err := decodeStreamEntry(map[string]any{"uid": "u", "nsp": "/", "type": "3", "data": field})
	if err != nil {
		t.Fatal(err)
	}
	b, err := decodeBroadcast(m)
	if err != nil || string(b.data) != string(bp.Data) || !bytes.Equal(b.atts[0], []byte{1, 2}) {
		t.Errorf("binary entry decoded to %+v, %v", b, err)
	}
}

func TestAppendOffset(t *testing.T) {
	for in, want := range map[string]string{
		`["a"]`:         `["a","1-0"]`,
		`[]`:            `["1-0"]`,
		` [ "a" , 1 ] `: `[ "a" , 1 ,"1-0"]`,
		`[ ]`:           `[ "1-0"]`,
	} {
		if got := string(appendOffset(json.RawMessage(in), "1-0")); got != want {
			t.Errorf("appendOffset(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestNextOffsetAndHash(t *testing.T) {
	if got := nextOffset("1700000000000-41"); got != "1700000000000-42" {
		t.Errorf("nextOffset = %s", got)
	}
	// Values computed with the Node adapter's hashCode.
	for s, want := range map[string]int32{"/": 47, "/chat": 46457863, "/admin": 1438238848, "": 0, "/é😀": 3396989} {
		if got := jsHashCode(s); got != want {
			t.Errorf("jsHashCode(%q) = %d, want %d", s, got, want)
		}
	}
	c := New(nil, &Options{StreamCount: 3})
	if got := c.streamFor("/admin"); got != "socket.io-1" {
		t.Errorf("streamFor(/admin) = %s", got)
	}
}

func TestSessionRoundTrip(t *testing.T) {
	// A session as the Node adapter writes it: base64(msgpack({sid, pid,
	// rooms, data})).
	enc := base64.StdEncoding.EncodeToString(appendMsgpack(nil, obj{
		{"sid", "s1"}, {"pid", "p1"}, {"rooms", []any{"s1", "r"}}, {"data", obj{{"user", "ann"}, {"n", int64(3)}}},
	}))
	st, err := decodeSession(enc)
	if err != nil {
		t.Fatal(err)
	}
	want := &switchboard.SessionState{SID: "s1", PID: "p1", Rooms: []string{"s1", "r"}, Data: map[string]any{"user": "ann", "n": 3.0}}
	if !reflect.DeepEqual(st, want) {
		t.Errorf("decoded %+v, want %+v", st, want)
	}
	// socket.io's default data {} is Go's nil.
	enc = base64.StdEncoding.EncodeToString(appendMsgpack(nil, obj{{"sid", "s"}, {"pid", "p"}, {"rooms", []any{}}, {"data", obj{}}}))
	if st, err := decodeSession(enc); err != nil || st.Data != nil {
		t.Errorf("empty data decoded to %#v, %v", st, err)
	}
}

func FuzzDecodeMsgpack(f *testing.F) {
	for _, g := range loadGolden(f) {
		if b, err := hex.DecodeString(g.Hex); err == nil && g.Hex != "" {
			f.Add(b)
		}
	}
	f.Add([]byte{0xdd, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0xc7, 0x0c, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := decodeMsgpack(b)
		if err != nil {
			return
		}
		enc := appendMsgpack(nil, v)
		v2, err := decodeMsgpack(enc)
		if err != nil {
			t.Fatalf("re-encoded value does not decode: %v", err)
		}
		if !bytes.Equal(appendMsgpack(nil, v2), enc) {
			t.Fatal("encoding is not stable")
		}
		// Any decoded value converts to JSON that the tree decoder reads.
		j, atts := treeToJSON(v)
		if _, err := jsonToTree(j, atts); err != nil {
			t.Fatalf("treeToJSON wrote %s: %v", j, err)
		}
	})
}

func FuzzStreamEntry(f *testing.F) {
	f.Add("3", `{"packet":{"type":2,"data":["a",1]},"opts":{"rooms":[],"except":[],"flags":{}}}`)
	f.Add("3", base64.StdEncoding.EncodeToString(appendMsgpack(nil, obj{{"packet", obj{{"type", int64(2)}, {"data", []any{"e", []byte{1}}}}}})))
	f.Add("4", `{"opts":{"rooms":["x"],"except":[],"flags":{}},"rooms":["a"]}`)
	f.Add("3", `{"packet":{"type":2,"data":"nope"}}`)
	f.Fuzz(func(t *testing.T, typ, data string) {
		m, err := decodeStreamEntry(map[string]any{"uid": "u", "nsp": "/", "type": typ, "data": data})
		if err != nil {
			return
		}
		if m.typ == typeBroadcast {
			if b, err := decodeBroadcast(m); err == nil {
				out := appendOffset(b.data, "1-1")
				if !json.Valid(out) {
					t.Fatalf("offset appended to %s gives invalid JSON %s", b.data, out)
				}
			}
		}
		_, _ = m.tree()
	})
}
