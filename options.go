package switchboard

import (
	"log/slog"
	"time"

	"github.com/switchboard-io/switchboard/engineio"
)

// Options configures a Server. The zero value (or a nil *Options) gives the
// socket.io defaults stated on each field.
type Options struct {
	// Engine configures the Engine.IO layer: path (default "/socket.io/"),
	// ping interval (25 s) and timeout (20 s), maxHttpBufferSize (1e6),
	// transports, CORS, AllowRequest, per-connection outbound buffer, and
	// the connection cap. See engineio.Options.
	Engine engineio.Options

	// ConnectTimeout closes a connection that has not joined any namespace
	// within it. Default 45 s.
	ConnectTimeout time.Duration

	// MaxAttachments bounds the binary attachments of one packet. Default 10.
	MaxAttachments int

	// MaxRoomsPerSocket bounds how many rooms one socket may be in, its own
	// room included; Join beyond it returns ErrTooManyRooms. Default 512:
	// far above what chat-style applications use, while bounding the room
	// index a single hostile or buggy socket can grow to about 100 KB.
	MaxRoomsPerSocket int

	// Adapter creates the adapter of each namespace. Default: the in-memory
	// adapter (NewLocalAdapter), which serves a single node.
	Adapter func(ns *Namespace) Adapter

	// ConnectionStateRecovery, when set, turns on socket.io's
	// connection-state recovery: a client whose transport dropped gets its
	// socket back (same id, rooms and data) with the events it missed, if it
	// returns within MaxDisconnectionDuration. Default nil: off, as in
	// socket.io.
	ConnectionStateRecovery *RecoveryOptions

	// Store keeps the logs of durable rooms and their subscribers' cursors
	// (see Namespace.Publish and Socket.JoinDurable): bolt.Open for an
	// embedded store on disk, memory.NewStore for tests, redis.NewStore in
	// a cluster. Default nil: durable operations return ErrNoStore. The
	// server does not close it: close it after Server.Close.
	Store Store

	// Identity returns the stable identity of a connecting socket (a user
	// or device id), called once after the middlewares accepted it. Durable
	// subscriptions belong to identities. Default nil: sockets have none.
	Identity func(*Socket) string

	// Durable configures delivery from durable rooms.
	Durable DurableOptions

	// Logger receives structured logs. Default slog.Default().
	Logger *slog.Logger
}

// RecoveryOptions configures connection-state recovery.
type RecoveryOptions struct {
	// MaxDisconnectionDuration is how long a disconnected socket's state
	// and the events it may miss are kept. Default 2 minutes.
	MaxDisconnectionDuration time.Duration
	// RunMiddlewares runs the namespace middlewares again for a recovered
	// socket. Default false: they are skipped (socket.io's
	// skipMiddlewares: true), since they accepted the socket before.
	RunMiddlewares bool
	// MaxLogEvents bounds how many recent events the in-memory adapter keeps
	// per namespace for recovery; a client that missed more gets a fresh
	// session. Default 100,000.
	MaxLogEvents int
}

func (o *Options) withDefaults() Options {
	var out Options
	if o != nil {
		out = *o
	}
	if out.ConnectTimeout <= 0 {
		out.ConnectTimeout = 45 * time.Second
	}
	if out.MaxAttachments <= 0 {
		out.MaxAttachments = 10
	}
	if out.MaxRoomsPerSocket <= 0 {
		out.MaxRoomsPerSocket = 512
	}
	if out.Adapter == nil {
		out.Adapter = NewLocalAdapter
	}
	if r := out.ConnectionStateRecovery; r != nil {
		rc := *r
		if rc.MaxDisconnectionDuration <= 0 {
			rc.MaxDisconnectionDuration = 2 * time.Minute
		}
		if rc.MaxLogEvents <= 0 {
			rc.MaxLogEvents = 100_000
		}
		out.ConnectionStateRecovery = &rc
	}
	out.Durable = out.Durable.withDefaults()
	if out.Logger == nil {
		out.Logger = slog.Default()
	}
	if out.Engine.Logger == nil {
		out.Engine.Logger = out.Logger
	}
	return out
}
