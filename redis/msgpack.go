package redis

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// This file is a small MessagePack codec over a generic value tree, written
// to match what @msgpack/msgpack 2.8 (the codec of the Node adapter)
// produces and accepts, byte for byte:
//
//   - integers (and floats holding a safe integer) use the smallest integer
//     format, floats use float64;
//   - strings use fixstr/str8/str16/str32, binary bin8/16/32;
//   - maps keep their key order (JavaScript objects do).
//
// Tree values are nil, bool, int64, uint64, float64, string, []byte, []any,
// obj (an ordered map) and ext.

// obj is a map that keeps its key order.
type obj []kv

type kv struct {
	Key string
	Val any
}

// get returns the value of key and whether it is present.
func (o obj) get(key string) (any, bool) {
	for _, e := range o {
		if e.Key == key {
			return e.Val, true
		}
	}
	return nil, false
}

// ext is a MessagePack extension value other than a timestamp.
type ext struct {
	Type int8
	Data []byte
}

const maxSafeInteger = 1<<53 - 1

var errMsgpack = errors.New("invalid msgpack")

// appendMsgpack appends the MessagePack encoding of v.
func appendMsgpack(b []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(b, 0xc0)
	case bool:
		if x {
			return append(b, 0xc3)
		}
		return append(b, 0xc2)
	case int:
		return appendInt(b, int64(x))
	case int64:
		return appendInt(b, x)
	case uint64:
		if x <= math.MaxInt64 {
			return appendInt(b, int64(x))
		}
		return binary.BigEndian.AppendUint64(append(b, 0xcf), x)
	case float64:
		if x == math.Trunc(x) && math.Abs(x) <= maxSafeInteger && !(x == 0 && math.Signbit(x)) {
			return appendInt(b, int64(x))
		}
		return binary.BigEndian.AppendUint64(append(b, 0xcb), math.Float64bits(x))
	case string:
		n := len(x)
		switch {
		case n < 32:
			b = append(b, 0xa0|byte(n))
		case n < 1<<8:
			b = append(b, 0xd9, byte(n))
		case n < 1<<16:
			b = binary.BigEndian.AppendUint16(append(b, 0xda), uint16(n))
		default:
			b = binary.BigEndian.AppendUint32(append(b, 0xdb), uint32(n))
		}
		return append(b, x...)
	case []byte:
		n := len(x)
		switch {
		case n < 1<<8:
			b = append(b, 0xc4, byte(n))
		case n < 1<<16:
			b = binary.BigEndian.AppendUint16(append(b, 0xc5), uint16(n))
		default:
			b = binary.BigEndian.AppendUint32(append(b, 0xc6), uint32(n))
		}
		return append(b, x...)
	case []any:
		n := len(x)
		switch {
		case n < 16:
			b = append(b, 0x90|byte(n))
		case n < 1<<16:
			b = binary.BigEndian.AppendUint16(append(b, 0xdc), uint16(n))
		default:
			b = binary.BigEndian.AppendUint32(append(b, 0xdd), uint32(n))
		}
		for _, e := range x {
			b = appendMsgpack(b, e)
		}
		return b
	case []string:
		a := make([]any, len(x))
		for i, s := range x {
			a[i] = s
		}
		return appendMsgpack(b, a)
	case obj:
		n := len(x)
		switch {
		case n < 16:
			b = append(b, 0x80|byte(n))
		case n < 1<<16:
			b = binary.BigEndian.AppendUint16(append(b, 0xde), uint16(n))
		default:
			b = binary.BigEndian.AppendUint32(append(b, 0xdf), uint32(n))
		}
		for _, e := range x {
			b = appendMsgpack(b, e.Key)
			b = appendMsgpack(b, e.Val)
		}
		return b
	case time.Time:
		// @msgpack/msgpack encodes a Date as the timestamp extension.
		sec, nsec := x.Unix(), uint64(x.Nanosecond())
		if sec >= 0 && sec < 1<<34 {
			if nsec == 0 && sec < 1<<32 {
				return binary.BigEndian.AppendUint32(append(b, 0xd6, 0xff), uint32(sec))
			}
			return binary.BigEndian.AppendUint64(append(b, 0xd7, 0xff), nsec<<34|uint64(sec))
		}
		b = binary.BigEndian.AppendUint32(append(b, 0xc7, 12, 0xff), uint32(nsec))
		return binary.BigEndian.AppendUint64(b, uint64(sec))
	case ext:
		n := len(x.Data)
		switch n {
		case 1:
			b = append(b, 0xd4)
		case 2:
			b = append(b, 0xd5)
		case 4:
			b = append(b, 0xd6)
		case 8:
			b = append(b, 0xd7)
		case 16:
			b = append(b, 0xd8)
		default:
			switch {
			case n < 1<<8:
				b = append(b, 0xc7, byte(n))
			case n < 1<<16:
				b = binary.BigEndian.AppendUint16(append(b, 0xc8), uint16(n))
			default:
				b = binary.BigEndian.AppendUint32(append(b, 0xc9), uint32(n))
			}
		}
		b = append(b, byte(x.Type))
		return append(b, x.Data...)
	default:
		panic(fmt.Sprintf("redis: msgpack: unsupported type %T", v))
	}
}

func appendInt(b []byte, i int64) []byte {
	switch {
	case i >= 0 && i < 0x80:
		return append(b, byte(i))
	case i >= 0 && i < 1<<8:
		return append(b, 0xcc, byte(i))
	case i >= 0 && i < 1<<16:
		return binary.BigEndian.AppendUint16(append(b, 0xcd), uint16(i))
	case i >= 0 && i < 1<<32:
		return binary.BigEndian.AppendUint32(append(b, 0xce), uint32(i))
	case i >= 0:
		return binary.BigEndian.AppendUint64(append(b, 0xcf), uint64(i))
	case i >= -32:
		return append(b, byte(i))
	case i >= math.MinInt8:
		return append(b, 0xd0, byte(i))
	case i >= math.MinInt16:
		return binary.BigEndian.AppendUint16(append(b, 0xd1), uint16(i))
	case i >= math.MinInt32:
		return binary.BigEndian.AppendUint32(append(b, 0xd2), uint32(i))
	default:
		return binary.BigEndian.AppendUint64(append(b, 0xd3), uint64(i))
	}
}

// maxDepth bounds the nesting of decoded values.
const maxDepth = 500

// decodeMsgpack decodes exactly one value filling b.
func decodeMsgpack(b []byte) (any, error) {
	d := mpDecoder{b: b}
	v, err := d.value(0)
	if err != nil {
		return nil, err
	}
	if d.i != len(b) {
		return nil, fmt.Errorf("%w: %d trailing bytes", errMsgpack, len(b)-d.i)
	}
	return v, nil
}

type mpDecoder struct {
	b []byte
	i int
}

func (d *mpDecoder) take(n int) ([]byte, error) {
	if n < 0 || len(d.b)-d.i < n {
		return nil, fmt.Errorf("%w: truncated", errMsgpack)
	}
	s := d.b[d.i : d.i+n]
	d.i += n
	return s, nil
}

func (d *mpDecoder) uint(n int) (uint64, error) {
	s, err := d.take(n)
	if err != nil {
		return 0, err
	}
	switch n {
	case 1:
		return uint64(s[0]), nil
	case 2:
		return uint64(binary.BigEndian.Uint16(s)), nil
	case 4:
		return uint64(binary.BigEndian.Uint32(s)), nil
	default:
		return binary.BigEndian.Uint64(s), nil
	}
}

func (d *mpDecoder) value(depth int) (any, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("%w: nested deeper than %d", errMsgpack, maxDepth)
	}
	tb, err := d.take(1)
	if err != nil {
		return nil, err
	}
	t := tb[0]
	switch {
	case t < 0x80:
		return int64(t), nil
	case t >= 0xe0:
		return int64(int8(t)), nil
	case t&0xf0 == 0x80:
		return d.mapOf(int(t&0x0f), depth)
	case t&0xf0 == 0x90:
		return d.arrayOf(int(t&0x0f), depth)
	case t&0xe0 == 0xa0:
		return d.str(int(t & 0x1f))
	}
	switch t {
	case 0xc0:
		return nil, nil
	case 0xc2:
		return false, nil
	case 0xc3:
		return true, nil
	case 0xc4, 0xc5, 0xc6:
		n, err := d.uint(1 << (t - 0xc4))
		if err != nil {
			return nil, err
		}
		s, err := d.take(int(n))
		if err != nil {
			return nil, err
		}
		return append([]byte{}, s...), nil
	case 0xc7, 0xc8, 0xc9:
		n, err := d.uint(1 << (t - 0xc7))
		if err != nil {
			return nil, err
		}
		return d.ext(int(n))
	case 0xca:
		u, err := d.uint(4)
		if err != nil {
			return nil, err
		}
		return float64(math.Float32frombits(uint32(u))), nil
	case 0xcb:
		u, err := d.uint(8)
		if err != nil {
			return nil, err
		}
		return math.Float64frombits(u), nil
	case 0xcc, 0xcd, 0xce, 0xcf:
		u, err := d.uint(1 << (t - 0xcc))
		if err != nil {
			return nil, err
		}
		if u > math.MaxInt64 {
			return u, nil
		}
		return int64(u), nil
	case 0xd0, 0xd1, 0xd2, 0xd3:
		n := 1 << (t - 0xd0)
		u, err := d.uint(n)
		if err != nil {
			return nil, err
		}
		switch n {
		case 1:
			return int64(int8(u)), nil
		case 2:
			return int64(int16(u)), nil
		case 4:
			return int64(int32(u)), nil
		default:
			return int64(u), nil
		}
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8:
		return d.ext(1 << (t - 0xd4))
	case 0xd9, 0xda, 0xdb:
		n, err := d.uint(1 << (t - 0xd9))
		if err != nil {
			return nil, err
		}
		return d.str(int(n))
	case 0xdc, 0xdd:
		n, err := d.uint(2 << (t - 0xdc))
		if err != nil {
			return nil, err
		}
		return d.arrayOf(int(n), depth)
	case 0xde, 0xdf:
		n, err := d.uint(2 << (t - 0xde))
		if err != nil {
			return nil, err
		}
		return d.mapOf(int(n), depth)
	}
	return nil, fmt.Errorf("%w: unknown type byte 0x%02x", errMsgpack, t)
}

func (d *mpDecoder) str(n int) (string, error) {
	s, err := d.take(n)
	return string(s), err
}

func (d *mpDecoder) arrayOf(n int, depth int) ([]any, error) {
	if n > len(d.b)-d.i { // every element takes at least one byte
		return nil, fmt.Errorf("%w: truncated array", errMsgpack)
	}
	out := make([]any, n)
	for i := range out {
		v, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

func (d *mpDecoder) mapOf(n int, depth int) (obj, error) {
	if n > (len(d.b)-d.i)/2 {
		return nil, fmt.Errorf("%w: truncated map", errMsgpack)
	}
	out := make(obj, 0, n)
	for range n {
		k, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		v, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		var key string
		switch x := k.(type) {
		case string:
			key = x
		case nil, []any, obj, []byte, ext:
			return nil, fmt.Errorf("%w: map key of type %T", errMsgpack, k)
		default:
			key = fmt.Sprint(x)
		}
		out = append(out, kv{key, v})
	}
	return out, nil
}

func (d *mpDecoder) ext(n int) (any, error) {
	tb, err := d.take(1)
	if err != nil {
		return nil, err
	}
	data, err := d.take(n)
	if err != nil {
		return nil, err
	}
	if int8(tb[0]) != -1 {
		return ext{Type: int8(tb[0]), Data: append([]byte{}, data...)}, nil
	}
	switch n {
	case 4:
		return time.Unix(int64(binary.BigEndian.Uint32(data)), 0).UTC(), nil
	case 8:
		u := binary.BigEndian.Uint64(data)
		return time.Unix(int64(u&(1<<34-1)), int64(u>>34)).UTC(), nil
	case 12:
		return time.Unix(int64(binary.BigEndian.Uint64(data[4:])), int64(binary.BigEndian.Uint32(data))).UTC(), nil
	}
	return nil, fmt.Errorf("%w: timestamp of %d bytes", errMsgpack, n)
}
