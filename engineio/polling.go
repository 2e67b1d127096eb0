package engineio

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"
)

// maxPooledBuf is the capacity above which a buffer is not kept for reuse.
const maxPooledBuf = 64 << 10

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

func putBuf(b *[]byte, used []byte) {
	if cap(used) > maxPooledBuf {
		return
	}
	*b = used[:0]
	bufPool.Put(b)
}

var errTooBig = errors.New("engineio: message too big")

// readLimited reads r to EOF into buf[:0], growing it as needed. It stops and
// returns errTooBig once more than max bytes were read, so memory stays
// bounded by about twice max.
func readLimited(r io.Reader, buf []byte, max int64) ([]byte, error) {
	buf = buf[:0]
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > max {
			return buf, errTooBig
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

func packetBytes(q *[]Packet) int {
	if q == nil {
		return 0
	}
	n := 0
	for _, p := range *q {
		n += len(p.Data) + 1
	}
	return n
}

// servePoll answers a long-poll GET with everything queued, waiting until
// there is something to send.
func (c *Conn) servePoll(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	if c.polling {
		c.mu.Unlock()
		writeError(w, http.StatusBadRequest, errBadRequest)
		c.close("transport error", closeImmediate)
		return
	}
	c.polling = true
	select {
	case <-c.wake: // stale
	default:
	}
	var (
		batch          *[]Packet
		noop, closePkt bool
	)
	for {
		if c.state == stateClosed {
			closePkt = true
			break
		}
		if c.ws != nil { // upgraded: the queue belongs to the websocket
			noop = true
			break
		}
		if c.queue != nil && len(*c.queue) > 0 {
			batch = c.takeLocked()
			// The close packet goes in the next poll, as in engine.io:
			// socket.io-client handles an engine close before the packets
			// decoded with it, so a DISCONNECT sharing its response would
			// be lost. A shutdown does not wait.
			closePkt = c.state == stateClosing && c.shutdown
			break
		}
		if c.state == stateClosing {
			closePkt = true
			break
		}
		if c.upgrading {
			noop = true
			break
		}
		c.mu.Unlock()
		select {
		case <-c.wake:
		case <-r.Context().Done():
			c.mu.Lock()
			c.polling = false
			c.mu.Unlock()
			c.close("transport error", closeImmediate) // poll closed prematurely
			return
		}
		c.mu.Lock()
	}
	finishAfter := closePkt && c.state == stateClosing
	c.mu.Unlock()

	buf := getBuf()
	b := (*buf)[:0]
	if noop {
		b = append(b, byte(Noop))
	}
	n := 0
	if batch != nil {
		b = AppendPayload(b, *batch)
		n = packetBytes(batch)
		releaseQueue(batch)
	}
	if closePkt {
		if len(b) > 0 {
			b = append(b, recordSeparator)
		}
		b = append(b, byte(Close))
	}
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=UTF-8")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	_, err := w.Write(b)
	putBuf(buf, b)

	c.mu.Lock()
	c.polling = false
	c.queued -= n
	if c.state == stateClosing && c.ws == nil {
		if finishAfter || c.shutdown {
			c.finishLocked()
			return
		}
		c.armCloseTimerLocked()
	}
	c.mu.Unlock()
	if err != nil {
		c.close("transport error", closeImmediate)
	}
}

// servePost decodes a polling POST body and handles its packets.
func (c *Conn) servePost(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	if c.posting {
		c.mu.Unlock()
		writeError(w, http.StatusBadRequest, errBadRequest)
		c.close("transport error", closeImmediate)
		return
	}
	c.posting = true
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.posting = false
		c.mu.Unlock()
	}()

	max := c.srv.opts.MaxHTTPBufferSize
	if r.ContentLength > max {
		w.Header().Set("Connection", "close")
		w.WriteHeader(http.StatusRequestEntityTooLarge)
		return
	}
	buf := getBuf()
	body, err := readLimited(http.MaxBytesReader(w, r.Body, max), *buf, max)
	defer putBuf(buf, body)
	var mbe *http.MaxBytesError
	if errors.Is(err, errTooBig) || errors.As(err, &mbe) {
		w.Header().Set("Connection", "close")
		w.WriteHeader(http.StatusRequestEntityTooLarge)
		return
	}
	if err != nil {
		c.close("transport error", closeImmediate) // POST closed prematurely
		writeError(w, http.StatusBadRequest, errBadRequest)
		return
	}
	// The body is the text payload whatever the Content-Type says (an
	// "application/octet-stream" body is treated the same way).
	packets, err := DecodePayload(body)
	if err != nil {
		c.close("parse error", closeImmediate)
	}
	for _, p := range packets {
		if !c.handlePacket(p) {
			break
		}
	}
	h := w.Header()
	h.Set("Content-Type", "text/html")
	h.Set("Content-Length", "2")
	_, _ = io.WriteString(w, "ok")
}
