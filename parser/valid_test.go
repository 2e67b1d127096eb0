package parser

import (
	"encoding/json"
	"strings"
	"testing"
)

var validJSONCases = []string{
	``, ` `, `1`, `-`, `-0`, `-01`, `01`, `0.`, `0.1`, `1e`, `1e+`, `1E-7`, `1.5e3`, `.5`, `+1`,
	`"`, `""`, `"a`, `"\"`, `"\u12"`, `"\u12g4"`, `"\u00e9"`, `"\x"`, `"\/"`, "\"\x1f\"", "\"\x7f\xff\"",
	`true`, `tru`, `truex`, `false`, `null`, `nul`, ` null `, "\tnull\r\n", `null null`,
	`[]`, `[ ]`, `[1,]`, `[,1]`, `[1 2]`, `[1,2]`, `[[]]`, `[[]`, `[]]`, `[1}`,
	`{}`, `{ }`, `{"a":1}`, `{"a" : [1, {"b":null}] }`, `{"a":1,}`, `{"a"}`, `{"a":}`, `{1:2}`, `{"a":1 "b":2}`,
	`{"a":1}x`, `["echo",{"pad":"xxxx","n":-1.5e-3}]`, `{"_placeholder":true,"num":0}`,
}

func TestValidJSON(t *testing.T) {
	cases := append([]string(nil), validJSONCases...)
	cases = append(cases,
		strings.Repeat("[", 10000)+strings.Repeat("]", 10000),
		strings.Repeat("[", 10001)+strings.Repeat("]", 10001),
		strings.Repeat(`{"a":`, 10000)+"1"+strings.Repeat("}", 10000),
		strings.Repeat(`{"a":`, 10001)+"1"+strings.Repeat("}", 10001),
		strings.Repeat("[", 100)+strings.Repeat("]", 99),
	)
	for _, c := range cases {
		if got, want := validJSON([]byte(c)), json.Valid([]byte(c)); got != want {
			t.Errorf("validJSON(%.40q) = %v, json.Valid says %v", c, got, want)
		}
	}
}

// FuzzValidJSON: validJSON agrees with encoding/json.Valid on every input.
func FuzzValidJSON(f *testing.F) {
	for _, c := range validJSONCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := validJSON(b), json.Valid(b); got != want {
			t.Fatalf("validJSON(%q) = %v, json.Valid says %v", b, got, want)
		}
	})
}

func BenchmarkValidJSON(b *testing.B) {
	msg := []byte(`["echo",{"seq":12345,"ts":1732590000000,"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}]`)
	b.Run("validJSON", func(b *testing.B) {
		b.SetBytes(int64(len(msg)))
		for b.Loop() {
			validJSON(msg)
		}
	})
	b.Run("json.Valid", func(b *testing.B) {
		b.SetBytes(int64(len(msg)))
		for b.Loop() {
			json.Valid(msg)
		}
	})
}
