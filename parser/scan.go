package parser

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
)

// The scanners below walk JSON that validJSON has accepted; they rely on
// that for bounds (every index they produce stays inside the input) and on
// its nesting limit for recursion depth.

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// skipWS returns the index of the first non-space byte at or after i, or
// len(b).
func skipWS(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// skipString returns the index just past the string starting at b[i] == '"'.
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b)
}

// skipValue returns the index just past the value starting at b[i].
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return len(b)
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '[', '{':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = skipString(b, i)
				continue
			case '[', '{':
				depth++
			case ']', '}':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return len(b)
	default:
		for i < len(b) {
			switch b[i] {
			case ',', ']', '}', ' ', '\t', '\n', '\r':
				return i
			}
			i++
		}
		return len(b)
	}
}

// keyIs reports whether the raw JSON string key (with quotes) equals s.
func keyIs(key []byte, s string) bool {
	if len(key) < 2 {
		return false
	}
	inner := key[1 : len(key)-1]
	for _, c := range inner {
		if c == '\\' {
			var k string
			return json.Unmarshal(key, &k) == nil && k == s
		}
	}
	return string(inner) == s
}

// objectFields scans the object starting at b[i] == '{' and calls fn for
// every member with the raw key (quoted) and the value's start index; fn
// returns the index just past the value. scanObject returns the index just
// past the object.
func scanObject(b []byte, i int, fn func(key []byte, v int) (int, error)) (int, error) {
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, nil
	}
	for i < len(b) {
		kEnd := skipString(b, i)
		key := b[i:kEnd]
		i = skipWS(b, kEnd) // ':'
		i = skipWS(b, i+1)  // value
		end, err := fn(key, i)
		if err != nil {
			return 0, err
		}
		i = skipWS(b, end)
		if i < len(b) && b[i] == ',' {
			i = skipWS(b, i+1)
			continue
		}
		return i + 1, nil // '}'
	}
	return len(b), nil
}

// checkPlaceholders walks the value starting at b[i] and checks that every
// placeholder object (one whose "_placeholder" member is true) has a "num"
// that is an integer in [0, n). It returns the index just past the value.
func checkPlaceholders(b []byte, i, n int) (int, error) {
	if i >= len(b) {
		return len(b), nil
	}
	switch b[i] {
	case '[':
		i = skipWS(b, i+1)
		if i < len(b) && b[i] == ']' {
			return i + 1, nil
		}
		for i < len(b) {
			end, err := checkPlaceholders(b, i, n)
			if err != nil {
				return 0, err
			}
			i = skipWS(b, end)
			if i < len(b) && b[i] == ',' {
				i = skipWS(b, i+1)
				continue
			}
			return i + 1, nil // ']'
		}
		return len(b), nil
	case '{':
		var ph, num []byte // last occurrence wins, as in JSON.parse
		end, err := scanObject(b, i, func(key []byte, v int) (int, error) {
			end, err := checkPlaceholders(b, v, n)
			if err != nil {
				return 0, err
			}
			switch {
			case keyIs(key, "_placeholder"):
				ph = b[v:end]
			case keyIs(key, "num"):
				num = b[v:end]
			}
			return end, nil
		})
		if err != nil {
			return 0, err
		}
		if string(ph) == "true" {
			if _, err := placeholderNum(num, n); err != nil {
				return 0, err
			}
		}
		return end, nil
	default:
		return skipValue(b, i), nil
	}
}

// placeholderNum validates the raw "num" of a placeholder (nil when absent)
// against n attachments.
func placeholderNum(num []byte, n int) (int, error) {
	if num == nil {
		return 0, fmt.Errorf("%w: placeholder without num", ErrInvalidPacket)
	}
	if len(num) > 32 || (num[0] != '-' && !isDigit(num[0])) {
		return 0, fmt.Errorf("%w: placeholder num %s is not an integer", ErrInvalidPacket, snippet(num))
	}
	f, err := strconv.ParseFloat(string(num), 64)
	if err != nil || f != math.Trunc(f) {
		return 0, fmt.Errorf("%w: placeholder num %s is not an integer", ErrInvalidPacket, snippet(num))
	}
	return numInRange(f, n)
}

func numInRange(f float64, n int) (int, error) {
	if f != math.Trunc(f) || f < 0 || f >= float64(n) {
		return 0, fmt.Errorf("%w: placeholder num %v outside [0, %d)", ErrInvalidPacket, f, n)
	}
	return int(f), nil
}
