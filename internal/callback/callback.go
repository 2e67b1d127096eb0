// Package callback adapts Go functions of any shape to Socket.IO event
// arguments: each parameter is decoded from the matching JSON argument
// (binary placeholders become []byte), and a trailing func(...any) parameter
// receives the acknowledgement callback. Server sockets and the Go client
// share it so both decode handler arguments the same way.
package callback

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"

	"github.com/switchboard-io/switchboard/parser"
)

// AckFunc is the type a handler's last parameter has when it wants to answer
// an acknowledgement.
type AckFunc = func(args ...any)

// Args is a whole argument list, undecoded. A handler whose first parameter
// is Args receives every argument in it (and may still end with an AckFunc),
// which is how a handler echoes arguments it does not need to understand.
type Args struct {
	Raw         []json.RawMessage // one raw JSON value per argument
	Attachments [][]byte          // binary attachments referenced by placeholders
}

// Len returns the number of arguments.
func (a Args) Len() int { return len(a.Raw) }

// Decode decodes argument i into v (a pointer). A binary argument decodes
// into *[]byte; into *any, binary values anywhere become []byte.
func (a Args) Decode(i int, v any) error {
	if i < 0 || i >= len(a.Raw) {
		return fmt.Errorf("argument %d of %d", i, len(a.Raw))
	}
	return parser.Unmarshal(a.Raw[i], a.Attachments, v)
}

// Values decodes every argument into generic values (see DecodeAll).
func (a Args) Values() ([]any, error) { return DecodeAll(a.Raw, a.Attachments) }

// String shows the raw arguments, for logs and tests.
func (a Args) String() string {
	var b strings.Builder
	b.WriteByte('[')
	for i, r := range a.Raw {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(r)
	}
	b.WriteByte(']')
	return b.String()
}

// Echo returns the arguments in a form Emit and AckFunc send back unchanged:
// each JSON argument as its raw json.RawMessage (written verbatim by the
// encoder, so nothing is decoded), a binary placeholder as its attachment
// ([]byte), and an argument with placeholders nested inside decoded into a
// generic value whose placeholders became []byte. Placeholders are only
// looked for when the packet has attachments.
func (a Args) Echo() []any {
	out := make([]any, len(a.Raw))
	for i, r := range a.Raw {
		out[i] = a.echoValue(r)
	}
	return out
}

func (a Args) echoValue(r json.RawMessage) any {
	// A placeholder is an object: a value without '{' has none.
	if len(a.Attachments) == 0 || bytes.IndexByte(r, '{') < 0 {
		return r
	}
	if n, ok := parser.IsPlaceholder(r); ok && n < len(a.Attachments) {
		return a.Attachments[n]
	}
	var v any
	if err := parser.Unmarshal(r, a.Attachments, &v); err != nil {
		return r
	}
	return v
}

var (
	argsType  = reflect.TypeOf(Args{})
	ackType   = reflect.TypeOf(AckFunc(nil))
	errorType = reflect.TypeOf((*error)(nil)).Elem()
)

// Func is a validated handler. It is immutable and safe for concurrent use.
// It holds the handler and its shared signature only (24 bytes): a server
// keeps one per handler per socket.
type Func struct {
	fn any
	*signature
}

// signature is what New learns from a handler's type, shared by every
// handler of that type (a server registers the same handlers on every
// socket).
type signature struct {
	params   []reflect.Type // decoded parameters, excluding a variadic tail and the ack
	variadic reflect.Type   // element type of a ...T tail, nil if none
	wantsAck bool
	err      error
}

// signatures caches signature by handler type.
var signatures sync.Map // reflect.Type → *signature

// Signatures of the fast paths.
var (
	plainSig    = &signature{}
	wantsAckSig = &signature{wantsAck: true}
)

// New validates fn: it must be a func whose parameters are any
// JSON-decodable types, optionally ending with a variadic parameter and then
// optionally an AckFunc. Return values are ignored, except that a non-nil
// error result is returned by Call.
func New(fn any) (*Func, error) {
	if v := reflect.ValueOf(fn); !v.IsValid() || v.Kind() != reflect.Func || v.IsNil() {
		return nil, fmt.Errorf("callback: handler must be a non-nil func, got %T", fn)
	}
	switch fn.(type) {
	case func(), func(...any), func(Args):
		return &Func{fn: fn, signature: plainSig}, nil
	case func(Args, AckFunc):
		return &Func{fn: fn, signature: wantsAckSig}, nil
	}
	sig := signatureOf(reflect.TypeOf(fn))
	if sig.err != nil {
		return nil, sig.err
	}
	return &Func{fn: fn, signature: sig}, nil
}

// signatureOf analyses a handler type once.
func signatureOf(t reflect.Type) *signature {
	if sig, ok := signatures.Load(t); ok {
		return sig.(*signature)
	}
	sig := &signature{}
	n := t.NumIn()
	if n > 0 && t.In(n-1) == ackType {
		sig.wantsAck = true
		n--
	}
	for i := 0; i < n; i++ {
		in := t.In(i)
		if t.IsVariadic() && i == t.NumIn()-1 {
			sig.variadic = in.Elem()
			break
		}
		if in == ackType {
			sig.err = fmt.Errorf("callback: ack parameter must be last in %s", t)
			break
		}
		if in == argsType {
			sig.err = fmt.Errorf("callback: an Args parameter must be the only one (before an ack) in %s", t)
			break
		}
		sig.params = append(sig.params, in)
	}
	if sig.err == nil && sig.variadic != nil && sig.wantsAck {
		sig.err = fmt.Errorf("callback: a variadic handler cannot also take an ack: %s", t)
	}
	actual, _ := signatures.LoadOrStore(t, sig)
	return actual.(*signature)
}

// WantsAck reports whether the handler takes an acknowledgement callback.
func (c *Func) WantsAck() bool { return c.wantsAck }

// Call decodes args into the handler's parameters and calls it. Missing
// arguments are zero values; extra ones are ignored unless the handler is
// variadic. ack may be nil when the sender asked for no acknowledgement; the
// handler then gets a no-op.
func (c *Func) Call(args []json.RawMessage, attachments [][]byte, ack AckFunc) error {
	// The most common handler shapes without reflection.
	switch f := c.fn.(type) {
	case func():
		f()
		return nil
	case func(...any):
		vals, err := DecodeAll(args, attachments)
		if err != nil {
			return err
		}
		f(vals...)
		return nil
	case func(Args):
		f(Args{Raw: args, Attachments: attachments})
		return nil
	case func(Args, AckFunc):
		if ack == nil {
			ack = func(...any) {}
		}
		f(Args{Raw: args, Attachments: attachments}, ack)
		return nil
	}
	in := make([]reflect.Value, 0, len(c.params)+2)
	for i, pt := range c.params {
		pv := reflect.New(pt)
		if i < len(args) {
			if err := decodeInto(args[i], attachments, pv.Interface()); err != nil {
				return fmt.Errorf("argument %d: %w", i, err)
			}
		}
		in = append(in, pv.Elem())
	}
	if c.variadic != nil {
		for i := len(c.params); i < len(args); i++ {
			pv := reflect.New(c.variadic)
			if err := decodeInto(args[i], attachments, pv.Interface()); err != nil {
				return fmt.Errorf("argument %d: %w", i, err)
			}
			in = append(in, pv.Elem())
		}
	}
	if c.wantsAck {
		if ack == nil {
			ack = func(...any) {}
		}
		in = append(in, reflect.ValueOf(ack))
	}
	out := reflect.ValueOf(c.fn).Call(in)
	for _, o := range out {
		if o.Type().Implements(errorType) && !o.IsNil() {
			return o.Interface().(error)
		}
	}
	return nil
}

func decodeInto(raw json.RawMessage, attachments [][]byte, ptr any) error {
	if rp, ok := ptr.(*json.RawMessage); ok {
		*rp = raw
		return nil
	}
	return parser.Unmarshal(raw, attachments, ptr)
}

// DecodeAll decodes every argument into a generic value (maps, slices,
// float64, string, bool, nil; []byte for binary placeholders).
func DecodeAll(args []json.RawMessage, attachments [][]byte) ([]any, error) {
	vals := make([]any, len(args))
	for i, a := range args {
		if err := parser.Unmarshal(a, attachments, &vals[i]); err != nil {
			return nil, fmt.Errorf("argument %d: %w", i, err)
		}
	}
	return vals, nil
}
