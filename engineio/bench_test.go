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

// frameCounter reads server frames off a raw websocket and counts them,
// allocating nothing per frame.
type frameCounter struct {
	br *bufio.Reader
	n  atomic.Int64
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
		f.n.Add(1)
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
	fc := &frameCounter{br: br}
	done := make(chan struct{})
	go func() { fc.run(); close(done) }()
	c := <-conns
	msg := engineio.Message{Data: []byte(`2["chat",{"user":"alice","text":"hello world, how are you?"}]`)}
	msgs := make([]engineio.Message, batch)
	for i := range msgs {
		msgs[i] = msg
	}
	base := int64(1) // the open packet
	for fc.n.Load() < base {
		runtimeGosched()
	}
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
		for int64(sent)-(fc.n.Load()-base) > 512 { // keep a bounded window in flight
			runtimeGosched()
		}
	}
	for fc.n.Load()-base < int64(b.N) {
		runtimeGosched()
	}
	b.StopTimer()
	conn.Close()
	<-done
}

// BenchmarkReadPath measures a websocket message from the client socket to
// onMessage: frame guard, gorilla reader, decode, delivery (one op = one
// message).
func BenchmarkReadPath(b *testing.B) {
	var got atomic.Int64
	srv := engineio.NewServer(nil, func(c *engineio.Conn) {
		c.SetHandlers(func([]byte, bool) { got.Add(1) }, nil)
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
	for got.Load() < int64(b.N) {
		runtimeGosched()
	}
}
