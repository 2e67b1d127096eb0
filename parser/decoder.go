package parser

import (
	"bytes"
	"fmt"
	"strconv"
)

// Limits on the numeric fields of a packet header. Longer digit runs are
// rejected as soon as the limit is passed, without reading the rest.
const (
	maxCountDigits = 10 // attachment count
	maxIDDigits    = 15 // ack id: every 15-digit integer is exact in a float64
)

// DefaultMaxAttachments is the attachment limit used when
// DecoderOptions.MaxAttachments is zero or negative.
const DefaultMaxAttachments = 10

// DecoderOptions configures a Decoder. A nil *DecoderOptions means all
// defaults.
type DecoderOptions struct {
	// MaxAttachments is the largest attachment count a binary packet may
	// announce; a larger count fails with ErrTooManyAttachments. Zero or
	// negative means DefaultMaxAttachments (10).
	MaxAttachments int
}

// Decoder reassembles packets from the text and binary messages of one
// connection: a binary packet's text message is followed by its attachments
// as separate binary messages.
//
// A Decoder is not safe for concurrent use. It never retains the messages
// passed to it (it copies what it keeps), never panics, and takes time
// linear in the size of each message. After an error it holds no partial
// packet and can be used again, though the caller normally closes the
// connection.
type Decoder struct {
	max     int
	pending *Packet // binary packet waiting for attachments
	want    int     // attachments pending needs in total
}

// NewDecoder returns a Decoder configured by opts, which may be nil.
func NewDecoder(opts *DecoderOptions) *Decoder {
	d := &Decoder{max: DefaultMaxAttachments}
	if opts != nil && opts.MaxAttachments > 0 {
		d.max = opts.MaxAttachments
	}
	return d
}

// AddText decodes one text message. It returns the packet, or (nil, nil)
// when the packet is a binary packet that awaits its attachments (see
// AddBinary). A text message while attachments are still expected is an
// error. Every error wraps ErrInvalidPacket.
func (d *Decoder) AddText(msg []byte) (*Packet, error) {
	if d.pending != nil {
		got, want := len(d.pending.Attachments), d.want
		d.Reset()
		return nil, fmt.Errorf("%w: text message while attachment %d of %d is expected", ErrInvalidPacket, got+1, want)
	}
	p, n, err := decodeText(msg, d.max)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return p, nil
	}
	p.Attachments = make([][]byte, 0, n)
	d.pending, d.want = p, n
	return nil, nil
}

// AddBinary adds one binary message as the next attachment of the pending
// packet and returns the packet once all its attachments have arrived, else
// (nil, nil). A binary message when no packet awaits attachments fails with
// an error wrapping both ErrUnexpectedBinary and ErrInvalidPacket.
func (d *Decoder) AddBinary(msg []byte) (*Packet, error) {
	if d.pending == nil {
		return nil, fmt.Errorf("%w: %w (%d bytes)", ErrInvalidPacket, ErrUnexpectedBinary, len(msg))
	}
	p := d.pending
	p.Attachments = append(p.Attachments, bytes.Clone(msg))
	if p.Attachments[len(p.Attachments)-1] == nil {
		p.Attachments[len(p.Attachments)-1] = []byte{}
	}
	if len(p.Attachments) < d.want {
		return nil, nil
	}
	d.pending, d.want = nil, 0
	return p, nil
}

// Reset drops a partly assembled packet, if any.
func (d *Decoder) Reset() {
	d.pending, d.want = nil, 0
}

// Pending reports how many attachments the Decoder still expects before the
// current binary packet is complete; 0 when none is pending.
func (d *Decoder) Pending() int {
	if d.pending == nil {
		return 0
	}
	return d.want - len(d.pending.Attachments)
}

// decodeText parses and validates a text message. n is the number of
// attachments the packet announces (0 for non-binary packets).
func decodeText(msg []byte, maxAtt int) (p *Packet, n int, err error) {
	if len(msg) == 0 {
		return nil, 0, fmt.Errorf("%w: empty message", ErrInvalidPacket)
	}
	c := msg[0]
	if c < '0' || c > '0'+byte(BinaryAck) {
		return nil, 0, fmt.Errorf("%w: unknown packet type %q", ErrInvalidPacket, c)
	}
	t := PacketType(c - '0')
	i := 1

	if isBinary(t) {
		start := i
		for i < len(msg) && isDigit(msg[i]) {
			if i-start == maxCountDigits {
				return nil, 0, fmt.Errorf("%w: attachment count longer than %d digits", ErrInvalidPacket, maxCountDigits)
			}
			i++
		}
		if i == start || i == len(msg) || msg[i] != '-' {
			return nil, 0, fmt.Errorf("%w: %s needs an attachment count of digits followed by '-', got %s",
				ErrInvalidPacket, t, snippet(msg[start:]))
		}
		cnt, _ := strconv.ParseUint(string(msg[start:i]), 10, 64) // at most 10 digits: cannot fail
		if cnt > uint64(maxAtt) {
			return nil, 0, fmt.Errorf("%w: %w: %d announced, limit %d", ErrInvalidPacket, ErrTooManyAttachments, cnt, maxAtt)
		}
		n = int(cnt)
		i++ // '-'
	}

	nsp := "/"
	if i < len(msg) && msg[i] == '/' {
		end := bytes.IndexByte(msg[i:], ',')
		if end < 0 {
			end = len(msg) - i
		}
		if end > 1 {
			nsp = string(msg[i : i+end])
		}
		i += end
		if i < len(msg) {
			i++ // ','
		}
	}

	var id uint64
	hasID := false
	if start := i; i < len(msg) && isDigit(msg[i]) {
		for i < len(msg) && isDigit(msg[i]) {
			if i-start == maxIDDigits {
				return nil, 0, fmt.Errorf("%w: ack id longer than %d digits", ErrInvalidPacket, maxIDDigits)
			}
			i++
		}
		id, _ = strconv.ParseUint(string(msg[start:i]), 10, 64) // at most 15 digits: cannot fail
		hasID = true
	}

	payload := msg[i:]
	if err := checkPayload(t, payload, n); err != nil {
		return nil, 0, err
	}
	p = &Packet{Type: t, Namespace: nsp, ID: id, HasID: hasID}
	if len(payload) > 0 {
		p.Data = bytes.Clone(payload)
		p.checked = p.Data
	}
	return p, n, nil
}

// checkPayload validates the payload of a packet of type t announcing n
// attachments.
func checkPayload(t PacketType, payload []byte, n int) error {
	if len(payload) == 0 {
		switch t {
		case Connect, Disconnect:
			return nil
		}
		return fmt.Errorf("%w: %s without payload", ErrInvalidPacket, t)
	}
	if t == Disconnect {
		return fmt.Errorf("%w: DISCONNECT with payload %s", ErrInvalidPacket, snippet(payload))
	}
	if !validJSON(payload) {
		return fmt.Errorf("%w: %s payload is not valid JSON: %s", ErrInvalidPacket, t, snippet(payload))
	}
	i := skipWS(payload, 0)
	first := payload[i] // valid, non-empty JSON has a non-space byte
	switch t {
	case Connect:
		if first != '{' {
			return fmt.Errorf("%w: CONNECT payload must be an object, got %s", ErrInvalidPacket, snippet(payload))
		}
	case ConnectError:
		if first != '{' && first != '"' {
			return fmt.Errorf("%w: CONNECT_ERROR payload must be an object or a string, got %s", ErrInvalidPacket, snippet(payload))
		}
	case Event, BinaryEvent:
		if first != '[' {
			return fmt.Errorf("%w: %s payload must be an array, got %s", ErrInvalidPacket, t, snippet(payload))
		}
		if j := skipWS(payload, i+1); payload[j] != '"' {
			return fmt.Errorf("%w: %s payload must start with the event name string, got %s", ErrInvalidPacket, t, snippet(payload))
		}
	case Ack, BinaryAck:
		if first != '[' {
			return fmt.Errorf("%w: %s payload must be an array, got %s", ErrInvalidPacket, t, snippet(payload))
		}
	}
	if isBinary(t) {
		if _, err := checkPlaceholders(payload, i, n); err != nil {
			return err
		}
	}
	return nil
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// snippet quotes at most 32 bytes of b for an error message.
func snippet(b []byte) string {
	const max = 32
	if len(b) > max {
		return strconv.Quote(string(b[:max])) + "..."
	}
	return strconv.Quote(string(b))
}
