package parser

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
)

func TestMarshalArgs(t *testing.T) {
	type point struct {
		X, Y int
		B    []byte
	}
	tests := []struct {
		name string
		args []any
		want string
		atts [][]byte
	}{
		{"none", nil, `[]`, nil},
		{"scalars", []any{"s", 1, int64(-2), uint8(3), 1.5, float32(0.25), true, false, nil}, `["s",1,-2,3,1.5,0.25,true,false,null]`, nil},
		{"big float", []any{1e21, 1e-7, 1700000000.0}, `[1e+21,1e-7,1700000000]`, nil},
		{"string escapes", []any{"a\"b\\c\n\r\t\b\f\x01<>&\u2028é\xff"}, `["a\"b\\c\n\r\t\b\f\u0001<>&` + "\u2028" + `é\ufffd"]`, nil},
		{"bytes", []any{[]byte("abc")}, `[{"_placeholder":true,"num":0}]`, [][]byte{[]byte("abc")}},
		{"nil bytes is an empty attachment", []any{[]byte(nil)}, `[{"_placeholder":true,"num":0}]`, [][]byte{{}}},
		{"nested depth first", []any{
			[]any{[]byte("a"), map[string]any{"y": []any{[]byte("c")}, "x": []byte("b")}}, []byte("d"),
		}, `[[{"_placeholder":true,"num":0},{"x":{"_placeholder":true,"num":1},"y":[{"_placeholder":true,"num":2}]}],{"_placeholder":true,"num":3}]`,
			[][]byte{[]byte("a"), []byte("b"), []byte("c"), []byte("d")}},
		{"map sorted", []any{map[string]any{"b": 2, "a": 1, "é": nil}}, `[{"a":1,"b":2,"é":null}]`, nil},
		{"nil map", []any{map[string]any(nil)}, `[null]`, nil},
		{"raw message", []any{json.RawMessage(`{"z": 1, "a": [true]}`)}, `[{"z": 1, "a": [true]}]`, nil},
		{"empty raw message", []any{json.RawMessage(nil)}, `[null]`, nil},
		{"struct via encoding/json", []any{point{1, 2, []byte("hi")}}, `[{"X":1,"Y":2,"B":"aGk="}]`, nil},
		{"no html escaping", []any{map[string]string{"h": "<a&b>"}}, `[{"h":"<a&b>"}]`, nil},
		{"typed slice", []any{[]string{"a", "b"}}, `[["a","b"]]`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, atts, err := MarshalArgs(tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			if string(data) != tt.want {
				t.Errorf("data = %s\n want %s", data, tt.want)
			}
			if !json.Valid(data) {
				t.Errorf("invalid JSON %s", data)
			}
			if !equalAttachments(atts, tt.atts) {
				t.Errorf("attachments = %q, want %q", atts, tt.atts)
			}
			if (atts == nil) != (tt.atts == nil) {
				t.Errorf("attachments nil = %v, want %v", atts == nil, tt.atts == nil)
			}
		})
	}
}

func TestMarshalEvent(t *testing.T) {
	data, atts, err := MarshalEvent("chat\"", map[string]any{"user": "ann"}, []byte{1, 2})
	if err != nil {
		t.Fatal(err)
	}
	if want := `["chat\"",{"user":"ann"},{"_placeholder":true,"num":0}]`; string(data) != want {
		t.Errorf("data = %s, want %s", data, want)
	}
	if len(atts) != 1 || !bytes.Equal(atts[0], []byte{1, 2}) {
		t.Errorf("attachments = %v", atts)
	}
	data, _, err = MarshalEvent("ping")
	if err != nil || string(data) != `["ping"]` {
		t.Errorf("MarshalEvent(ping) = %s, %v", data, err)
	}
}

func TestMarshalErrors(t *testing.T) {
	for name, arg := range map[string]any{
		"NaN":         math.NaN(),
		"Inf":         float32(math.Inf(1)),
		"nested NaN":  []any{map[string]any{"x": math.NaN()}},
		"bad raw":     json.RawMessage(`{"a":`),
		"chan":        make(chan int),
		"nested chan": map[string]any{"c": make(chan int)},
		"marshaler":   badMarshaler{},
	} {
		if data, atts, err := MarshalArgs("ok", arg); err == nil {
			t.Errorf("%s: MarshalArgs = %s, %v; want error", name, data, atts)
		}
		if _, _, err := MarshalEvent("e", arg); err == nil {
			t.Errorf("%s: MarshalEvent: want error", name)
		}
	}
}

type badMarshaler struct{}

func (badMarshaler) MarshalJSON() ([]byte, error) { return nil, errors.New("boom") }

func TestSplitArgs(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{`[]`, []string{}},
		{` [ ] `, []string{}},
		{`[1]`, []string{`1`}},
		{`["a,b]",{"x":[1,2]},[[]],null, true ,-1.5e3,"\"]"]`, []string{`"a,b]"`, `{"x":[1,2]}`, `[[]]`, `null`, `true`, `-1.5e3`, `"\"]"`}},
		{"[\n\"a\" ,\t{ } ]", []string{`"a"`, `{ }`}},
	}
	for _, tt := range tests {
		got, err := SplitArgs(json.RawMessage(tt.in))
		if err != nil {
			t.Errorf("SplitArgs(%s): %v", tt.in, err)
			continue
		}
		if got == nil {
			t.Errorf("SplitArgs(%s) = nil, want non-nil", tt.in)
		}
		gs := make([]string, len(got))
		for i, g := range got {
			gs[i] = string(g)
		}
		if !reflect.DeepEqual(gs, tt.want) {
			t.Errorf("SplitArgs(%s) = %q, want %q", tt.in, gs, tt.want)
		}
	}
	for _, bad := range []string{``, `{}`, `"x"`, `[1,]`, `[1`, `1`, `[1] x`} {
		if got, err := SplitArgs(json.RawMessage(bad)); !errors.Is(err, ErrInvalidPacket) {
			t.Errorf("SplitArgs(%q) = %q, %v; want ErrInvalidPacket", bad, got, err)
		}
	}
}

func TestEventName(t *testing.T) {
	tests := []struct {
		in, name string
		args     int
	}{
		{`["chat"]`, "chat", 0},
		{`["chat",1,{"a":2}]`, "chat", 2},
		{`[ "a\"b\u00e9" , 1]`, "a\"bé", 1},
		{`[""]`, "", 0},
	}
	for _, tt := range tests {
		name, args, err := EventName(json.RawMessage(tt.in))
		if err != nil || name != tt.name || len(args) != tt.args {
			t.Errorf("EventName(%s) = %q, %d args, %v; want %q, %d", tt.in, name, len(args), err, tt.name, tt.args)
		}
	}
	for _, bad := range []string{`[]`, `[1,"a"]`, `[{"toString":"x"}]`, `[null]`, `{}`, `"x"`, `[`} {
		if name, _, err := EventName(json.RawMessage(bad)); !errors.Is(err, ErrInvalidPacket) {
			t.Errorf("EventName(%s) = %q, %v; want ErrInvalidPacket", bad, name, err)
		}
	}
}

func TestIsPlaceholder(t *testing.T) {
	tests := []struct {
		in  string
		num int
		ok  bool
	}{
		{`{"_placeholder":true,"num":0}`, 0, true},
		{` {"num":3, "_placeholder" : true} `, 3, true},
		{`{"_placeholder":true,"num":2,"extra":[1]}`, 2, true},
		{`{"_placeholde\u0072":true,"num":1}`, 1, true},
		{`{"_placeholder":true,"num":1.0}`, 1, true},
		{`{"_placeholder":true,"num":"1"}`, 0, false},
		{`{"_placeholder":true,"num":"splice"}`, 0, false},
		{`{"_placeholder":true,"num":-1}`, 0, false},
		{`{"_placeholder":true,"num":0.5}`, 0, false},
		{`{"_placeholder":true,"num":99999999999}`, 0, false},
		{`{"_placeholder":true}`, 0, false},
		{`{"_placeholder":false,"num":0}`, 0, false},
		{`{"_placeholder":"true","num":0}`, 0, false},
		{`{"_placeholder":true,"_placeholder":false,"num":0}`, 0, false},
		{`{"num":0}`, 0, false},
		{`[{"_placeholder":true,"num":0}]`, 0, false},
		{`{"_placeholder":true,"num":0`, 0, false},
		{``, 0, false},
		{`0`, 0, false},
	}
	for _, tt := range tests {
		num, ok := IsPlaceholder(json.RawMessage(tt.in))
		if num != tt.num || ok != tt.ok {
			t.Errorf("IsPlaceholder(%s) = %d, %v; want %d, %v", tt.in, num, ok, tt.num, tt.ok)
		}
	}
}

func TestUnmarshal(t *testing.T) {
	atts := [][]byte{[]byte("zero"), []byte("one")}

	var b []byte
	if err := Unmarshal(json.RawMessage(`{"_placeholder":true,"num":1}`), atts, &b); err != nil || string(b) != "one" {
		t.Errorf("*[]byte placeholder = %q, %v", b, err)
	}
	if err := Unmarshal(json.RawMessage(`"aGk="`), atts, &b); err != nil || string(b) != "hi" {
		t.Errorf("*[]byte base64 = %q, %v", b, err)
	}
	for _, bad := range []string{`{"_placeholder":true,"num":2}`, `{"_placeholder":true,"num":"splice"}`, `{"_placeholder":true}`} {
		if err := Unmarshal(json.RawMessage(bad), atts, &b); !errors.Is(err, ErrInvalidPacket) {
			t.Errorf("*[]byte %s: err = %v, want ErrInvalidPacket", bad, err)
		}
	}

	var v any
	raw := `{"list":[{"_placeholder":true,"num":0},{"deep":{"_placeholder":true,"num":1}}],"n":1.5,"s":"x","p":{"_placeholder":false,"num":9}}`
	if err := Unmarshal(json.RawMessage(raw), atts, &v); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"list": []any{[]byte("zero"), map[string]any{"deep": []byte("one")}},
		"n":    1.5, "s": "x",
		"p": map[string]any{"_placeholder": false, "num": 9.0},
	}
	if !reflect.DeepEqual(v, want) {
		t.Errorf("*any = %#v\nwant %#v", v, want)
	}
	for _, bad := range []string{`[{"_placeholder":true,"num":2}]`, `{"a":{"_placeholder":true,"num":"splice"}}`, `{"_placeholder":true,"num":-1}`, `{"_placeholder":true,"num":0.5}`} {
		if err := Unmarshal(json.RawMessage(bad), atts, &v); !errors.Is(err, ErrInvalidPacket) {
			t.Errorf("*any %s: err = %v, want ErrInvalidPacket", bad, err)
		}
	}
	// Without attachments (a non-binary packet) placeholder-like objects are data.
	if err := Unmarshal(json.RawMessage(`{"_placeholder":true,"num":"splice"}`), nil, &v); err != nil ||
		!reflect.DeepEqual(v, map[string]any{"_placeholder": true, "num": "splice"}) {
		t.Errorf("*any placeholder without attachments = %#v, %v", v, err)
	}
	if err := Unmarshal(json.RawMessage(`{"_placeholder":true,"num":0}`), nil, &b); err == nil {
		t.Errorf("*[]byte placeholder without attachments = %q, want error", b)
	}

	var s struct{ A int }
	if err := Unmarshal(json.RawMessage(`{"A":3}`), atts, &s); err != nil || s.A != 3 {
		t.Errorf("struct = %+v, %v", s, err)
	}
	var str string
	if err := Unmarshal(json.RawMessage(`1`), atts, &str); err == nil {
		t.Error("number into string: want error")
	}
	if err := Unmarshal(json.RawMessage(`{`), atts, &v); err == nil {
		t.Error("invalid JSON into *any: want error")
	}
}

// TestMarshalUnmarshal round-trips values with binary parts through a packet.
func TestMarshalUnmarshal(t *testing.T) {
	args := []any{"text", []byte("bin"), map[string]any{"file": []byte{0, 1, 2}, "meta": []any{"m", []byte{}}}, 3.0}
	data, atts, err := MarshalEvent("upload", args...)
	if err != nil {
		t.Fatal(err)
	}
	text, bins := Encode(&Packet{Type: Event, Namespace: "/f", Data: data, Attachments: atts})
	if !strings.HasPrefix(string(text), "53-/f,[") {
		t.Fatalf("text = %s", text)
	}
	p := decodeMessages(t, NewDecoder(nil), text, bins...)
	name, raw, err := EventName(p.Data)
	if err != nil || name != "upload" || len(raw) != len(args) {
		t.Fatalf("EventName = %q, %d, %v", name, len(raw), err)
	}
	for i, r := range raw {
		var v any
		if err := Unmarshal(r, p.Attachments, &v); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(v, args[i]) {
			t.Errorf("arg %d = %#v, want %#v", i, v, args[i])
		}
	}
}

func cyclic() any {
	s := []any{nil}
	s[0] = s
	return map[string]any{"s": s}
}

// A decoded packet's EventName and Args skip re-validating its Data, and
// validate again once Data was replaced.
func TestPacketEventNameAndArgs(t *testing.T) {
	d := NewDecoder(nil)
	p, err := d.AddText([]byte(`2/chat,7[ "hi" , {"a":[1,2]}, "x\u00e9"]`))
	if err != nil || p == nil {
		t.Fatalf("decode: %v %v", p, err)
	}
	name, args, err := p.EventName()
	wantName, wantArgs, wantErr := EventName(p.Data)
	if err != nil || wantErr != nil || name != "hi" || name != wantName || len(args) != 2 ||
		string(args[0]) != string(wantArgs[0]) || string(args[1]) != `"x\u00e9"` {
		t.Fatalf("EventName = %q %q %v, EventName(Data) = %q %q %v", name, args, err, wantName, wantArgs, wantErr)
	}
	all, err := p.Args()
	if err != nil || len(all) != 3 || string(all[1]) != `{"a":[1,2]}` {
		t.Fatalf("Args = %q %v", all, err)
	}

	p.Data = json.RawMessage(`["hi",{"a":]`)
	if _, _, err := p.EventName(); !errors.Is(err, ErrInvalidPacket) {
		t.Errorf("EventName of replaced invalid Data: %v, want ErrInvalidPacket", err)
	}
	if _, err := p.Args(); !errors.Is(err, ErrInvalidPacket) {
		t.Errorf("Args of replaced invalid Data: %v, want ErrInvalidPacket", err)
	}
	built := &Packet{Type: Event, Data: json.RawMessage(`{"not":"array"}`)}
	if _, err := built.Args(); !errors.Is(err, ErrInvalidPacket) {
		t.Errorf("Args of an object: %v, want ErrInvalidPacket", err)
	}
}
