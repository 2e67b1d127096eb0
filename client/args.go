package client

import (
	"encoding/json"
	"errors"

	"github.com/switchboard-io/switchboard/internal/callback"
)

// Errors returned by emits and passed to handlers.
var (
	// ErrAckTimeout is returned by EmitWithAck (and passed to the
	// EmitWithAckFunc callback) when no acknowledgement arrived in time.
	// Its message matches the JavaScript client's.
	ErrAckTimeout = errors.New("operation has timed out")
	// ErrDisconnected is returned for an acknowledgement that was sent but
	// not answered before the socket disconnected.
	ErrDisconnected = errors.New("socket has been disconnected")
	// ErrReservedEvent is returned when emitting a reserved event name such
	// as "connect" or "disconnect".
	ErrReservedEvent = errors.New("client: reserved event name")
)

// ConnectError is the error of a namespace CONNECT refused by the server,
// for example by a middleware: Message is err.message and Data the raw JSON
// of err.data (nil when absent). It is passed to "connect_error" handlers and
// returned by Dial. Failures to reach the server are passed as other errors.
type ConnectError struct {
	Message string
	Data    json.RawMessage
}

// Error returns the server's message.
func (e *ConnectError) Error() string { return e.Message }

// Args holds the arguments of a received event or acknowledgement: Raw
// holds each argument's JSON, a binary argument appearing there as a
// {"_placeholder":true,"num":i} object whose bytes are Attachments[i].
// Decode and Values resolve placeholders; Echo returns the arguments in a
// form Emit sends back unchanged. A handler whose first parameter is Args
// receives the whole argument list. It is the same type as switchboard.Args.
type Args = callback.Args

// AckFunc is the type of a handler's last parameter when the handler
// answers the server's acknowledgement request (func(args ...any)).
type AckFunc = callback.AckFunc
