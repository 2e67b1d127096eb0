package client

import (
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/gorilla/websocket"
)

// Options configures a Manager. A nil *Options means all defaults; every
// zero field takes the default stated next to it. The Manager keeps a copy,
// so changing Options after NewManager has no effect.
type Options struct {
	// Path is the Engine.IO endpoint. Default "/socket.io/".
	Path string
	// Transports lists the transports to use, "polling" and/or "websocket".
	// The first one opens the session. Default {"polling", "websocket"}.
	Transports []string
	// DisableUpgrade keeps a polling session on polling. By default a
	// polling session upgrades to websocket when the server offers it and
	// Transports contains "websocket".
	DisableUpgrade bool
	// Query is added to the query string of every request.
	Query url.Values
	// Header is sent with every HTTP request and the websocket handshake.
	Header http.Header
	// Auth is the CONNECT payload of every namespace, usually a
	// map[string]any or a struct; it must encode as a JSON object.
	// Default nil: no payload.
	Auth any
	// AuthFunc, if set, is called before each CONNECT (on every
	// reconnection too) and its result replaces Auth. It runs on the
	// goroutine calling Socket.Connect or on the Manager's connection
	// goroutine, and must not block for long.
	AuthFunc func() any
	// DisableReconnection stops the Manager from reconnecting after the
	// connection is lost or cannot be opened.
	DisableReconnection bool
	// ReconnectionAttempts is the number of consecutive failed attempts
	// after which the Manager gives up. Default 0: unlimited.
	ReconnectionAttempts int
	// ReconnectionDelay is the delay before the first reconnection
	// attempt; it doubles on every failed attempt up to
	// ReconnectionDelayMax. Default 1s.
	ReconnectionDelay time.Duration
	// ReconnectionDelayMax caps the reconnection delay. Default 5s.
	ReconnectionDelayMax time.Duration
	// RandomizationFactor randomizes each delay by ± that fraction.
	// Default 0.5; a negative value disables randomization.
	RandomizationFactor float64
	// Timeout bounds the opening of the Engine.IO session (handshake and
	// websocket dial). Default 20s.
	Timeout time.Duration
	// AckTimeout is the default acknowledgement timeout of EmitWithAck and
	// EmitWithAckFunc; Emitter.Timeout overrides it. Default 0: none.
	AckTimeout time.Duration
	// HTTPClient sends the polling requests. Default: a client with its own
	// transport, whose idle connections are closed by Manager.Close.
	HTTPClient *http.Client
	// Dialer opens websocket connections (set NetDialContext to bind a
	// source address, TLSClientConfig, Proxy...). Default: a copy of
	// websocket.DefaultDialer with HandshakeTimeout set to Timeout.
	Dialer *websocket.Dialer
}

// withDefaults returns a copy of o (which may be nil) with defaults applied.
func (o *Options) withDefaults() Options {
	var c Options
	if o != nil {
		c = *o
	}
	if c.Path == "" {
		c.Path = "/socket.io/"
	}
	if c.Path[0] != '/' {
		c.Path = "/" + c.Path
	}
	if len(c.Transports) == 0 {
		c.Transports = []string{transportPolling, transportWebsocket}
	} else {
		c.Transports = slices.Clone(c.Transports)
	}
	c.Query = cloneValues(c.Query)
	c.Header = c.Header.Clone()
	if c.ReconnectionDelay <= 0 {
		c.ReconnectionDelay = time.Second
	}
	if c.ReconnectionDelayMax <= 0 {
		c.ReconnectionDelayMax = 5 * time.Second
	}
	if c.ReconnectionDelayMax < c.ReconnectionDelay {
		c.ReconnectionDelayMax = c.ReconnectionDelay
	}
	if c.RandomizationFactor == 0 {
		c.RandomizationFactor = 0.5
	} else if c.RandomizationFactor < 0 {
		c.RandomizationFactor = 0
	} else if c.RandomizationFactor > 1 {
		c.RandomizationFactor = 1
	}
	if c.Timeout <= 0 {
		c.Timeout = 20 * time.Second
	}
	if c.Dialer == nil {
		d := *websocket.DefaultDialer
		d.HandshakeTimeout = c.Timeout
		c.Dialer = &d
	}
	return c
}

func cloneValues(v url.Values) url.Values {
	if v == nil {
		return nil
	}
	c := make(url.Values, len(v))
	for k, vs := range v {
		c[k] = slices.Clone(vs)
	}
	return c
}
