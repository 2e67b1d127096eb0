package parser

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"
)

// MarshalArgs encodes args as a JSON array. Every []byte value, at the top
// level or nested (recursively) inside []any and map[string]any, is replaced
// by {"_placeholder":true,"num":i} and returned as attachment i, numbered
// depth-first in the order the JSON text shows them (map keys sorted), as
// socket.io-parser's deconstructPacket does. A json.RawMessage is written
// verbatim after a validity check (empty means null). Other values go
// through encoding/json without HTML escaping, so a []byte inside a struct
// becomes a base64 string. attachments is nil when there are none.
func MarshalArgs(args ...any) (data json.RawMessage, attachments [][]byte, err error) {
	m := marshaler{buf: make([]byte, 0, 64+sizeHint(args))}
	m.buf = append(m.buf, '[')
	for i, a := range args {
		if i > 0 {
			m.buf = append(m.buf, ',')
		}
		if err := m.value(a); err != nil {
			return nil, nil, err
		}
	}
	m.buf = append(m.buf, ']')
	return m.buf, m.atts, nil
}

// MarshalEvent is MarshalArgs with the event name prepended, giving the
// payload of an EVENT packet.
func MarshalEvent(event string, args ...any) (json.RawMessage, [][]byte, error) {
	m := marshaler{buf: make([]byte, 0, 64+len(event)+sizeHint(args))}
	m.buf = append(m.buf, '[')
	m.buf = appendString(m.buf, event)
	for _, a := range args {
		m.buf = append(m.buf, ',')
		if err := m.value(a); err != nil {
			return nil, nil, err
		}
	}
	m.buf = append(m.buf, ']')
	return m.buf, m.atts, nil
}

// sizeHint is the bytes the raw and string arguments will take at least,
// so that the buffer is allocated once for the common payloads.
func sizeHint(args []any) int {
	n := 0
	for _, a := range args {
		switch x := a.(type) {
		case json.RawMessage:
			n += len(x)
		case string:
			n += len(x) + 2
		}
	}
	return n
}

type marshaler struct {
	buf   []byte
	atts  [][]byte
	depth int // nesting of []any and map[string]any, to stop on cycles
}

// maxMarshalDepth bounds the nesting of []any and map[string]any values, so
// that a cyclic value fails instead of overflowing the stack.
const maxMarshalDepth = 1000

func (m *marshaler) value(v any) error {
	switch v.(type) {
	case []any, map[string]any:
		if m.depth++; m.depth > maxMarshalDepth {
			return fmt.Errorf("parser: marshal: nesting deeper than %d (cyclic value?)", maxMarshalDepth)
		}
		defer func() { m.depth-- }()
	}
	switch x := v.(type) {
	case nil:
		m.buf = append(m.buf, "null"...)
	case json.RawMessage:
		if len(x) == 0 {
			m.buf = append(m.buf, "null"...)
			return nil
		}
		if !validJSON(x) {
			return fmt.Errorf("parser: marshal: invalid json.RawMessage %s", snippet(x))
		}
		m.buf = append(m.buf, x...)
	case []byte:
		m.buf = append(m.buf, `{"_placeholder":true,"num":`...)
		m.buf = strconv.AppendInt(m.buf, int64(len(m.atts)), 10)
		m.buf = append(m.buf, '}')
		if x == nil {
			x = []byte{}
		}
		m.atts = append(m.atts, x)
	case string:
		m.buf = appendString(m.buf, x)
	case bool:
		m.buf = strconv.AppendBool(m.buf, x)
	case int:
		m.buf = strconv.AppendInt(m.buf, int64(x), 10)
	case int64:
		m.buf = strconv.AppendInt(m.buf, x, 10)
	case int32:
		m.buf = strconv.AppendInt(m.buf, int64(x), 10)
	case uint:
		m.buf = strconv.AppendUint(m.buf, uint64(x), 10)
	case uint64:
		m.buf = strconv.AppendUint(m.buf, x, 10)
	case uint32:
		m.buf = strconv.AppendUint(m.buf, uint64(x), 10)
	case float64:
		return m.float(x, 64)
	case float32:
		return m.float(float64(x), 32)
	case []any:
		m.buf = append(m.buf, '[')
		for i, e := range x {
			if i > 0 {
				m.buf = append(m.buf, ',')
			}
			if err := m.value(e); err != nil {
				return err
			}
		}
		m.buf = append(m.buf, ']')
	case map[string]any:
		if x == nil {
			m.buf = append(m.buf, "null"...)
			return nil
		}
		m.buf = append(m.buf, '{')
		for i, k := range slices.Sorted(maps.Keys(x)) {
			if i > 0 {
				m.buf = append(m.buf, ',')
			}
			m.buf = appendString(m.buf, k)
			m.buf = append(m.buf, ':')
			if err := m.value(x[k]); err != nil {
				return err
			}
		}
		m.buf = append(m.buf, '}')
	default:
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			return fmt.Errorf("parser: marshal %T: %w", v, err)
		}
		m.buf = append(m.buf, bytes.TrimSuffix(b.Bytes(), []byte{'\n'})...)
	}
	return nil
}

// float appends f the way encoding/json does.
func (m *marshaler) float(f float64, bits int) error {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return fmt.Errorf("parser: marshal: unsupported float value %v", f)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	m.buf = strconv.AppendFloat(m.buf, f, format, -1, bits)
	if format == 'e' {
		// clean up e-09 to e-9
		n := len(m.buf)
		if n >= 4 && m.buf[n-4] == 'e' && m.buf[n-3] == '-' && m.buf[n-2] == '0' {
			m.buf[n-2] = m.buf[n-1]
			m.buf = m.buf[:n-1]
		}
	}
	return nil
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string escaped like JavaScript's
// JSON.stringify: no HTML escaping, U+2028 and U+2029 verbatim; invalid
// UTF-8 becomes U+FFFD.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// SplitArgs splits a JSON array into its raw elements, which share memory
// with data; no element is decoded. It fails with an error wrapping
// ErrInvalidPacket when data is not a valid JSON array. An empty array
// gives an empty, non-nil slice.
func SplitArgs(data json.RawMessage) ([]json.RawMessage, error) {
	if !validJSON(data) {
		return nil, fmt.Errorf("%w: arguments are not valid JSON: %s", ErrInvalidPacket, snippet(data))
	}
	i := skipWS(data, 0)
	if data[i] != '[' {
		return nil, fmt.Errorf("%w: arguments are not a JSON array: %s", ErrInvalidPacket, snippet(data))
	}
	return splitArray(data, i), nil
}

// splitArray splits the valid array starting at b[i] == '['.
func splitArray(b []byte, i int) []json.RawMessage {
	// One pass into a stack buffer, then one allocation of the exact size
	// (a second pass to count would scan every argument twice).
	var stack [8]json.RawMessage
	out := stack[:0]
	for j := skipWS(b, i+1); j < len(b) && b[j] != ']'; {
		end := skipValue(b, j)
		out = append(out, b[j:end:end])
		j = skipWS(b, end)
		if j < len(b) && b[j] == ',' {
			j = skipWS(b, j+1)
		} else {
			break
		}
	}
	return append(make([]json.RawMessage, 0, len(out)), out...)
}

// EventName returns the event name and the remaining raw arguments of an
// EVENT payload, which must be a JSON array whose first element is a
// string; otherwise the error wraps ErrInvalidPacket. args share memory with
// data.
func EventName(data json.RawMessage) (name string, args []json.RawMessage, err error) {
	all, err := SplitArgs(data)
	if err != nil {
		return "", nil, err
	}
	return eventName(data, all)
}

// eventName takes the name off the split arguments all of data.
func eventName(data json.RawMessage, all []json.RawMessage) (name string, args []json.RawMessage, err error) {
	if len(all) == 0 || all[0][0] != '"' {
		return "", nil, fmt.Errorf("%w: event payload must start with the event name string: %s", ErrInvalidPacket, snippet(data))
	}
	return unquote(all[0]), all[1:], nil
}

// unquote decodes a valid raw JSON string.
func unquote(raw []byte) string {
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return string(inner)
	}
	var s string
	_ = json.Unmarshal(raw, &s) // raw is a valid JSON string
	return s
}

// maxPlaceholderNum bounds the num IsPlaceholder accepts.
const maxPlaceholderNum = math.MaxInt32

// IsPlaceholder reports whether raw is a binary placeholder, an object whose
// "_placeholder" member is true (other members are ignored, as in
// socket.io-parser), and returns its "num". ok is false when raw is not
// such an object or num is not a non-negative integer.
func IsPlaceholder(raw json.RawMessage) (num int, ok bool) {
	ph, n := placeholderMembers(raw)
	if string(ph) != "true" {
		return 0, false
	}
	num, err := placeholderNum(n, maxPlaceholderNum)
	return num, err == nil
}

// placeholderMembers returns the raw "_placeholder" and "num" members of
// raw, nil when absent or when raw is not a valid JSON object.
func placeholderMembers(raw []byte) (ph, num []byte) {
	i := skipWS(raw, 0)
	if i >= len(raw) || raw[i] != '{' || !validJSON(raw) {
		return nil, nil
	}
	_, _ = scanObject(raw, i, func(key []byte, v int) (int, error) {
		end := skipValue(raw, v)
		switch {
		case keyIs(key, "_placeholder"):
			ph = raw[v:end]
		case keyIs(key, "num"):
			num = raw[v:end]
		}
		return end, nil
	})
	return ph, num
}

// Unmarshal decodes the raw JSON value raw into v, resolving binary
// placeholders against attachments:
//   - if v is *[]byte and raw is a placeholder, *v is set to the attachment
//     (not a copy);
//   - if v is *any, raw is decoded like encoding/json does and every
//     placeholder inside, at any depth, is replaced by its attachment as a
//     []byte;
//   - otherwise raw is decoded by encoding/json (a []byte then expects a
//     base64 string).
//
// A placeholder whose num is not an integer in [0, len(attachments)) is an
// error wrapping ErrInvalidPacket. With no attachments (the payload of a
// non-binary packet) nothing is a placeholder and Unmarshal is
// json.Unmarshal, as socket.io-parser leaves such objects alone.
func Unmarshal(raw json.RawMessage, attachments [][]byte, v any) error {
	if len(attachments) == 0 {
		return json.Unmarshal(raw, v)
	}
	switch p := v.(type) {
	case *[]byte:
		if ph, n := placeholderMembers(raw); string(ph) == "true" {
			num, err := placeholderNum(n, len(attachments))
			if err != nil {
				return err
			}
			*p = attachments[num]
			return nil
		}
	case *any:
		var x any
		if err := json.Unmarshal(raw, &x); err != nil {
			return err
		}
		x, err := resolve(x, attachments)
		if err != nil {
			return err
		}
		*p = x
		return nil
	}
	return json.Unmarshal(raw, v)
}

// resolve replaces placeholder maps in a decoded value by attachments.
func resolve(x any, attachments [][]byte) (any, error) {
	switch t := x.(type) {
	case []any:
		for i, e := range t {
			r, err := resolve(e, attachments)
			if err != nil {
				return nil, err
			}
			t[i] = r
		}
	case map[string]any:
		if t["_placeholder"] == true {
			f, ok := t["num"].(float64)
			if !ok {
				return nil, fmt.Errorf("%w: placeholder num %v is not an integer", ErrInvalidPacket, t["num"])
			}
			num, err := numInRange(f, len(attachments))
			if err != nil {
				return nil, err
			}
			return attachments[num], nil
		}
		for k, e := range t {
			r, err := resolve(e, attachments)
			if err != nil {
				return nil, err
			}
			t[k] = r
		}
	}
	return x, nil
}
