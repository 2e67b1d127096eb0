package engineio

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
)

// PacketType is the type of an Engine.IO packet: the first character of its
// text form.
type PacketType byte

// Engine.IO v4 packet types.
const (
	Open          PacketType = '0' // server → client: handshake data (OpenInfo as JSON)
	Close         PacketType = '1' // either way: close the session
	Ping          PacketType = '2' // server → client heartbeat; "2probe" from the client during an upgrade
	Pong          PacketType = '3' // client → server heartbeat reply; "3probe" from the server during an upgrade
	MessagePacket PacketType = '4' // application data
	Upgrade       PacketType = '5' // client → server: switch to the probed transport
	Noop          PacketType = '6' // no operation; ends a pending long-poll during an upgrade
)

// String returns the name of the packet type, as engine.io spells it.
func (t PacketType) String() string {
	switch t {
	case Open:
		return "open"
	case Close:
		return "close"
	case Ping:
		return "ping"
	case Pong:
		return "pong"
	case MessagePacket:
		return "message"
	case Upgrade:
		return "upgrade"
	case Noop:
		return "noop"
	}
	return fmt.Sprintf("PacketType(%q)", byte(t))
}

func (t PacketType) valid() bool { return t >= Open && t <= Noop }

// Packet is one decoded Engine.IO packet. Binary is only meaningful for
// MessagePacket packets. Data may alias the buffer it was decoded from.
// Packet is a plain value: the codec functions are pure and safe for
// concurrent use.
type Packet struct {
	Type   PacketType
	Data   []byte
	Binary bool
}

// ErrInvalidPacket is returned (wrapped) by DecodePacket and DecodePayload
// for input that is not a valid Engine.IO v4 packet or payload.
var ErrInvalidPacket = errors.New("engineio: invalid packet")

// recordSeparator joins packets in a polling payload.
const recordSeparator = 0x1e

// AppendPacket appends the text form "<type><data>" of p to dst and returns
// the extended buffer. A binary Message is appended as "b" followed by the
// standard base64 encoding of its data when polling is true, and as its raw
// bytes (the content of a binary websocket frame) otherwise.
func AppendPacket(dst []byte, p Packet, polling bool) []byte {
	if p.Binary {
		if !polling {
			return append(dst, p.Data...)
		}
		dst = append(dst, 'b')
		return base64.StdEncoding.AppendEncode(dst, p.Data)
	}
	dst = append(dst, byte(p.Type))
	return append(dst, p.Data...)
}

// DecodePacket decodes one websocket frame. A binary frame is a raw Message
// packet; a text frame is "<type><data>" or "b<base64>" (a binary Message).
// The returned Data aliases frame except for base64 input. It returns an error
// wrapping ErrInvalidPacket for an empty text frame, an unknown type or bad
// base64.
func DecodePacket(frame []byte, binary bool) (Packet, error) {
	if binary {
		return Packet{Type: MessagePacket, Data: frame, Binary: true}, nil
	}
	if len(frame) == 0 {
		return Packet{}, fmt.Errorf("%w: empty", ErrInvalidPacket)
	}
	if frame[0] == 'b' {
		data, err := decodeBase64(frame[1:])
		if err != nil {
			return Packet{}, err
		}
		return Packet{Type: MessagePacket, Data: data, Binary: true}, nil
	}
	t := PacketType(frame[0])
	if !t.valid() {
		return Packet{}, fmt.Errorf("%w: unknown type %q", ErrInvalidPacket, frame[0])
	}
	return Packet{Type: t, Data: frame[1:]}, nil
}

func decodeBase64(src []byte) ([]byte, error) {
	enc := base64.StdEncoding
	if len(src)%4 != 0 {
		enc = base64.RawStdEncoding
	}
	dst := make([]byte, enc.DecodedLen(len(src)))
	n, err := enc.Decode(dst, src)
	if err != nil {
		return nil, fmt.Errorf("%w: bad base64: %v", ErrInvalidPacket, err)
	}
	return dst[:n], nil
}

// AppendPayload appends the polling payload form of packets to dst: each
// packet as AppendPacket(…, true), joined by the record separator 0x1e.
func AppendPayload(dst []byte, packets []Packet) []byte {
	for i, p := range packets {
		if i > 0 {
			dst = append(dst, recordSeparator)
		}
		dst = AppendPacket(dst, p, true)
	}
	return dst
}

// DecodePayload splits a polling request body at the record separator and
// decodes every packet as a text frame. It runs in time linear in len(body).
// Text packet data aliases body. An empty body, an empty packet or any
// invalid packet makes the whole payload invalid (an error wrapping
// ErrInvalidPacket), as in engine.io.
func DecodePayload(body []byte) ([]Packet, error) {
	packets := make([]Packet, 0, bytes.Count(body, []byte{recordSeparator})+1)
	for {
		i := bytes.IndexByte(body, recordSeparator)
		chunk := body
		if i >= 0 {
			chunk = body[:i]
		}
		p, err := DecodePacket(chunk, false)
		if err != nil {
			return nil, err
		}
		packets = append(packets, p)
		if i < 0 {
			return packets, nil
		}
		body = body[i+1:]
	}
}
