package parser

import (
	"encoding/json"
	"errors"
	"strconv"
)

// PacketType is the Socket.IO packet type, the first character of a packet.
type PacketType byte

// Packet types of Socket.IO protocol v5.
const (
	Connect      PacketType = iota // 0: CONNECT, payload absent or an object (auth or {"sid"})
	Disconnect                     // 1: DISCONNECT, no payload
	Event                          // 2: EVENT, payload ["name", args...]
	Ack                            // 3: ACK, payload [args...]
	ConnectError                   // 4: CONNECT_ERROR, payload an object or a string
	BinaryEvent                    // 5: BINARY_EVENT, an EVENT followed by attachments
	BinaryAck                      // 6: BINARY_ACK, an ACK followed by attachments
)

var typeNames = [...]string{"CONNECT", "DISCONNECT", "EVENT", "ACK", "CONNECT_ERROR", "BINARY_EVENT", "BINARY_ACK"}

// String returns the protocol name of t, such as "EVENT", or "PacketType(n)"
// for an unknown type.
func (t PacketType) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return "PacketType(" + strconv.Itoa(int(t)) + ")"
}

// Packet is one Socket.IO packet.
//
// The zero value is a CONNECT to the main namespace without payload.
type Packet struct {
	// Type is the packet type.
	Type PacketType
	// Namespace is the namespace; "/" (or "") when absent on the wire. The
	// decoder always sets it, to "/" when absent. It must start with "/" and
	// must not contain ',' to survive encoding.
	Namespace string
	// ID is the acknowledgement id; it is valid only when HasID is true.
	// The decoder accepts at most 15 digits (a JS client represents ids as
	// float64), so ids above 999999999999999 are encoded but not decoded.
	ID uint64
	// HasID reports whether the packet carries an ack id.
	HasID bool
	// Data is the raw JSON payload, nil when absent. For binary packets it
	// still holds the {"_placeholder":true,"num":i} objects; see Unmarshal.
	Data json.RawMessage
	// Attachments are the binary attachments; index i is placeholder num i.
	Attachments [][]byte

	// checked is Data as the Decoder validated it: EventName and Args
	// skip validating it again while Data is unchanged.
	checked json.RawMessage
}

// dataChecked reports whether Data is what the Decoder validated.
func (p *Packet) dataChecked() bool {
	return len(p.Data) > 0 && len(p.checked) == len(p.Data) && &p.Data[0] == &p.checked[0]
}

// EventName is EventName(p.Data); it does not validate again data the
// Decoder validated.
func (p *Packet) EventName() (name string, args []json.RawMessage, err error) {
	if !p.dataChecked() {
		return EventName(p.Data)
	}
	return eventName(p.Data, splitArray(p.Data, skipWS(p.Data, 0)))
}

// Args is SplitArgs(p.Data); it does not validate again data the Decoder
// validated.
func (p *Packet) Args() ([]json.RawMessage, error) {
	if !p.dataChecked() || p.Data[skipWS(p.Data, 0)] != '[' {
		return SplitArgs(p.Data)
	}
	return splitArray(p.Data, skipWS(p.Data, 0)), nil
}

// Errors returned by the Decoder and by the decoding helpers. Every error
// returned by Decoder.AddText and Decoder.AddBinary wraps ErrInvalidPacket,
// so errors.Is(err, ErrInvalidPacket) tells the caller to close the
// connection; ErrTooManyAttachments and ErrUnexpectedBinary are wrapped in
// addition for the conditions they name.
var (
	// ErrInvalidPacket means a message is not a valid Socket.IO packet.
	ErrInvalidPacket = errors.New("parser: invalid packet")
	// ErrTooManyAttachments means a binary packet announced more
	// attachments than DecoderOptions.MaxAttachments.
	ErrTooManyAttachments = errors.New("parser: too many attachments")
	// ErrUnexpectedBinary means a binary message arrived while no packet
	// was waiting for attachments.
	ErrUnexpectedBinary = errors.New("parser: unexpected binary message")
)

// Encode returns the text message of p and, for binary packets, the
// attachment messages to send after it, in order (p.Attachments itself, not
// a copy). An Event or Ack with attachments is written as BinaryEvent or
// BinaryAck with the attachment count; the namespace is omitted when it is
// "/" or "". Encode allocates once.
func Encode(p *Packet) (text []byte, attachments [][]byte) {
	text = AppendEncode(make([]byte, 0, encodedLen(p)), p)
	if isBinary(wireType(p)) {
		attachments = p.Attachments
	}
	return text, attachments
}

// AppendEncode appends the text message of p to dst and returns the extended
// buffer, for callers that reuse pooled buffers. The attachments, if any, are
// p.Attachments; see Encode for the rules.
func AppendEncode(dst []byte, p *Packet) []byte {
	t := wireType(p)
	dst = append(dst, '0'+byte(t))
	if isBinary(t) {
		dst = strconv.AppendInt(dst, int64(len(p.Attachments)), 10)
		dst = append(dst, '-')
	}
	if p.Namespace != "" && p.Namespace != "/" {
		dst = append(dst, p.Namespace...)
		dst = append(dst, ',')
	}
	if p.HasID {
		dst = strconv.AppendUint(dst, p.ID, 10)
	}
	return append(dst, p.Data...)
}

// wireType is the type written on the wire: Event and Ack with attachments
// become their binary forms.
func wireType(p *Packet) PacketType {
	if len(p.Attachments) > 0 {
		switch p.Type {
		case Event:
			return BinaryEvent
		case Ack:
			return BinaryAck
		}
	}
	return p.Type
}

func isBinary(t PacketType) bool { return t == BinaryEvent || t == BinaryAck }

// encodedLen is the exact length of the text message of p.
func encodedLen(p *Packet) int {
	n := 1 + len(p.Data)
	if isBinary(wireType(p)) {
		n += digits(uint64(len(p.Attachments))) + 1
	}
	if p.Namespace != "" && p.Namespace != "/" {
		n += len(p.Namespace) + 1
	}
	if p.HasID {
		n += digits(p.ID)
	}
	return n
}

func digits(v uint64) int {
	n := 1
	for v >= 10 {
		v /= 10
		n++
	}
	return n
}
