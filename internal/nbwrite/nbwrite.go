// Package nbwrite writes to a socket without ever waiting for it: the
// server's direct writes and the Go client's emits write what the socket
// takes at once and leave the rest to a writer goroutine that may wait.
package nbwrite

import "syscall"

// Write writes as much of p to rc's descriptor as the socket takes now,
// retrying after EINTR and stopping at EAGAIN (not an error here). n is
// what was written; err is a real write error, or rc's.
func Write(rc syscall.RawConn, p []byte) (n int, err error) {
	var werr error
	err = rc.Write(func(fd uintptr) bool {
		for n < len(p) {
			m, e := syscall.Write(int(fd), p[n:])
			if m > 0 {
				n += m
			}
			if e == syscall.EINTR {
				continue
			}
			if e != nil {
				if e != syscall.EAGAIN {
					werr = e
				}
				break
			}
			if m == 0 {
				break
			}
		}
		return true // never let the runtime wait for the socket
	})
	if err == nil {
		err = werr
	}
	return n, err
}
