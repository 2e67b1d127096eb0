package redis

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"
)

// Conversions between Socket.IO argument lists (JSON text whose binary
// values are {"_placeholder":true,"num":i} objects, plus attachments) and
// the value trees of msgpack.go, where binary values are []byte in place.

// jsonToTree decodes JSON into a tree, keeping object key order and putting
// attachment i in place of each placeholder that names it.
func jsonToTree(data []byte, atts [][]byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := treeValue(dec, atts, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err == nil {
		return nil, fmt.Errorf("redis: trailing data after JSON value")
	}
	return v, nil
}

func treeValue(dec *json.Decoder, atts [][]byte, depth int) (any, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("redis: JSON nested deeper than %d", maxDepth)
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case nil, bool, string:
		return t, nil
	case json.Number:
		return numberValue(t), nil
	case json.Delim:
		switch t {
		case '[':
			arr := []any{}
			for dec.More() {
				v, err := treeValue(dec, atts, depth+1)
				if err != nil {
					return nil, err
				}
				arr = append(arr, v)
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return arr, nil
		case '{':
			o := obj{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k, _ := kt.(string)
				v, err := treeValue(dec, atts, depth+1)
				if err != nil {
					return nil, err
				}
				o = append(o, kv{k, v})
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			if b, ok := placeholder(o, atts); ok {
				return b, nil
			}
			return o, nil
		}
	}
	return nil, fmt.Errorf("redis: unexpected JSON token %v", tok)
}

// placeholder returns the attachment an object stands for, as socket.io's
// parser does: "_placeholder" is true and "num" names an attachment.
func placeholder(o obj, atts [][]byte) ([]byte, bool) {
	if len(atts) == 0 {
		return nil, false
	}
	if ph, _ := o.get("_placeholder"); ph != true {
		return nil, false
	}
	n, _ := o.get("num")
	var i int64
	switch x := n.(type) {
	case int64:
		i = x
	case float64:
		if x != math.Trunc(x) {
			return nil, false
		}
		i = int64(x)
	default:
		return nil, false
	}
	if i < 0 || i >= int64(len(atts)) {
		return nil, false
	}
	if atts[i] == nil {
		return []byte{}, true
	}
	return atts[i], true
}

func numberValue(n json.Number) any {
	if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
		return i
	}
	if u, err := strconv.ParseUint(string(n), 10, 64); err == nil {
		return u
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil {
		return math.Inf(1) // out of range: JSON.parse gives Infinity
	}
	return f
}

// treeToJSON encodes a tree as JSON, replacing each []byte by a
// placeholder and returning the bytes as attachments, in order.
func treeToJSON(v any) (json.RawMessage, [][]byte) {
	w := jsonWriter{}
	w.value(v)
	return w.buf, w.atts
}

type jsonWriter struct {
	buf  []byte
	atts [][]byte
}

func (w *jsonWriter) value(v any) {
	switch x := v.(type) {
	case nil:
		w.buf = append(w.buf, "null"...)
	case bool:
		w.buf = strconv.AppendBool(w.buf, x)
	case int64:
		w.buf = strconv.AppendInt(w.buf, x, 10)
	case uint64:
		w.buf = strconv.AppendUint(w.buf, x, 10)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			w.buf = append(w.buf, "null"...) // as JSON.stringify
			return
		}
		b, _ := json.Marshal(x) // encoding/json formats numbers as ES6 does
		w.buf = append(w.buf, b...)
	case string:
		w.str(x)
	case []byte:
		w.buf = append(w.buf, `{"_placeholder":true,"num":`...)
		w.buf = strconv.AppendInt(w.buf, int64(len(w.atts)), 10)
		w.buf = append(w.buf, '}')
		w.atts = append(w.atts, x)
	case []any:
		w.buf = append(w.buf, '[')
		for i, e := range x {
			if i > 0 {
				w.buf = append(w.buf, ',')
			}
			w.value(e)
		}
		w.buf = append(w.buf, ']')
	case obj:
		w.buf = append(w.buf, '{')
		for i, e := range x {
			if i > 0 {
				w.buf = append(w.buf, ',')
			}
			w.str(e.Key)
			w.buf = append(w.buf, ':')
			w.value(e.Val)
		}
		w.buf = append(w.buf, '}')
	case time.Time:
		w.str(x.UTC().Format("2006-01-02T15:04:05.000Z")) // Date.toJSON
	default: // ext and anything unknown
		w.buf = append(w.buf, "null"...)
	}
}

func (w *jsonWriter) str(s string) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	w.buf = append(w.buf, bytes.TrimSuffix(b.Bytes(), []byte{'\n'})...)
}

// hasBinary reports whether a tree holds a []byte.
func hasBinary(v any) bool {
	switch x := v.(type) {
	case []byte:
		return true
	case []any:
		for _, e := range x {
			if hasBinary(e) {
				return true
			}
		}
	case obj:
		for _, e := range x {
			if hasBinary(e.Val) {
				return true
			}
		}
	}
	return false
}

// treeToGo converts a tree into the values encoding/json produces when
// decoding into an any (map[string]any, []any, float64, string, bool, nil),
// keeping []byte as is.
func treeToGo(v any) any {
	switch x := v.(type) {
	case int64:
		return float64(x)
	case uint64:
		return float64(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = treeToGo(e)
		}
		return out
	case obj:
		m := make(map[string]any, len(x))
		for _, e := range x {
			m[e.Key] = treeToGo(e.Val)
		}
		return m
	case time.Time:
		return x.UTC().Format("2006-01-02T15:04:05.000Z")
	case ext:
		return nil
	}
	return v
}

// goToTree converts an application value (such as socket data) into a tree
// through its JSON encoding.
func goToTree(v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return jsonToTree(b, nil)
}

// Accessors for decoded messages; a missing or mistyped value gives the
// zero value.

func getObj(v any, key string) obj {
	o, _ := v.(obj)
	x, _ := o.get(key)
	r, _ := x.(obj)
	return r
}

func getString(v any, key string) string {
	o, _ := v.(obj)
	x, _ := o.get(key)
	s, _ := x.(string)
	return s
}

func getStrings(v any, key string) []string {
	o, _ := v.(obj)
	x, _ := o.get(key)
	arr, _ := x.([]any)
	out := make([]string, 0, len(arr))
	for _, e := range arr {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func getNumber(v any, key string) (float64, bool) {
	o, _ := v.(obj)
	x, _ := o.get(key)
	return toFloat(x)
}

func toFloat(x any) (float64, bool) {
	switch n := x.(type) {
	case int64:
		return float64(n), true
	case uint64:
		return float64(n), true
	case float64:
		return n, true
	}
	return 0, false
}
