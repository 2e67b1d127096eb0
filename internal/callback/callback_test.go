package callback

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

func raws(vals ...string) []json.RawMessage {
	out := make([]json.RawMessage, len(vals))
	for i, v := range vals {
		out[i] = json.RawMessage(v)
	}
	return out
}

func TestCallDecodesTypedParameters(t *testing.T) {
	type msg struct {
		Text string `json:"text"`
	}
	var gotN int
	var gotS string
	var gotM msg
	var gotB []byte
	f, err := New(func(n int, s string, m msg, b []byte) { gotN, gotS, gotM, gotB = n, s, m, b })
	if err != nil {
		t.Fatal(err)
	}
	if f.WantsAck() {
		t.Error("WantsAck for a handler without an ack parameter")
	}
	err = f.Call(raws(`7`, `"x"`, `{"text":"hi"}`, `{"_placeholder":true,"num":0}`, `"extra"`), [][]byte{{1, 2}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if gotN != 7 || gotS != "x" || gotM.Text != "hi" || !reflect.DeepEqual(gotB, []byte{1, 2}) {
		t.Fatalf("got %d %q %+v %v", gotN, gotS, gotM, gotB)
	}
}

func TestMissingArgumentsAreZero(t *testing.T) {
	called := false
	f, _ := New(func(n int, s string) { called = n == 0 && s == "" })
	if err := f.Call(nil, nil, nil); err != nil || !called {
		t.Fatalf("called=%v err=%v", called, err)
	}
}

func TestAckParameter(t *testing.T) {
	f, err := New(func(s string, ack AckFunc) { ack(s + "!") })
	if err != nil || !f.WantsAck() {
		t.Fatalf("New: %v, WantsAck %v", err, f.WantsAck())
	}
	var answered []any
	if err := f.Call(raws(`"hey"`), nil, func(args ...any) { answered = args }); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(answered, []any{"hey!"}) {
		t.Fatalf("ack got %v", answered)
	}
	// No ack requested by the sender: the handler still gets a usable func.
	if err := f.Call(raws(`"hey"`), nil, nil); err != nil {
		t.Fatal(err)
	}
}

func TestVariadicAndArgs(t *testing.T) {
	var rest []string
	f, _ := New(func(first int, more ...string) { rest = more })
	if err := f.Call(raws(`1`, `"a"`, `"b"`), nil, nil); err != nil || !reflect.DeepEqual(rest, []string{"a", "b"}) {
		t.Fatalf("rest = %v, %v", rest, err)
	}
	var got Args
	g, _ := New(func(a Args, ack AckFunc) { got = a; ack(a.Echo()...) })
	var echoed []any
	if err := g.Call(raws(`1`, `{"_placeholder":true,"num":0}`), [][]byte{{9}}, func(args ...any) { echoed = args }); err != nil {
		t.Fatal(err)
	}
	if got.Len() != 2 || !reflect.DeepEqual(echoed, []any{json.RawMessage(`1`), []byte{9}}) {
		t.Fatalf("args %v, echoed %#v", got, echoed)
	}
	var b []byte
	if err := got.Decode(1, &b); err != nil || !reflect.DeepEqual(b, []byte{9}) {
		t.Fatalf("Decode binary: %v %v", b, err)
	}
	if err := got.Decode(2, &b); err == nil {
		t.Fatal("Decode out of range succeeded")
	}
	if got.String() != `[1,{"_placeholder":true,"num":0}]` {
		t.Fatalf("String() = %s", got.String())
	}
}

func TestBadShapesAndErrors(t *testing.T) {
	for name, fn := range map[string]any{
		"not a func":      42,
		"nil func":        (func())(nil),
		"ack not last":    func(ack AckFunc, s string) {},
		"args with more":  func(a Args, s string) {},
		"variadic + ack?": func(s ...string) {},
	} {
		_, err := New(fn)
		if name == "variadic + ack?" {
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
	boom := errors.New("boom")
	f, _ := New(func(int) error { return boom })
	if err := f.Call(raws(`1`), nil, nil); !errors.Is(err, boom) {
		t.Fatalf("handler error not returned: %v", err)
	}
	g, _ := New(func(n int) {})
	if err := g.Call(raws(`"not a number"`), nil, nil); err == nil {
		t.Fatal("decoding a string into int succeeded")
	}
}

func TestEchoRawAndNested(t *testing.T) {
	a := Args{Raw: raws(`1.50`, `{"a":[1,{"_placeholder":true,"num":1}]}`, `{"_placeholder":true,"num":0}`, `"s"`), Attachments: [][]byte{{1}, {2}}}
	got := a.Echo()
	want := []any{json.RawMessage(`1.50`), map[string]any{"a": []any{float64(1), []byte{2}}}, []byte{1}, json.RawMessage(`"s"`)}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Echo = %#v", got)
	}
	// Without attachments nothing is a placeholder: every value stays raw.
	b := Args{Raw: raws(`{"_placeholder":true,"num":0}`, `[1,2]`)}
	if got := b.Echo(); !reflect.DeepEqual(got, []any{json.RawMessage(`{"_placeholder":true,"num":0}`), json.RawMessage(`[1,2]`)}) {
		t.Fatalf("Echo without attachments = %#v", got)
	}
}
