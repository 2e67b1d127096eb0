package engineio

import (
	"bufio"
	"compress/flate"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
	"github.com/switchboard-io/switchboard/internal/nbwrite"
)

const (
	// batchFlushSize is the batch size at which the writer flushes early, so
	// that a burst does not build one huge buffer.
	batchFlushSize = 32 << 10
	// maxFragments bounds the continuation frames of one message.
	maxFragments = 4096
)

// wsTransport is one websocket: the gorilla connection and the batching
// net.Conn under it.
type wsTransport struct {
	conn *websocket.Conn
	raw  *batchConn
	br   *bufio.Reader // gorilla's read buffer: empty at a message boundary when nothing more came
	park parkState
}

// hijackWriter makes the upgrader hijack into a batchConn, read through a
// bufio.Reader of ours (so that the reader can tell whether data is
// buffered before it parks).
type hijackWriter struct {
	http.ResponseWriter
	raw *batchConn
	br  *bufio.Reader
}

func (h *hijackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	h.raw = &batchConn{Conn: conn}
	if brw.Reader.Buffered() > 0 {
		// The client sent data before the handshake's answer: gorilla
		// refuses the connection on the reader it is given.
		return h.raw, brw, nil
	}
	// gorilla reads through a hijacked reader larger than 256 bytes
	// instead of allocating its own (and resets it onto our conn).
	h.br = bufio.NewReaderSize(h.raw, wsReadBufferSize)
	return h.raw, bufio.NewReadWriter(h.br, brw.Writer), nil
}

// upgrade completes the websocket handshake. On failure the upgrader has
// answered the request or closed the connection.
func (s *Server) upgrade(w http.ResponseWriter, r *http.Request) (*wsTransport, error) {
	hw := &hijackWriter{ResponseWriter: w}
	conn, err := s.upgrader.Upgrade(hw, r, nil)
	if err != nil {
		if hw.raw != nil {
			_ = hw.raw.Close()
		}
		return nil, err
	}
	conn.SetReadLimit(s.opts.MaxHTTPBufferSize)
	if d := s.opts.PerMessageDeflate; d != nil {
		_ = conn.SetCompressionLevel(d.Level)
		conn.EnableWriteCompression(false)
	}
	t := &wsTransport{conn: conn, raw: hw.raw, br: hw.br, park: parkState{fd: -1}}
	if s.poller != nil && hw.br != nil {
		if fd, ok := hw.raw.fd(); ok {
			t.park.fd, t.park.poller = fd, s.poller
		}
	}
	hw.raw.onClose = t.unpark
	return t, nil
}

// handshakeWebsocket starts a websocket-only session. The caller holds a
// reservation.
func (s *Server) handshakeWebsocket(w http.ResponseWriter, r *http.Request) {
	t, err := s.upgrade(w, r)
	if err != nil {
		s.unreserve()
		return
	}
	c := s.newConn(r, transportWebsocket, t)
	s.connected(c)
	s.wg.Add(1)
	go c.readLoop(t, false)
}

// serveUpgrade accepts a probe websocket for a polling session; a websocket
// for a session that is not polling, or already probing, is closed.
func (s *Server) serveUpgrade(w http.ResponseWriter, r *http.Request, c *Conn) {
	t, err := s.upgrade(w, r)
	if err != nil {
		return
	}
	c.mu.Lock()
	if c.state != stateOpen || c.ws != nil || c.probe != nil {
		c.mu.Unlock()
		t.closeWith(websocket.CloseNoStatusReceived)
		_ = t.raw.Close()
		return
	}
	c.probe = t
	c.upgradeTimer = time.AfterFunc(s.opts.UpgradeTimeout, func() {
		c.mu.Lock()
		if c.probe == t {
			c.probe = nil
			c.upgrading = false
			c.mu.Unlock()
			_ = t.raw.Close()
			return
		}
		c.mu.Unlock()
	})
	s.wg.Add(1)
	c.mu.Unlock()
	go c.readLoop(t, true)
}

// closeWith sends a close frame with code (CloseNoStatusReceived: an empty
// one), waiting at most closeFlushTimeout.
func (t *wsTransport) closeWith(code int) {
	_ = t.raw.Conn.SetWriteDeadline(time.Now().Add(closeFlushTimeout))
	_ = t.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, ""), time.Now().Add(closeFlushTimeout))
}

// next reads one message into a pooled buffer, bounded by max bytes after
// inflation. The caller returns buf with putBuf(buf, data).
func (t *wsTransport) next(max int64) (binary bool, data []byte, buf *[]byte, err error) {
	mt, r, err := t.conn.NextReader()
	if err != nil {
		return false, nil, nil, err
	}
	buf = getBuf()
	data, err = readLimited(r, *buf, max)
	return mt == websocket.BinaryMessage, data, buf, err
}

// readError closes the websocket as its read error requires and returns the
// close reason.
func (t *wsTransport) readError(err error) string {
	var pe *protocolError
	var ce *websocket.CloseError
	switch {
	case errors.As(err, &pe):
		t.closeWith(pe.code)
	case errors.Is(err, errTooBig):
		t.closeWith(websocket.CloseMessageTooBig)
	case errors.As(err, new(flate.CorruptInputError)) || errors.Is(err, io.ErrUnexpectedEOF):
		// Bad permessage-deflate data (gorilla reports a truncated frame as
		// a *websocket.CloseError, never as io.ErrUnexpectedEOF).
		t.closeWith(websocket.CloseInvalidFramePayloadData)
	case errors.As(err, &ce):
		return "transport close"
	}
	return "transport error"
}

// readLoop is the websocket's reader goroutine. For a probe it first runs
// the upgrade; once the websocket carries the session, it delivers packets
// until the connection fails, then finishes the session.
func (c *Conn) readLoop(t *wsTransport, probe bool) {
	carrier := !probe
	reason := "transport close"
	parked := false
	defer func() {
		if parked {
			return // a new reader goroutine takes over; the count stays
		}
		defer c.srv.wg.Done()
		if v := recover(); v != nil {
			c.srv.log.Error("engineio: panic in websocket reader", "sid", c.id, "panic", v, "stack", string(debug.Stack()))
			reason = "transport error"
		}
		_ = t.raw.Close()
		if carrier {
			c.finish(reason)
		} else {
			c.probeEnded(t)
		}
	}()
	if probe {
		if !c.runProbe(t) {
			return
		}
		carrier = true
	}
	t.ensureReadBuffer() // a resumed reader makes the buffer its parked predecessor let go
	if t.park.poller != nil {
		t.park.owner = c
		t.park.poller.watch(t)
		defer func() {
			if !parked {
				t.park.poller.unwatch(t)
			}
		}()
	}
	max := c.srv.opts.MaxHTTPBufferSize
	for {
		if t.park.poller != nil && t.br.Buffered() == 0 {
			parkNow, err := c.waitIdle(t)
			if err != nil {
				reason = t.readError(err)
				return
			}
			if parkNow {
				t.releaseReadBuffer() // before parkReader: from then on the resumed reader owns t.br
				if parked = t.parkReader(); parked {
					return
				}
				t.ensureReadBuffer()
			}
		}
		binary, data, buf, err := t.next(max)
		if err != nil {
			if buf != nil {
				putBuf(buf, data)
			}
			reason = t.readError(err)
			return
		}
		p, err := DecodePacket(data, binary)
		if err != nil {
			putBuf(buf, data)
			reason = "parse error"
			t.closeWith(websocket.CloseNormalClosure)
			return
		}
		c.handlePacket(p)
		putBuf(buf, data)
	}
}

// releaseReadBuffer lets a parking reader's buffer go: nothing is buffered
// when a reader parks, and a parked connection then keeps ~270 bytes less.
// Only the reader's role touches t.br, and no reader runs while parked.
func (t *wsTransport) releaseReadBuffer() {
	if t.br != nil {
		*t.br = bufio.Reader{}
	}
}

// ensureReadBuffer gives t.br a buffer again after releaseReadBuffer. It
// fills the Reader gorilla holds in place (a struct copy) because gorilla
// keeps that pointer.
func (t *wsTransport) ensureReadBuffer() {
	if t.br != nil && t.br.Size() == 0 {
		*t.br = *bufio.NewReaderSize(t.raw, wsReadBufferSize)
	}
}

// runProbe answers "2probe" with "3probe" and waits for the upgrade packet;
// true when the session now runs on t.
func (c *Conn) runProbe(t *wsTransport) bool {
	max := c.srv.opts.MaxHTTPBufferSize
	p, ok := readOne(t, max)
	if !ok || p.Type != Ping || string(p.Data) != "probe" {
		return false
	}
	if err := t.writeBatch([]Packet{{Type: Pong, Data: []byte("probe")}}, nil); err != nil {
		return false
	}
	c.mu.Lock()
	if c.probe != t || c.state == stateClosed {
		c.mu.Unlock()
		return false
	}
	c.upgrading = true
	c.signalLocked() // the pending GET answers noop
	c.mu.Unlock()

	p, ok = readOne(t, max)
	if !ok || p.Type != Upgrade {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.probe != t || c.state == stateClosed {
		return false
	}
	c.probe = nil
	c.upgrading = false
	if c.upgradeTimer != nil {
		c.upgradeTimer.Stop()
		c.upgradeTimer = nil
	}
	c.ws = t
	c.transport = transportWebsocket
	c.signalLocked()
	if (c.queue != nil && len(*c.queue) > 0) || c.state == stateClosing {
		// A closing session flushes on the websocket, then closes it.
		if c.state == stateClosing {
			_ = t.raw.Conn.SetWriteDeadline(time.Now().Add(closeFlushTimeout))
		}
		c.kickLocked()
	}
	return true
}

// readOne reads one small control packet of the upgrade; its data is copied.
func readOne(t *wsTransport, max int64) (Packet, bool) {
	binary, data, buf, err := t.next(max)
	if buf != nil {
		defer putBuf(buf, data)
	}
	if err != nil {
		t.readError(err)
		return Packet{}, false
	}
	p, err := DecodePacket(data, binary)
	if err != nil {
		return Packet{}, false
	}
	p.Data = append([]byte(nil), p.Data...)
	return p, true
}

// probeEnded forgets a probe websocket that did not complete the upgrade.
func (c *Conn) probeEnded(t *wsTransport) {
	c.mu.Lock()
	if c.probe == t {
		c.probe = nil
		c.upgrading = false
		if c.upgradeTimer != nil {
			c.upgradeTimer.Stop()
			c.upgradeTimer = nil
		}
	}
	c.mu.Unlock()
}

// writeLoop is the websocket's writer goroutine: it runs while packets are
// queued, writing each batch with one syscall, and ends when the queue is
// empty. On a closing session it sends the close frame last.
func (c *Conn) writeLoop(t *wsTransport) {
	defer c.srv.wg.Done()
	defer func() {
		if v := recover(); v != nil {
			c.srv.log.Error("engineio: panic in websocket writer", "sid", c.id, "panic", v, "stack", string(debug.Stack()))
			c.mu.Lock()
			c.writing = false
			c.mu.Unlock()
			c.close("transport error", closeImmediate)
		}
	}()
	deflate := c.srv.opts.PerMessageDeflate
	for {
		c.mu.Lock()
		if c.state == stateClosed {
			c.writing = false
			c.mu.Unlock()
			return
		}
		q := c.takeLocked()
		if q == nil && t.raw.hasTail() {
			// What a SendNow left unwritten goes out first.
			c.mu.Unlock()
			if err := t.raw.flush(); err != nil {
				c.mu.Lock()
				c.writing = false
				c.mu.Unlock()
				c.close("transport error", closeImmediate)
				return
			}
			continue
		}
		if q == nil {
			closing := c.state == stateClosing
			c.writing = false
			c.mu.Unlock()
			if closing {
				t.closeWith(websocket.CloseNormalClosure)
				// The reader ends on the peer's close frame or at this deadline.
				_ = t.raw.Conn.SetReadDeadline(time.Now().Add(closeFlushTimeout))
				t.unpark() // a parked reader resumes to wait for it
			}
			return
		}
		c.mu.Unlock()
		err := t.writeBatch(*q, deflate)
		n := packetBytes(q)
		releaseQueue(q)
		c.mu.Lock()
		c.queued -= n
		if err != nil {
			c.writing = false
		}
		c.mu.Unlock()
		if err != nil {
			c.close("transport error", closeImmediate)
			return
		}
	}
}

// writeBatch writes packets, one per frame, coalesced into as few writes on
// the network connection as batchFlushSize allows (usually one). Frames are
// built here directly (a server frame is a header and the payload, unmasked);
// only messages to compress go through gorilla's writer, whose output the
// batchConn collects too.
func (t *wsTransport) writeBatch(pkts []Packet, deflate *DeflateOptions) error {
	t.raw.begin()
	var err error
	for _, p := range pkts {
		if deflate != nil && len(p.Data)+1 >= deflate.Threshold {
			err = t.writeCompressed(p)
		} else {
			t.raw.appendFrame(p)
		}
		if err != nil {
			break
		}
		if t.raw.pending() >= batchFlushSize {
			if err = t.raw.flush(); err != nil {
				break
			}
			t.raw.begin()
		}
	}
	if ferr := t.raw.flush(); err == nil {
		err = ferr
	}
	return err
}

// writeCompressed writes p through gorilla with permessage-deflate (a no-op
// if the client did not negotiate it).
func (t *wsTransport) writeCompressed(p Packet) error {
	t.conn.EnableWriteCompression(true)
	defer t.conn.EnableWriteCompression(false)
	if p.Binary {
		return t.conn.WriteMessage(websocket.BinaryMessage, p.Data)
	}
	w, err := t.conn.NextWriter(websocket.TextMessage)
	if err != nil {
		return err
	}
	if _, err = w.Write([]byte{byte(p.Type)}); err == nil {
		_, err = w.Write(p.Data)
	}
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	return err
}

// batchConn is the net.Conn under a gorilla websocket. While the writer
// batches, frames written by gorilla are appended to a buffer that flush
// writes with one syscall; otherwise writes pass through. Reads pass through
// a frameGuard. Write deadlines set by gorilla are ignored: the package sets
// them on the embedded conn itself when closing.
type batchConn struct {
	net.Conn
	mu       sync.Mutex
	batching bool
	// for writeDirect; set by directOK, which only the writer's role calls
	rawState uint8 // rawUnknown, rawYes, rawNone
	rc       syscall.RawConn
	buf      *[]byte // pooled, while batching

	guard frameGuard // reader goroutine only

	onClose func() // set once before the transport is used
}

const (
	rawUnknown uint8 = iota
	rawYes
	rawNone
)

func (b *batchConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	if b.batching {
		*b.buf = append(*b.buf, p...)
		b.mu.Unlock()
		return len(p), nil
	}
	b.mu.Unlock()
	return b.Conn.Write(p)
}

func (b *batchConn) SetWriteDeadline(time.Time) error { return nil }

// Close resumes a parked reader (which then finds the connection closed)
// and closes the connection.
func (b *batchConn) Close() error {
	if b.onClose != nil {
		b.onClose()
	}
	return b.Conn.Close()
}

// syscallConn returns the connection's raw descriptor access; false for a
// connection without one (TLS served by Go).
func (b *batchConn) syscallConn() (syscall.RawConn, bool) {
	sc, ok := b.Conn.(syscall.Conn)
	if !ok {
		return nil, false
	}
	rc, err := sc.SyscallConn()
	return rc, err == nil
}

// fd returns the socket's file descriptor, for the poller; valid until
// Close.
func (b *batchConn) fd() (int, bool) {
	rc, ok := b.syscallConn()
	if !ok {
		return -1, false
	}
	fd := -1
	if rc.Control(func(f uintptr) { fd = int(f) }) != nil || fd < 0 {
		return -1, false
	}
	return fd, true
}

func (b *batchConn) Read(p []byte) (int, error) {
	n, err := b.Conn.Read(p)
	if n > 0 {
		if gerr := b.guard.scan(p[:n]); gerr != nil {
			return 0, gerr
		}
	}
	return n, err
}

func (b *batchConn) begin() {
	b.mu.Lock()
	b.batching = true
	if b.buf == nil {
		b.buf = getBuf()
	}
	b.mu.Unlock()
}

// appendFrame appends p as one unmasked websocket frame (see
// appendWSFrame). The writer must have called begin.
func (b *batchConn) appendFrame(p Packet) {
	b.mu.Lock()
	*b.buf = appendWSFrame(*b.buf, p)
	b.mu.Unlock()
}

// appendWSFrame appends p to dst as one unmasked websocket frame: binary
// messages raw in a binary frame, other packets as "<type><data>" in a text
// frame.
func appendWSFrame(dst []byte, p Packet) []byte {
	op, n := byte(websocket.TextMessage), len(p.Data)+1
	if p.Binary {
		op, n = websocket.BinaryMessage, len(p.Data)
	}
	dst = append(dst, 0x80|op)
	switch {
	case n < 126:
		dst = append(dst, byte(n))
	case n <= 0xffff:
		dst = append(dst, 126)
		dst = binary.BigEndian.AppendUint16(dst, uint16(n))
	default:
		dst = append(dst, 127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	if !p.Binary {
		dst = append(dst, byte(p.Type))
	}
	return append(dst, p.Data...)
}

// directOK reports whether writeDirect can send messages whose largest is
// longest bytes: the connection is a plain socket (not TLS) and none is to
// be compressed.
func (b *batchConn) directOK(longest int, deflate *DeflateOptions) bool {
	return b.raw() && (deflate == nil || longest+1 < deflate.Threshold)
}

// raw reports whether the connection is a plain socket, which the direct
// writes need.
func (b *batchConn) raw() bool {
	if b.rawState == rawUnknown {
		b.rawState = rawNone
		if rc, ok := b.syscallConn(); ok {
			b.rc, b.rawState = rc, rawYes
		}
	}
	return b.rawState == rawYes
}

// writeDirect writes msgs as frames with one non-blocking write(2). What
// the socket does not take stays in the batch buffer, in batching mode, for
// the writer's flush; frames gorilla writes meanwhile are appended after it.
// The caller holds the writer's role (Conn.writing) and checked directOK.
func (b *batchConn) writeDirect(msgs []Message) error {
	bp := getBuf()
	buf := *bp
	for _, m := range msgs {
		buf = appendWSFrame(buf, Packet{Type: MessagePacket, Data: m.Data, Binary: m.Binary})
	}
	return b.writeFramesDirect(bp, buf)
}

// writePacketsDirect is writeDirect for queued packets.
func (b *batchConn) writePacketsDirect(pkts []Packet) error {
	bp := getBuf()
	buf := *bp
	for _, p := range pkts {
		buf = appendWSFrame(buf, p)
	}
	return b.writeFramesDirect(bp, buf)
}

// writeFramesDirect writes buf (frames, in the pooled buffer bp) with one
// non-blocking write(2), keeping what the socket does not take as the tail.
func (b *batchConn) writeFramesDirect(bp *[]byte, buf []byte) error {
	written, err := nbwrite.Write(b.rc, buf)
	if err != nil || written == len(buf) {
		putBuf(bp, buf)
		return err
	}
	rest := copy(buf, buf[written:])
	b.mu.Lock()
	// b.buf is nil here: only the writer's role batches, and we hold it.
	*bp = buf[:rest]
	b.buf = bp
	b.batching = true
	b.mu.Unlock()
	return nil
}

// hasTail reports whether bytes wait in the batch buffer outside a batch
// (left by writeDirect).
func (b *batchConn) hasTail() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf != nil && len(*b.buf) > 0
}

func (b *batchConn) pending() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf == nil {
		return 0
	}
	return len(*b.buf)
}

func (b *batchConn) flush() error {
	b.mu.Lock()
	buf := b.buf
	b.buf = nil
	b.batching = false
	b.mu.Unlock()
	if buf == nil {
		return nil
	}
	var err error
	if len(*buf) > 0 {
		_, err = b.Conn.Write(*buf)
	}
	putBuf(buf, *buf)
	return err
}

// protocolError is a websocket protocol violation found by the frameGuard;
// the connection is closed with code.
type protocolError struct {
	code int
	text string
}

func (e *protocolError) Error() string { return "engineio: websocket: " + e.text }

// frameGuard follows the frame headers of the incoming byte stream to catch
// what gorilla/websocket lets through: a 64-bit length with the top bit set
// (gorilla fails without a close frame), a close frame with a 1-byte
// payload, and messages split into too many fragments. It is O(1) per byte
// and handles input split anywhere.
type frameGuard struct {
	length uint64 // payload length, valid once hn >= lenEnd
	remain uint64 // payload bytes of the current frame still to skip
	err    error
	frags  int32 // continuation frames of the current message
	hdr    [14]byte
	// Small types: every websocket connection holds a frameGuard.
	hn     uint8 // header bytes collected
	lenEnd uint8 // end of the length field, known once hn >= 2
	need   uint8 // header length, known once hn >= 2
	lenOK  bool  // length checked
}

func (g *frameGuard) scan(p []byte) error {
	if g.err != nil {
		return g.err
	}
	for len(p) > 0 {
		if g.remain > 0 {
			n := g.remain
			if uint64(len(p)) < n {
				n = uint64(len(p))
			}
			g.remain -= n
			p = p[n:]
			continue
		}
		if g.hn < 2 {
			k := copy(g.hdr[g.hn:2], p)
			g.hn += uint8(k) // k <= 14
			p = p[k:]
			if g.hn < 2 {
				return nil
			}
			g.lenEnd = 2
			switch g.hdr[1] & 0x7f {
			case 126:
				g.lenEnd += 2
			case 127:
				g.lenEnd += 8
			}
			g.need = g.lenEnd
			if g.hdr[1]&0x80 != 0 {
				g.need += 4
			}
		}
		if g.hn < g.need {
			k := copy(g.hdr[g.hn:g.need], p)
			g.hn += uint8(k) // k <= 14
			p = p[k:]
		}
		if !g.lenOK && g.hn >= g.lenEnd {
			if err := g.checkLength(); err != nil {
				g.err = err
				return err
			}
			g.lenOK = true
		}
		if g.hn < g.need {
			return nil
		}
		if err := g.frame(); err != nil {
			g.err = err
			return err
		}
		g.hn = 0
		g.lenOK = false
	}
	return nil
}

// checkLength decodes the payload length as soon as its bytes are in, so
// that an invalid one is refused without waiting for the mask key.
func (g *frameGuard) checkLength() error {
	switch l := g.hdr[1] & 0x7f; l {
	case 126:
		g.length = uint64(binary.BigEndian.Uint16(g.hdr[2:4]))
	case 127:
		g.length = binary.BigEndian.Uint64(g.hdr[2:10])
		if g.length>>63 != 0 {
			return &protocolError{websocket.CloseProtocolError, "invalid payload length"}
		}
	default:
		g.length = uint64(l)
	}
	return nil
}

func (g *frameGuard) frame() error {
	switch g.hdr[0] & 0x0f {
	case 0: // continuation
		g.frags++
		if g.frags > maxFragments {
			return &protocolError{websocket.CloseMessageTooBig, "too many fragments"}
		}
	case websocket.TextMessage, websocket.BinaryMessage:
		g.frags = 0
	case websocket.CloseMessage:
		if g.length == 1 {
			return &protocolError{websocket.CloseProtocolError, "invalid close frame payload"}
		}
	}
	g.remain = g.length
	return nil
}
