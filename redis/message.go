package redis

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-io/switchboard"
	"github.com/switchboard-io/switchboard/parser"
)

// Message types of socket.io-adapter's ClusterAdapter.
const (
	typeBroadcast               = 3
	typeSocketsJoin             = 4
	typeSocketsLeave            = 5
	typeDisconnectSockets       = 6
	typeFetchSockets            = 7
	typeFetchSocketsResponse    = 8
	typeServerSideEmit          = 9
	typeServerSideEmitResponse  = 10
	typeBroadcastClientCount    = 11
	typeBroadcastAck            = 12
	packetTypeEvent             = 2
	packetTypeBinaryEvent       = 5
	offsetPattern               = "^[0-9]+-[0-9]+$"
	streamFieldCount            = 8
	defaultBroadcastAckLifetime = time.Minute
)

// message is a decoded cluster message. Its data is a value tree (see
// msgpack.go), or raw JSON for a stream entry whose data was JSON (decoded
// into a tree only when needed: broadcasts have a faster path).
type message struct {
	uid  string
	nsp  string
	typ  int
	data any             // tree; nil when absent or JSON
	raw  json.RawMessage // JSON data of a stream entry
}

// tree returns the message data as a tree.
func (m *message) tree() (any, error) {
	if m.raw != nil {
		t, err := jsonToTree(m.raw, nil)
		if err != nil {
			return nil, err
		}
		m.data, m.raw = t, nil
	}
	return m.data, nil
}

// decodeStreamEntry decodes the fields of a stream entry: uid, nsp, type
// (a decimal string) and data, JSON when it starts with "{", else
// base64(msgpack).
func decodeStreamEntry(values map[string]any) (*message, error) {
	m := &message{}
	m.uid, _ = values["uid"].(string)
	m.nsp, _ = values["nsp"].(string)
	ts, _ := values["type"].(string)
	t, err := strconv.Atoi(ts)
	if err != nil {
		return nil, fmt.Errorf("type %q: %w", ts, err)
	}
	m.typ = t
	data, _ := values["data"].(string)
	switch {
	case data == "":
	case data[0] == '{':
		if !json.Valid([]byte(data)) {
			return nil, errors.New("data is not valid JSON")
		}
		m.raw = json.RawMessage(data)
	default:
		b, err := base64.StdEncoding.DecodeString(data)
		if err != nil {
			return nil, fmt.Errorf("data: %w", err)
		}
		if m.data, err = decodeMsgpack(b); err != nil {
			return nil, fmt.Errorf("data: %w", err)
		}
	}
	return m, nil
}

// decodePubSub decodes a pub/sub payload: msgpack of the whole message.
func decodePubSub(payload []byte) (*message, error) {
	v, err := decodeMsgpack(payload)
	if err != nil {
		return nil, err
	}
	o, ok := v.(obj)
	if !ok {
		return nil, fmt.Errorf("%w: message is a %T", errMsgpack, v)
	}
	m := &message{uid: getString(o, "uid"), nsp: getString(o, "nsp")}
	t, ok := getNumber(o, "type")
	if !ok {
		return nil, errors.New("message without a type")
	}
	m.typ = int(t)
	m.data, _ = o.get("data")
	return m, nil
}

// streamValues returns the fields of a stream entry, in the Node adapter's
// order. data is JSON unless the type may carry binary and does.
func streamValues(uid, nsp string, typ int, data any) ([]any, error) {
	var field string
	switch d := data.(type) {
	case json.RawMessage:
		field = string(d)
	default:
		if hasBinary(d) && (typ == typeBroadcast || typ == typeFetchSocketsResponse || typ == typeServerSideEmit ||
			typ == typeServerSideEmitResponse || typ == typeBroadcastAck) {
			field = base64.StdEncoding.EncodeToString(appendMsgpack(nil, d))
		} else {
			j, atts := treeToJSON(d)
			if len(atts) > 0 {
				return nil, errors.New("binary data in a message type that cannot carry it")
			}
			field = string(j)
		}
	}
	return []any{"uid", uid, "nsp", nsp, "type", strconv.Itoa(typ), "data", field}, nil
}

// pubSubPayload encodes a pub/sub message the way the Node adapter does:
// msgpack of {type, data, uid, nsp} (keys in the order socket.io sets them).
func pubSubPayload(uid, nsp string, typ int, data any) []byte {
	return appendMsgpack(nil, obj{{"type", int64(typ)}, {"data", data}, {"uid", uid}, {"nsp", nsp}})
}

// optsTree encodes BroadcastOptions as socket.io's encodeOptions does:
// {rooms, except, flags} with only the flags that are set.
func optsTree(opts switchboard.BroadcastOptions) obj {
	flags := obj{}
	if opts.Flags.Volatile {
		flags = append(flags, kv{"volatile", true})
	}
	if opts.Flags.Timeout > 0 {
		flags = append(flags, kv{"timeout", opts.Flags.Timeout.Milliseconds()})
	}
	return obj{{"rooms", strs(opts.Rooms)}, {"except", strs(opts.Except)}, {"flags", flags}}
}

func strs(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// optsJSON is optsTree as JSON.
func optsJSON(opts switchboard.BroadcastOptions) []byte {
	j, _ := treeToJSON(optsTree(opts))
	return j
}

// decodeOpts reads wire options. hasVolatile reports whether the volatile
// flag is present at all (socket.io only stores packets without it).
func decodeOpts(o obj) (opts switchboard.BroadcastOptions, hasVolatile bool) {
	opts.Rooms = getStrings(o, "rooms")
	opts.Except = getStrings(o, "except")
	flags := getObj(o, "flags")
	if v, ok := flags.get("volatile"); ok {
		hasVolatile = true
		opts.Flags.Volatile = v == true
	}
	if v, ok := flags.get("local"); ok {
		opts.Flags.Local = v == true
	}
	if ms, ok := getNumber(flags, "timeout"); ok && ms > 0 {
		opts.Flags.Timeout = time.Duration(ms * float64(time.Millisecond))
	}
	return opts, hasVolatile
}

// broadcastData is the data of a BROADCAST message: the event packet as
// JSON data plus attachments, its options, and requestId when the sender
// wants acknowledgements.
type broadcastData struct {
	data        json.RawMessage
	atts        [][]byte
	packetType  int
	hasPacketID bool
	opts        switchboard.BroadcastOptions
	hasVolatile bool
	requestID   string
	hasRequest  bool
}

// decodeBroadcast reads the data of a BROADCAST message.
func decodeBroadcast(m *message) (*broadcastData, error) {
	if m.raw != nil {
		// Fast path for JSON stream entries: no tree for the event data.
		var w struct {
			Packet struct {
				Type int             `json:"type"`
				Data json.RawMessage `json:"data"`
				ID   json.RawMessage `json:"id"`
			} `json:"packet"`
			Opts struct {
				Rooms  []string                   `json:"rooms"`
				Except []string                   `json:"except"`
				Flags  map[string]json.RawMessage `json:"flags"`
			} `json:"opts"`
			RequestID *string `json:"requestId"`
		}
		if err := json.Unmarshal(m.raw, &w); err != nil {
			return nil, err
		}
		b := &broadcastData{data: w.Packet.Data, packetType: w.Packet.Type, hasPacketID: w.Packet.ID != nil}
		b.opts.Rooms, b.opts.Except = w.Opts.Rooms, w.Opts.Except
		if v, ok := w.Opts.Flags["volatile"]; ok {
			b.hasVolatile, b.opts.Flags.Volatile = true, string(v) == "true"
		}
		if v, ok := w.Opts.Flags["local"]; ok {
			b.opts.Flags.Local = string(v) == "true"
		}
		if v, ok := w.Opts.Flags["timeout"]; ok {
			if ms, err := strconv.ParseFloat(string(v), 64); err == nil && ms > 0 {
				b.opts.Flags.Timeout = time.Duration(ms * float64(time.Millisecond))
			}
		}
		if w.RequestID != nil {
			b.requestID, b.hasRequest = *w.RequestID, true
		}
		if !isJSONArray(b.data) {
			return nil, errors.New("packet data is not an array")
		}
		return b, nil
	}
	d, ok := m.data.(obj)
	if !ok {
		return nil, errors.New("broadcast without data")
	}
	packet := getObj(d, "packet")
	b := &broadcastData{}
	t, _ := getNumber(packet, "type")
	b.packetType = int(t)
	if id, ok := packet.get("id"); ok && id != nil {
		b.hasPacketID = true
	}
	pd, _ := packet.get("data")
	if _, ok := pd.([]any); !ok {
		return nil, errors.New("packet data is not an array")
	}
	b.data, b.atts = treeToJSON(pd)
	b.opts, b.hasVolatile = decodeOpts(getObj(d, "opts"))
	if rid, ok := d.get("requestId"); ok {
		b.requestID, _ = rid.(string)
		b.hasRequest = true
	}
	return b, nil
}

func isJSONArray(b json.RawMessage) bool {
	s := strings.TrimSpace(string(b))
	return len(s) >= 2 && s[0] == '[' && s[len(s)-1] == ']'
}

// encodeBroadcast returns the data of a BROADCAST message for p: raw JSON
// when p has no attachments, else a tree holding the binary values.
// requestID is added when not empty.
func encodeBroadcast(p *parser.Packet, opts switchboard.BroadcastOptions, requestID string) (any, error) {
	if len(p.Attachments) == 0 && requestID == "" {
		var b []byte
		b = append(b, `{"packet":{"type":2,"data":`...)
		b = append(b, p.Data...)
		b = append(b, `},"opts":`...)
		b = append(b, optsJSON(opts)...)
		b = append(b, '}')
		return json.RawMessage(b), nil
	}
	data, err := jsonToTree(p.Data, p.Attachments)
	if err != nil {
		return nil, err
	}
	d := obj{{"packet", obj{{"type", int64(packetTypeEvent)}, {"data", data}}}}
	if requestID != "" {
		d = append(d, kv{"requestId", requestID})
	}
	return append(d, kv{"opts", optsTree(opts)}), nil
}

// argsTree returns the first argument of an answer as a tree (nil when
// there is none), as socket.io's cluster adapter forwards only that one.
func argsTree(args switchboard.Args) any {
	if len(args.Raw) == 0 {
		return nil
	}
	v, err := jsonToTree(args.Raw[0], args.Attachments)
	if err != nil {
		return nil
	}
	return v
}

// treeArgs turns a forwarded answer back into Args.
func treeArgs(v any) switchboard.Args {
	if v == nil {
		return switchboard.Args{}
	}
	raw, atts := treeToJSON(v)
	return switchboard.Args{Raw: []json.RawMessage{raw}, Attachments: atts}
}

// appendOffset returns a copy of the JSON array data with the offset
// appended as a last string element.
func appendOffset(data json.RawMessage, offset string) json.RawMessage {
	s := strings.TrimSpace(string(data))
	inner := strings.TrimSpace(s[1 : len(s)-1])
	out := make([]byte, 0, len(s)+len(offset)+4)
	out = append(out, s[:len(s)-1]...)
	if inner != "" {
		out = append(out, ',')
	}
	out = strconv.AppendQuote(out, offset) // offsets are ASCII digits and '-'
	return append(out, ']')
}
