package nbwrite

import (
	"bytes"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

// A socket whose peer does not read takes part of a large write and
// Write returns at once with what it took; the peer then reads exactly
// those bytes. On a closed socket Write reports an error.
func TestWrite(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	peer := <-accepted
	defer peer.Close()
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}

	p := bytes.Repeat([]byte("0123456789abcdef"), 4<<20) // 64 MiB: more than any socket buffer
	n, err := Write(rc, p)
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	if n <= 0 || n >= len(p) {
		t.Fatalf("wrote %d of %d bytes, want part of it", n, len(p))
	}
	got := make([]byte, n)
	_ = peer.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(peer, got); err != nil {
		t.Fatalf("peer read: %v", err)
	}
	if !bytes.Equal(got, p[:n]) {
		t.Fatal("peer read other bytes than were written")
	}

	c.Close()
	if _, err := Write(rc, []byte("x")); err == nil {
		t.Fatal("Write on a closed connection: no error")
	}
}
