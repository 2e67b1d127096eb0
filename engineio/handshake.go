package engineio

import (
	"crypto/tls"
	"net/http"
	"net/url"
	"strings"
)

// handshakeInfo is what a session keeps of its handshake request: not the
// whole *http.Request and its context (about a kilobyte), nor the parsed
// URL and header map (~800 bytes), which Request makes again on each call.
// An idle connection keeps the strings only.
type handshakeInfo struct { // no method: a handshake is always a GET
	proto      string
	requestURI string
	host       string
	remoteAddr string
	header     string // packHeader's form
	tls        *tls.ConnectionState
}

func newHandshakeInfo(r *http.Request) handshakeInfo {
	return handshakeInfo{
		proto: r.Proto, requestURI: r.RequestURI, host: r.Host,
		remoteAddr: r.RemoteAddr, header: packHeader(r.Header), tls: r.TLS,
	}
}

// packHeader writes h as one string, a "Key:value\n" line per value, in
// one allocation. A key holds no ':' and a value no '\n' (net/http rejects
// both), so the lines split back unambiguously.
func packHeader(h http.Header) string {
	n := 0
	for k, vs := range h {
		n += len(vs) * (len(k) + 2)
		for _, v := range vs {
			n += len(v)
		}
	}
	var b strings.Builder
	b.Grow(n)
	for k, vs := range h {
		for _, v := range vs {
			b.WriteString(k)
			b.WriteByte(':')
			b.WriteString(v)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// unpackHeader is packHeader's inverse; the values share packed's memory.
func unpackHeader(packed string) http.Header {
	h := make(http.Header, strings.Count(packed, "\n"))
	for line := range strings.SplitSeq(packed, "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			h[k] = append(h[k], v)
		}
	}
	return h
}

// Request returns the handshake request as far as a session keeps it:
// Method, URL (with the query), Proto, Header, Host, RemoteAddr, RequestURI
// and TLS. Every call returns a new *http.Request with its own URL and
// Header; its context is context.Background() and it has no body.
func (c *Conn) Request() *http.Request {
	r := &c.req
	major, minor, _ := http.ParseHTTPVersion(r.proto)
	u, err := url.ParseRequestURI(r.requestURI)
	if err != nil {
		// net/http parsed the same string before it called us.
		u = &url.URL{Path: r.requestURI}
	}
	return &http.Request{
		Method:     http.MethodGet,
		URL:        u,
		Proto:      r.proto,
		ProtoMajor: major,
		ProtoMinor: minor,
		Header:     unpackHeader(r.header),
		Body:       http.NoBody,
		Host:       r.host,
		RemoteAddr: r.remoteAddr,
		RequestURI: r.requestURI,
		TLS:        r.tls,
	}
}
