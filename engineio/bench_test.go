package engineio_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/switchboard-io/switchboard/engineio"
)

func BenchmarkDecodePayload(b *testing.B) {
	body := engineio.AppendPayload(nil, []engineio.Packet{
		{Type: engineio.MessagePacket, Data: []byte(`2["chat",{"user":"alice","text":"hello world"}]`)},
		{Type: engineio.MessagePacket, Data: []byte(`51-["upload",{"_placeholder":true,"num":0}]`)},
		{Type: engineio.MessagePacket, Data: []byte(strings.Repeat("x", 64)), Binary: true},
		{Type: engineio.Pong},
	})
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := engineio.DecodePayload(body); err != nil {
			b.Fatal(err)
		}
	}
}

// counter counts events; WaitFor blocks (without spinning, which distorts
// results on a busy machine) until the count reaches a target.
type counter struct {
	n       atomic.Int64
	target  atomic.Int64 // 0: nobody waits
	reached chan struct{}
}

func newCounter() *counter { return &counter{reached: make(chan struct{}, 1)} }

func (c *counter) Add() {
	n := c.n.Add(1)
	if t := c.target.Load(); t != 0 && n >= t && c.target.CompareAndSwap(t, 0) {
		c.reached <- struct{}{}
	}
}

func (c *counter) WaitFor(n int64) {
	if c.n.Load() >= n {
		return
	}
	c.target.Store(n)
	if c.n.Load() >= n && c.target.CompareAndSwap(n, 0) {
		return
	}
	<-c.reached
}

// frameCounter reads server frames off a raw websocket and counts them,
// allocating nothing per frame.
type frameCounter struct {
	br *bufio.Reader
	n  *counter
}

func (f *frameCounter) run() {
	var hdr [8]byte
	for {
		if _, err := io.ReadFull(f.br, hdr[:2]); err != nil {
			return
		}
		n := int(hdr[1] & 0x7f)
		switch n {
		case 126:
			if _, err := io.ReadFull(f.br, hdr[:2]); err != nil {
				return
			}
			n = int(binary.BigEndian.Uint16(hdr[:2]))
		case 127:
			if _, err := io.ReadFull(f.br, hdr[:8]); err != nil {
				return
			}
			n = int(binary.BigEndian.Uint64(hdr[:8]))
		}
		if _, err := f.br.Discard(n); err != nil {
			return
		}
		f.n.Add()
	}
}

// BenchmarkWritePath measures Send of a typical Socket.IO event through the
// queue, the writer goroutine and the batching conn to a websocket client on
// loopback (one op = one message delivered to the client socket).
func BenchmarkWritePath(b *testing.B) {
	for _, batch := range []int{1, 10} {
		b.Run(map[int]string{1: "send=1", 10: "send=10"}[batch], func(b *testing.B) {
			benchWritePath(b, batch)
		})
	}
}

func benchWritePath(b *testing.B, batch int) {
	conns := make(chan *engineio.Conn, 1)
	srv := engineio.NewServer(&engineio.Options{MaxBufferedBytes: 64 << 20}, func(c *engineio.Conn) { conns <- c })
	ts := newBenchServer(b, srv)
	u, _ := url.Parse(ts)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	_, _ = conn.Write([]byte("GET /?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"))
	br := bufio.NewReaderSize(conn, 64<<10)
	for { // skip the response headers
		line, err := br.ReadString('\n')
		if err != nil {
			b.Fatal(err)
		}
		if line == "\r\n" {
			break
		}
	}
	fc := &frameCounter{br: br, n: newCounter()}
	done := make(chan struct{})
	go func() { fc.run(); close(done) }()
	c := <-conns
	msg := engineio.Message{Data: []byte(`2["chat",{"user":"alice","text":"hello world, how are you?"}]`)}
	msgs := make([]engineio.Message, batch)
	for i := range msgs {
		msgs[i] = msg
	}
	const base = 1 // the open packet
	fc.n.WaitFor(base)
	b.SetBytes(int64(len(msg.Data) + 1))
	b.ReportAllocs()
	b.ResetTimer()
	sent := 0
	for sent < b.N {
		k := min(batch, b.N-sent)
		if err := c.Send(msgs[:k]...); err != nil {
			b.Fatal(err)
		}
		sent += k
		if int64(sent)-(fc.n.n.Load()-base) > 512 { // keep a bounded window in flight
			fc.n.WaitFor(base + int64(sent) - 256)
		}
	}
	fc.n.WaitFor(base + int64(b.N))
	b.StopTimer()
	conn.Close()
	<-done
}

// BenchmarkReadPath measures a websocket message from the client socket to
// onMessage: frame guard, gorilla reader, decode, delivery (one op = one
// message).
func BenchmarkReadPath(b *testing.B) {
	got := newCounter()
	srv := engineio.NewServer(nil, func(c *engineio.Conn) {
		c.SetHandlers(func([]byte, bool) { got.Add() }, nil)
	})
	ts := newBenchServer(b, srv)
	u, _ := url.Parse(ts)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	_, _ = conn.Write([]byte("GET /?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"))
	br := bufio.NewReader(conn)
	for { // wait for the 101 response: gorilla refuses frames sent before it
		line, err := br.ReadString('\n')
		if err != nil {
			b.Fatal(err)
		}
		if line == "\r\n" {
			break
		}
	}
	done := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, br); close(done) }()
	defer func() { conn.Close(); <-done }()
	msg := []byte(`42["chat",{"user":"alice","text":"hello world, how are you?"}]`)
	one := frame(true, false, 1, msg)
	chunk := bytes.Repeat(one, 256)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	b.ResetTimer()
	for sent := 0; sent < b.N; {
		k := min(256, b.N-sent)
		if _, err := conn.Write(chunk[:k*len(one)]); err != nil {
			b.Fatal(err)
		}
		sent += k
	}
	got.WaitFor(int64(b.N))
}
