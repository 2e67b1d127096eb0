// Package parser encodes and decodes Socket.IO v5 packets, including binary
// attachments. It is pure: no I/O, no goroutines, safe for concurrent use
// except for a Decoder, which belongs to one connection.
//
// Wire form: <type>[<attachments>-][<nsp>,][<ackId>][JSON]
// Binary values in the JSON payload are replaced by
// {"_placeholder":true,"num":i} and sent as separate binary messages.
package parser
