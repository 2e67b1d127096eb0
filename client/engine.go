package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/switchboard-io/switchboard/engineio"
	"github.com/switchboard-io/switchboard/parser"
)

const (
	transportPolling   = "polling"
	transportWebsocket = "websocket"
)

// closeFlushTimeout bounds how long a graceful close waits for queued
// packets to be written.
const closeFlushTimeout = time.Second

// outPacket is one queued Engine.IO packet. buf, when set, is the pooled
// buffer behind Data, recycled once the packet is written.
type outPacket struct {
	engineio.Packet
	buf *[]byte
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

func putBuf(b *[]byte) {
	if cap(*b) > 64<<10 {
		return
	}
	*b = (*b)[:0]
	bufPool.Put(b)
}

func releaseAll(pkts []outPacket) {
	for i := range pkts {
		if pkts[i].buf != nil {
			putBuf(pkts[i].buf)
		}
		pkts[i] = outPacket{}
	}
}

// Engine is one Engine.IO session of a Manager: a polling or websocket
// transport, the heartbeat and the upgrade from polling to websocket. It is
// exposed for tests and benchmarks; its methods are safe for concurrent use.
//
// Goroutines: one reads (the polling loop or the websocket reader), one
// writes queued packets (batched into one POST when polling), and one probes
// the websocket upgrade and then becomes the websocket reader. They all end
// when the session closes.
type Engine struct {
	m     *Manager
	info  engineio.OpenInfo
	pollU string // polling URL with sid
	wsU   string // websocket URL with sid

	ctx    context.Context // canceled on close; bounds HTTP requests
	cancel context.CancelFunc

	initial   []engineio.Packet // packets that came with the open packet
	pingTimer *time.Timer
	pingDur   time.Duration
	dec       *parser.Decoder // used by the current reader only
	frame     []byte          // writer's scratch buffer
	isClosed  atomic.Bool

	wake     chan struct{} // cap 1: writer has work
	done     chan struct{} // closed once closed
	pollDone chan struct{} // closed when the polling loop ends
	wg       sync.WaitGroup

	writeMu sync.Mutex // held while writing a batch; the upgrade takes it to switch transports

	mu          sync.Mutex
	transport   string
	ws          *websocket.Conn // the websocket in use, nil while polling
	wsBatch     *batchConn      // under ws, nil if unavailable
	probe       *websocket.Conn // the websocket being probed
	out         []outPacket
	spare       []outPacket
	writing     bool // the writer goroutine is writing
	direct      bool // a send is writing from its caller's goroutine
	wsPending   bool // wsBatch holds bytes a direct send could not write: the writer writes them first
	upgrading   bool
	closing     bool // graceful close requested
	closeReason string
	closeTimer  *time.Timer
	closed      bool
	reason      string
}

// ID returns the Engine.IO session id.
func (e *Engine) ID() string { return e.info.SID }

// Transport returns the transport in use, "polling" or "websocket".
func (e *Engine) Transport() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.transport
}

// CloseTransport closes the transport abruptly, without a close packet, as
// if the network dropped: connected sockets get "disconnect" with reason
// "transport close" and the Manager reconnects (unless disabled).
func (e *Engine) CloseTransport() { e.terminate("transport close") }

// Send sends one raw Engine.IO message packet whose payload is data: a
// Socket.IO packet in text form, or a binary attachment when binary is true.
// It is meant for tests that need to put arbitrary bytes on the wire. data
// must not be modified afterwards.
func (e *Engine) Send(data []byte, binary bool) error {
	return e.send(outPacket{Packet: engineio.Packet{Type: engineio.MessagePacket, Data: data, Binary: binary}})
}

// Done returns a channel closed when the session has closed.
func (e *Engine) Done() <-chan struct{} { return e.done }

var errEngineClosed = errors.New("client: engine closed")

// send queues packets to be written contiguously and in order. It never
// blocks on the network: on an idle websocket it writes them at once from
// the caller's goroutine with one non-blocking write (what the socket does
// not take is left to the writer goroutine), which saves waking the writer
// for every emit. While the dispatcher has more handlers to run in the
// chunk of a burst it took (a server's batched write of many events, each
// acked), send queues instead; the chunk's last send writes what is queued
// and its own packets with one write(2), rather than one write each.
func (e *Engine) send(pkts ...outPacket) error {
	e.mu.Lock()
	if e.closed || e.closing {
		e.mu.Unlock()
		return errEngineClosed
	}
	if e.wsBatch != nil && !e.writing && !e.direct && !e.upgrading && !e.wsPending && !e.m.d.more.Load() {
		// What the burst's earlier handlers queued goes first, in the
		// same write.
		if len(e.out) > 0 {
			all := append(e.out, pkts...)
			if directSize(all) {
				e.out, e.spare = e.spare[:0], nil
				e.direct = true
				e.mu.Unlock()
				e.sendDirect(all)
				return nil
			}
			e.out = all
			e.mu.Unlock()
			e.wakeWriter()
			return nil
		}
		if directSize(pkts) {
			e.direct = true
			e.mu.Unlock()
			e.sendDirect(pkts)
			return nil
		}
	}
	e.out = append(e.out, pkts...)
	e.mu.Unlock()
	e.wakeWriter()
	return nil
}

// wakeWriter tells the writer goroutine there is something to write.
func (e *Engine) wakeWriter() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// directSize reports whether pkts are small enough for a direct send: a
// batch flushes early (blocking) past batchMax, and a direct send must not
// block.
func directSize(pkts []outPacket) bool {
	n := 0
	for i := range pkts {
		n += len(pkts[i].Data) + 16 // frame and packet headers
	}
	return n <= batchMax/2
}

// sendDirect is send's write on an idle websocket; the caller set direct.
func (e *Engine) sendDirect(pkts []outPacket) {
	e.writeMu.Lock()
	e.mu.Lock()
	ws, bc := e.ws, e.wsBatch
	e.mu.Unlock()
	bc.begin()
	err := writeFrames(ws, pkts, &e.frame)
	pending, ferr := bc.flushNow()
	e.writeMu.Unlock()
	releaseAll(pkts)
	if err == nil {
		err = ferr
	}
	e.mu.Lock()
	e.direct = false
	e.wsPending = pending
	wake := pending || len(e.out) > 0 || e.closing
	e.mu.Unlock()
	if err != nil {
		e.terminate("transport error")
		return
	}
	if wake {
		e.wakeWriter()
	}
}

// writable reports whether a packet would be written right away, as the
// JavaScript client's transport.writable: volatile packets are dropped
// otherwise.
func (e *Engine) writable() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return !e.closed && !e.closing && !e.writing && !e.direct && !e.upgrading && len(e.out) == 0
}

func (m *Manager) newEngine() *Engine {
	ctx, cancel := context.WithCancel(context.Background())
	return &Engine{
		m:        m,
		ctx:      ctx,
		cancel:   cancel,
		dec:      parser.NewDecoder(nil),
		wake:     make(chan struct{}, 1),
		done:     make(chan struct{}),
		pollDone: make(chan struct{}),
	}
}

// open performs the handshake with the first configured transport.
func (e *Engine) open(ctx context.Context) error {
	m := e.m
	switch t := m.opts.Transports[0]; t {
	case transportPolling:
		e.transport = transportPolling
		body, err := e.httpDo(ctx, http.MethodGet, m.endpoint(transportPolling, ""), nil)
		if err != nil {
			return err
		}
		pkts, err := engineio.DecodePayload(body)
		if err != nil {
			return fmt.Errorf("client: polling handshake: %w", err)
		}
		if len(pkts) == 0 {
			return errors.New("client: polling handshake: empty response")
		}
		if err := e.setOpen(pkts[0]); err != nil {
			return err
		}
		e.initial = pkts[1:]
	case transportWebsocket:
		e.transport = transportWebsocket
		conn, bc, err := e.dialWebsocket(ctx, m.endpoint(transportWebsocket, ""))
		if err != nil {
			return err
		}
		p, err := readPacket(ctx, conn)
		if err == nil {
			err = e.setOpen(p)
		}
		if err != nil {
			conn.Close()
			return err
		}
		e.ws, e.wsBatch = conn, bc
	default:
		return fmt.Errorf("client: unknown transport %q", t)
	}
	e.pollU = m.endpoint(transportPolling, e.info.SID)
	e.wsU = m.endpoint(transportWebsocket, e.info.SID)
	return nil
}

func (e *Engine) setOpen(p engineio.Packet) error {
	if p.Type != engineio.Open {
		return fmt.Errorf("client: handshake: expected an open packet, got type %q", p.Type)
	}
	if err := json.Unmarshal(p.Data, &e.info); err != nil {
		return fmt.Errorf("client: handshake: %w", err)
	}
	if e.info.SID == "" {
		return errors.New("client: handshake: no sid")
	}
	e.pingDur = time.Duration(e.info.PingInterval+e.info.PingTimeout) * time.Millisecond
	return nil
}

// readPacket reads one packet from conn within ctx's deadline.
func readPacket(ctx context.Context, conn *websocket.Conn) (engineio.Packet, error) {
	if dl, ok := ctx.Deadline(); ok {
		conn.SetReadDeadline(dl)
		defer conn.SetReadDeadline(time.Time{})
	}
	stop := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	typ, data, err := conn.ReadMessage()
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return engineio.Packet{}, fmt.Errorf("client: websocket: %w", err)
	}
	p, err := engineio.DecodePacket(data, typ == websocket.BinaryMessage)
	if err != nil {
		return engineio.Packet{}, fmt.Errorf("client: websocket: %w", err)
	}
	return p, nil
}

// dialWebsocket dials u and returns the connection and, unless a custom
// TLS dial is configured, the batchConn under it.
func (e *Engine) dialWebsocket(ctx context.Context, u string) (*websocket.Conn, *batchConn, error) {
	d, last := batchingDialer(e.m.opts.Dialer, strings.HasPrefix(u, "wss:"))
	conn, resp, err := d.DialContext(ctx, u, e.m.opts.Header)
	if err != nil {
		if resp != nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			resp.Body.Close()
			return nil, nil, fmt.Errorf("client: websocket dial: %w: %s %s", err, resp.Status, bytes.TrimSpace(body))
		}
		return nil, nil, fmt.Errorf("client: websocket dial: %w", err)
	}
	return conn, last(), nil
}

// httpDo sends one polling request and returns the body of a 200 response.
func (e *Engine) httpDo(ctx context.Context, method, u string, body []byte) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, fmt.Errorf("client: polling: %w", err)
	}
	for k, vs := range e.m.opts.Header {
		req.Header[k] = vs
	}
	if body != nil {
		req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	}
	resp, err := e.m.httpc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("client: polling %s: %w", method, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("client: polling %s: %w", method, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("client: polling %s: %s: %s", method, resp.Status, bytes.TrimSpace(b))
	}
	return b, nil
}

// start launches the goroutines of an opened session.
func (e *Engine) start() {
	e.pingTimer = time.AfterFunc(e.pingDur, func() { e.terminate("ping timeout") })
	e.wg.Add(2)
	go e.writeLoop()
	if e.transport == transportPolling {
		go e.pollLoop()
		opts := &e.m.opts
		if !opts.DisableUpgrade && slices.Contains(e.info.Upgrades, transportWebsocket) &&
			slices.Contains(opts.Transports, transportWebsocket) {
			e.wg.Add(1)
			go e.upgrade()
		}
	} else {
		close(e.pollDone)
		go e.wsReadLoop(e.ws)
	}
}

// handle processes received packets; it returns false once the session is
// closed.
func (e *Engine) handle(p engineio.Packet) bool {
	if e.isClosed.Load() {
		return false
	}
	switch p.Type {
	case engineio.MessagePacket:
		var sp *parser.Packet
		var err error
		if p.Binary {
			sp, err = e.dec.AddBinary(p.Data)
		} else {
			sp, err = e.dec.AddText(p.Data)
		}
		if err != nil {
			e.terminate("parse error")
			return false
		}
		if sp != nil {
			e.m.onPacket(e, sp)
		}
	case engineio.Ping:
		e.pingTimer.Reset(e.pingDur)
		e.send(outPacket{Packet: engineio.Packet{Type: engineio.Pong, Data: p.Data}})
	case engineio.Close:
		e.terminate("transport close")
		return false
	}
	return true
}

func (e *Engine) pollLoop() {
	defer e.wg.Done()
	defer close(e.pollDone)
	for _, p := range e.initial {
		if !e.handle(p) {
			return
		}
	}
	e.initial = nil
	for {
		e.mu.Lock()
		stop := e.closed || e.upgrading
		e.mu.Unlock()
		if stop {
			return
		}
		body, err := e.httpDo(e.ctx, http.MethodGet, e.pollU, nil)
		if err != nil {
			e.terminate("transport error")
			return
		}
		pkts, err := engineio.DecodePayload(body)
		if err != nil {
			e.terminate("parse error")
			return
		}
		for _, p := range pkts {
			if !e.handle(p) {
				return
			}
		}
	}
}

func (e *Engine) wsReadLoop(conn *websocket.Conn) {
	defer e.wg.Done()
	var buf bytes.Buffer
	for {
		typ, data, err := readMessage(conn, &buf)
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				e.terminate("transport close")
			} else {
				e.terminate("transport error")
			}
			return
		}
		p, err := engineio.DecodePacket(data, typ == websocket.BinaryMessage)
		if err != nil {
			e.terminate("parse error")
			return
		}
		if !e.handle(p) {
			return
		}
	}
}

// readMessage reads one message through the reusable buf and returns a copy
// of exactly its size: the decoded packet keeps referencing it.
func readMessage(conn *websocket.Conn, buf *bytes.Buffer) (int, []byte, error) {
	typ, r, err := conn.NextReader()
	if err != nil {
		return 0, nil, err
	}
	buf.Reset()
	if _, err := buf.ReadFrom(r); err != nil {
		return 0, nil, err
	}
	if buf.Cap() > 1<<20 {
		defer func() { *buf = bytes.Buffer{} }()
	}
	return typ, bytes.Clone(buf.Bytes()), nil
}

// upgrade probes a websocket for the polling session and, once the server
// answered the probe, pauses polling, sends the upgrade packet and switches
// transports; it then reads the websocket.
func (e *Engine) upgrade() {
	ctx, cancel := context.WithTimeout(e.ctx, e.m.opts.Timeout)
	conn, bc, err := e.dialWebsocket(ctx, e.wsU)
	if err != nil {
		cancel()
		e.wg.Done()
		return
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		cancel()
		conn.Close()
		e.wg.Done()
		return
	}
	e.probe = conn
	e.mu.Unlock()
	fail := func() {
		e.mu.Lock()
		e.probe = nil
		e.upgrading = false
		e.mu.Unlock()
		conn.Close()
		e.wakeWriter()
		e.wg.Done()
	}
	err = conn.WriteMessage(websocket.TextMessage, []byte("2probe"))
	var p engineio.Packet
	if err == nil {
		p, err = readPacket(ctx, conn)
	}
	cancel()
	if err != nil || p.Type != engineio.Pong || string(p.Data) != "probe" {
		fail()
		return
	}
	e.mu.Lock()
	e.upgrading = true // the polling loop stops after the GET in flight (the server answers it with noop)
	e.mu.Unlock()
	select {
	case <-e.pollDone:
	case <-e.done:
	}
	e.writeMu.Lock()
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		e.writeMu.Unlock()
		fail()
		return
	}
	e.mu.Unlock()
	if err := conn.WriteMessage(websocket.TextMessage, []byte("5")); err != nil {
		e.writeMu.Unlock()
		fail()
		e.terminate("transport error")
		return
	}
	e.mu.Lock()
	e.ws, e.wsBatch, e.probe = conn, bc, nil
	e.transport = transportWebsocket
	e.upgrading = false
	e.mu.Unlock()
	e.writeMu.Unlock()
	e.wakeWriter()
	e.wsReadLoop(conn)
}

func (e *Engine) writeLoop() {
	defer e.wg.Done()
	for {
		select {
		case <-e.wake:
		case <-e.done:
			e.mu.Lock()
			releaseAll(e.out)
			e.out = nil
			e.mu.Unlock()
			return
		}
		for {
			e.mu.Lock()
			batch := e.out
			if (len(batch) == 0 && !e.wsPending) || e.upgrading {
				e.writing = false
				closing := e.closing && len(batch) == 0
				e.mu.Unlock()
				if closing {
					e.writeClose()
					e.terminate(e.closeReason)
					return
				}
				break
			}
			e.out, e.spare = e.spare[:0], nil
			e.writing = true
			e.wsPending = false // e.write flushes it ahead of batch
			e.mu.Unlock()
			err := e.write(batch)
			releaseAll(batch)
			e.mu.Lock()
			if cap(batch) <= 4096 {
				e.spare = batch[:0]
			}
			e.mu.Unlock()
			if err != nil {
				e.terminate("transport error")
				return
			}
		}
	}
}

// write sends one batch on the current transport.
func (e *Engine) write(batch []outPacket) error {
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	e.mu.Lock()
	ws, bc := e.ws, e.wsBatch
	e.mu.Unlock()
	if ws != nil {
		if bc != nil {
			bc.begin()
		}
		err := writeFrames(ws, batch, &e.frame)
		if bc != nil {
			if ferr := bc.flush(); err == nil {
				err = ferr
			}
		}
		return err
	}
	// Polling: one POST per maxPayload bytes.
	maxPayload := e.info.MaxPayload
	if maxPayload <= 0 {
		maxPayload = 1e6
	}
	body := e.frame[:0]
	n := 0 // packets in body
	for i := range batch {
		mark := len(body)
		if n > 0 {
			body = append(body, 0x1e)
		}
		body = engineio.AppendPacket(body, batch[i].Packet, true)
		if n > 0 && len(body) > maxPayload {
			body = body[:mark]
			if _, err := e.httpDo(e.ctx, http.MethodPost, e.pollU, body); err != nil {
				e.frame = body
				return err
			}
			body = engineio.AppendPacket(body[:0], batch[i].Packet, true)
			n = 0
		}
		n++
	}
	e.frame = body
	_, err := e.httpDo(e.ctx, http.MethodPost, e.pollU, body)
	return err
}

// writeFrames writes one websocket frame per packet.
func writeFrames(ws *websocket.Conn, batch []outPacket, frame *[]byte) error {
	for i := range batch {
		p := &batch[i].Packet
		var err error
		if p.Binary {
			err = ws.WriteMessage(websocket.BinaryMessage, p.Data)
		} else {
			*frame = engineio.AppendPacket((*frame)[:0], *p, false)
			err = ws.WriteMessage(websocket.TextMessage, *frame)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// writeClose tells the server the session ends: a close packet when
// polling, a close frame on a websocket.
func (e *Engine) writeClose() {
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	e.mu.Lock()
	ws := e.ws
	e.mu.Unlock()
	if ws != nil {
		ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""),
			time.Now().Add(closeFlushTimeout))
		return
	}
	ctx, cancel := context.WithTimeout(e.ctx, closeFlushTimeout)
	defer cancel()
	e.httpDo(ctx, http.MethodPost, e.pollU, []byte{byte(engineio.Close)})
}

// shutdown closes the session gracefully: queued packets are written (for
// at most closeFlushTimeout), then the close packet, then the transport.
// It returns at once; Done is closed at the end.
func (e *Engine) shutdown(reason string) {
	e.mu.Lock()
	if e.closed || e.closing {
		e.mu.Unlock()
		return
	}
	e.closing = true
	e.closeReason = reason
	e.mu.Unlock()
	e.wakeWriter()
	t := time.AfterFunc(closeFlushTimeout, func() { e.terminate(reason) })
	e.mu.Lock()
	e.closeTimer = t
	e.mu.Unlock()
}

// terminate closes the session at once; the first reason wins.
func (e *Engine) terminate(reason string) {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return
	}
	e.closed = true
	e.isClosed.Store(true)
	e.reason = reason
	ws, probe, ct := e.ws, e.probe, e.closeTimer
	e.mu.Unlock()
	if ct != nil {
		ct.Stop()
	}
	e.cancel()
	if e.pingTimer != nil {
		e.pingTimer.Stop()
	}
	if ws != nil {
		ws.Close()
	}
	if probe != nil {
		probe.Close()
	}
	close(e.done)
}

// closeReason returns why the session closed; valid after Done.
func (e *Engine) closedReason() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.reason
}

// endpoint returns the URL of transport t for session sid ("" for the
// handshake).
func (m *Manager) endpoint(t, sid string) string {
	u := *m.base
	q := make(url.Values, len(m.opts.Query)+3)
	for k, v := range m.opts.Query {
		q[k] = v
	}
	q.Set("EIO", "4")
	q.Set("transport", t)
	if sid != "" {
		q.Set("sid", sid)
	}
	if t == transportWebsocket {
		if u.Scheme == "https" {
			u.Scheme = "wss"
		} else {
			u.Scheme = "ws"
		}
	}
	u.Path = m.opts.Path
	u.RawPath = ""
	u.RawQuery = q.Encode()
	return u.String()
}
