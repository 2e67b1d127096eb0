// Package parser encodes and decodes Socket.IO v5 packets, including binary
// attachments. It is pure: no I/O, no goroutines, safe for concurrent use
// except for a Decoder, which belongs to one connection.
//
// Wire form:
//
//	<type>[<attachments>-][<nsp>,][<ackId>][JSON]
//
// Binary values in the JSON payload are replaced by
// {"_placeholder":true,"num":i} and sent as separate binary messages.
//
// Sending: build the payload with MarshalEvent or MarshalArgs, put it in a
// Packet and call Encode (or AppendEncode with a pooled buffer); send the
// text message, then each attachment as a binary message.
//
// Receiving: feed every text message to Decoder.AddText and every binary
// message to Decoder.AddBinary; a complete Packet comes out once its
// attachments have arrived. Any error wraps ErrInvalidPacket and means the
// connection should be closed. EventName and SplitArgs split the payload
// into raw arguments without decoding them; Unmarshal decodes one argument,
// resolving placeholders to attachments.
package parser
