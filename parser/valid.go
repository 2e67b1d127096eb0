package parser

// validJSON reports whether b is one valid JSON value, surrounded by
// optional whitespace: exactly what encoding/json.Valid accepts (RFC 8259
// grammar; bytes of 0x20 and above inside strings, valid UTF-8 or not;
// nesting at most 10,000 deep), without its per-byte state machine. Every
// incoming packet goes through it, so it is written for speed.
// FuzzValidJSON checks it against json.Valid.
func validJSON(b []byte) bool {
	var small [64]byte // open containers, '[' or '{'; spills past 64
	stack := small[:0]
	i := skipWS(b, 0)
	for {
		// A value starts at b[i].
		if i >= len(b) {
			return false
		}
		switch c := b[i]; {
		case c == '{' || c == '[':
			if len(stack) == maxNesting {
				return false
			}
			closer := byte(']')
			if c == '{' {
				closer = '}'
			}
			stack = append(stack, c)
			i = skipWS(b, i+1)
			if i < len(b) && b[i] == closer {
				i++
				stack = stack[:len(stack)-1]
				break
			}
			if c == '{' {
				if i = scanKey(b, i); i < 0 {
					return false
				}
			}
			continue
		case c == '"':
			if i = scanStringAt(b, i); i < 0 {
				return false
			}
		case c == '-' || (c >= '0' && c <= '9'):
			if i = scanNumber(b, i); i < 0 {
				return false
			}
		case c == 't':
			if !hasLiteral(b, i, "true") {
				return false
			}
			i += 4
		case c == 'f':
			if !hasLiteral(b, i, "false") {
				return false
			}
			i += 5
		case c == 'n':
			if !hasLiteral(b, i, "null") {
				return false
			}
			i += 4
		default:
			return false
		}
		// A value ended at b[i-1]: close containers, or go to the next
		// element or member.
		for {
			i = skipWS(b, i)
			if len(stack) == 0 {
				return i == len(b)
			}
			if i >= len(b) {
				return false
			}
			top := stack[len(stack)-1]
			if b[i] == ',' {
				i = skipWS(b, i+1)
				if top == '{' {
					if i = scanKey(b, i); i < 0 {
						return false
					}
				}
				break // the next value
			}
			if (top == '[' && b[i] != ']') || (top == '{' && b[i] != '}') {
				return false
			}
			i++
			stack = stack[:len(stack)-1]
		}
	}
}

// scanKey returns the index of the member value after the key and colon
// starting at b[i], or -1.
func scanKey(b []byte, i int) int {
	if i = scanStringAt(b, i); i < 0 {
		return -1
	}
	if i = skipWS(b, i); i >= len(b) || b[i] != ':' {
		return -1
	}
	return skipWS(b, i+1)
}

// maxNesting is encoding/json's limit on nested arrays and objects.
const maxNesting = 10000

func hasLiteral(b []byte, i int, lit string) bool {
	return len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit
}

// scanStringAt returns the index just past the valid string starting at
// b[i], or -1.
func scanStringAt(b []byte, i int) int {
	if i >= len(b) || b[i] != '"' {
		return -1
	}
	for i++; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return i + 1
		case c < 0x20:
			return -1
		case c == '\\':
			i++
			if i >= len(b) {
				return -1
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if len(b)-i <= 4 {
					return -1
				}
				for _, h := range b[i+1 : i+5] {
					if !isHex(h) {
						return -1
					}
				}
				i += 4
			default:
				return -1
			}
		}
	}
	return -1
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// scanNumber returns the index just past the valid number starting at
// b[i], or -1.
func scanNumber(b []byte, i int) int {
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i++; i < len(b) && isDigit(b[i]); i++ {
		}
	default:
		return -1
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || !isDigit(b[i]) {
			return -1
		}
		for i++; i < len(b) && isDigit(b[i]); i++ {
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !isDigit(b[i]) {
			return -1
		}
		for i++; i < len(b) && isDigit(b[i]); i++ {
		}
	}
	return i
}
