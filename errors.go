package switchboard

import (
	"encoding/json"
	"errors"
)

var (
	// ErrAckTimeout is returned by EmitWithAck when not every expected answer
	// arrived in time. For a broadcast, the answers that did arrive are
	// returned along with it.
	ErrAckTimeout = errors.New("operation has timed out")
	// ErrReservedEvent is returned by Emit for event names that socket.io
	// reserves (connect, connect_error, disconnect, disconnecting,
	// newListener, removeListener).
	ErrReservedEvent = errors.New("reserved event name")
	// ErrDisconnected is returned when emitting on a socket that is no longer
	// connected, and by pending EmitWithAck calls when the socket disconnects.
	ErrDisconnected = errors.New("socket disconnected")
	// ErrTooManyRooms is returned by Join when a socket would exceed
	// Options.MaxRoomsPerSocket.
	ErrTooManyRooms = errors.New("too many rooms for one socket")
	// ErrSessionNotFound is returned by Adapter.RestoreSession when there is
	// no session to recover.
	ErrSessionNotFound = errors.New("session not found")
	// ErrServerClosed is returned by operations on a closed Server.
	ErrServerClosed = errors.New("server closed")
)

// ConnectError is an error a middleware returns to refuse a connection with
// data for the client: the client's connect_error handler receives an Error
// whose message is Message and whose data is Data. Any other error refuses
// the connection with its Error() text as message and no data.
type ConnectError struct {
	Message string
	Data    any
}

func (e *ConnectError) Error() string { return e.Message }

// connectErrorPayload is the CONNECT_ERROR body: {"message", "data"?}.
func connectErrorPayload(err error) json.RawMessage {
	body := struct {
		Message string `json:"message"`
		Data    any    `json:"data,omitempty"`
	}{Message: err.Error()}
	var ce *ConnectError
	if errors.As(err, &ce) {
		body.Message, body.Data = ce.Message, ce.Data
	}
	b, mErr := json.Marshal(body)
	if mErr != nil {
		b, _ = json.Marshal(struct {
			Message string `json:"message"`
		}{body.Message})
	}
	return b
}

// reservedEvents may not be emitted by the server and are never dispatched
// to handlers when a client sends them.
var reservedEvents = map[string]bool{
	"connect": true, "connect_error": true, "disconnect": true, "disconnecting": true,
	"newListener": true, "removeListener": true,
}
