package bolt

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/switchboard-io/switchboard"
	bbolt "go.etcd.io/bbolt"
)

// The file holds five top-level buckets:
//
//	meta     "format" → formatVersion
//	rooms    room name → roomMeta (id, epoch, first, last, bytes, crc)
//	log      id (8, big endian) + offset (8) → record: crc (4), time (8), data
//	cursors  uvarint(len(room)) room subscriber → position: cursor (8), n (4), n acked (8 each), crc (4)
//	bysub    uvarint(len(subscriber)) subscriber room → empty (index for Subscriptions)
//
// Every checksum is CRC-32C (Castagnoli). A record's covers its time, its
// data and then its key (room id and offset), so a record found under
// another key fails too. A room meta's covers the room name and the meta;
// a position's its key and value.
var (
	bucketMeta    = []byte("meta")
	bucketRooms   = []byte("rooms")
	bucketLog     = []byte("log")
	bucketCursors = []byte("cursors")
	bucketBySub   = []byte("bysub")
	allBuckets    = [][]byte{bucketMeta, bucketRooms, bucketLog, bucketCursors, bucketBySub}
	keyFormat     = []byte("format")
)

const formatVersion = "switchboard-bolt/1"

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

const (
	recordHeader = 12 // crc + time
	roomMetaLen  = 44 // id, epoch, first, last, bytes, crc
	epochLen     = 8
)

// roomMeta is the state of one room's log.
type roomMeta struct {
	id    uint64
	epoch [epochLen]byte
	first uint64 // last+1 when empty
	last  uint64
	bytes int64
}

func (m *roomMeta) count() uint64 { return m.last + 1 - m.first }

func (m *roomMeta) info() switchboard.LogInfo {
	return switchboard.LogInfo{First: m.first, Last: m.last, Epoch: hex.EncodeToString(m.epoch[:]),
		Count: int(m.count()), Bytes: m.bytes}
}

func (m *roomMeta) encode(room string) []byte {
	b := make([]byte, roomMetaLen)
	binary.BigEndian.PutUint64(b[0:], m.id)
	copy(b[8:], m.epoch[:])
	binary.BigEndian.PutUint64(b[16:], m.first)
	binary.BigEndian.PutUint64(b[24:], m.last)
	binary.BigEndian.PutUint64(b[32:], uint64(m.bytes))
	crc := crc32.Update(crc32.Checksum([]byte(room), castagnoli), castagnoli, b[:40])
	binary.BigEndian.PutUint32(b[40:], crc)
	return b
}

// decodeRoomMeta decodes room's meta; ok is false if it is damaged.
func decodeRoomMeta(room, b []byte) (m roomMeta, ok bool) {
	if len(b) != roomMetaLen {
		return m, false
	}
	crc := crc32.Update(crc32.Checksum(room, castagnoli), castagnoli, b[:40])
	if crc != binary.BigEndian.Uint32(b[40:]) {
		return m, false
	}
	m.id = binary.BigEndian.Uint64(b[0:])
	copy(m.epoch[:], b[8:])
	m.first = binary.BigEndian.Uint64(b[16:])
	m.last = binary.BigEndian.Uint64(b[24:])
	m.bytes = int64(binary.BigEndian.Uint64(b[32:]))
	return m, m.first <= m.last+1 && m.bytes >= 0
}

func newEpoch() (e [epochLen]byte) {
	_, _ = rand.Read(e[:])
	return e
}

// getRoom returns room's meta; ok is false without a log.
func (s *Store) getRoom(tx *bbolt.Tx, room string) (m roomMeta, ok bool, err error) {
	v := tx.Bucket(bucketRooms).Get([]byte(room))
	if v == nil {
		return m, false, nil
	}
	m, ok = decodeRoomMeta([]byte(room), v)
	if !ok {
		return m, false, s.corrupt("room %q: meta record fails its checksum", room)
	}
	return m, true, nil
}

func logKey(id, offset uint64) []byte {
	k := make([]byte, 16)
	binary.BigEndian.PutUint64(k, id)
	binary.BigEndian.PutUint64(k[8:], offset)
	return k
}

// recordSum is the checksum of a record value v (crc field excluded) under
// key k.
func recordSum(k, v []byte) uint32 {
	return crc32.Update(crc32.Checksum(v[4:], castagnoli), castagnoli, k)
}

var (
	errNoEvents  = errors.New("bolt: append of no events")
	errEmptyName = errors.New("bolt: empty room or subscriber name")
	errLongName  = fmt.Errorf("bolt: room or subscriber name longer than %d bytes", MaxNameLen)
	errBadLimit  = errors.New("bolt: read limit must be positive")
)

func checkName(name string) error {
	if name == "" {
		return errEmptyName
	}
	if len(name) > MaxNameLen {
		return errLongName
	}
	return nil
}

// Append implements switchboard.Store. It returns once the events are
// committed per the sync policy; concurrent Appends share a commit. Events
// with a zero Time get the current time. Appending no events is an error.
// If ctx ends while Append waits for the commit, Append returns ctx's error
// and the events may or may not be stored.
func (s *Store) Append(ctx context.Context, room string, events []switchboard.StoredEvent) (uint64, error) {
	fn, first, err := s.appendOp(room, events)
	if err != nil {
		return 0, err
	}
	if err := s.writeOp(ctx, fn, true); err != nil {
		return 0, err
	}
	return *first, nil
}

// AppendAsync implements switchboard.AsyncAppender: the events join the
// next group commit and done is called by the committer after it. Calls
// from one goroutine are committed in call order.
func (s *Store) AppendAsync(ctx context.Context, room string, events []switchboard.StoredEvent, done func(first uint64, err error)) {
	fn, first, err := s.appendOp(room, events)
	if err != nil {
		done(0, err)
		return
	}
	s.enqueueOp(ctx, fn, true, func(err error) {
		if err != nil {
			done(0, err)
			return
		}
		done(*first, nil)
	})
}

// appendOp checks and encodes events for room and returns the committer's
// function, which sets *first to the offset of the first event.
func (s *Store) appendOp(room string, events []switchboard.StoredEvent) (func(tx *bbolt.Tx) error, *uint64, error) {
	if err := checkName(room); err != nil {
		return nil, nil, err
	}
	if len(events) == 0 {
		return nil, nil, errNoEvents
	}
	// Encode the records here, in the caller's goroutine; the committer
	// only adds the key to the checksum.
	size := 0
	for _, e := range events {
		size += recordHeader + len(e.Data)
	}
	buf := make([]byte, size)
	vals := make([][]byte, len(events))
	partial := make([]uint32, len(events))
	var dataBytes int64
	now := time.Now().UnixNano()
	for i, e := range events {
		v := buf[: recordHeader+len(e.Data) : recordHeader+len(e.Data)]
		buf = buf[len(v):]
		t := now
		if !e.Time.IsZero() {
			t = e.Time.UnixNano()
		}
		binary.BigEndian.PutUint64(v[4:], uint64(t))
		copy(v[recordHeader:], e.Data)
		vals[i] = v
		partial[i] = crc32.Checksum(v[4:], castagnoli)
		dataBytes += int64(len(e.Data))
	}

	first := new(uint64)
	// fn runs in the committer as a batchesMeta op: the room's meta comes
	// from and goes back to s.batchMetas.
	fn := func(tx *bbolt.Tx) error {
		pm := s.batchMetas[room]
		if pm == nil {
			m, ok, err := s.getRoom(tx, room)
			if err != nil {
				return err
			}
			if !ok {
				id, err := tx.Bucket(bucketRooms).NextSequence()
				if err != nil {
					return err
				}
				m = roomMeta{id: id, epoch: newEpoch(), first: 1}
			}
			pm = &m
		}
		m := *pm // changed in a copy: an error leaves the batch's meta as it was
		lb := tx.Bucket(bucketLog)
		lb.FillPercent = 0.9 // keys only grow within a room
		*first = m.last + 1
		for i, v := range vals {
			k := logKey(m.id, *first+uint64(i))
			binary.BigEndian.PutUint32(v, crc32.Update(partial[i], castagnoli, k))
			if err := lb.Put(k, v); err != nil {
				return err
			}
		}
		m.last += uint64(len(vals))
		m.bytes += dataBytes
		if err := s.trimBounds(lb, room, &m); err != nil {
			return err
		}
		if s.batchMetas == nil {
			s.batchMetas = make(map[string]*roomMeta)
		}
		*pm = m
		s.batchMetas[room] = pm
		return nil
	}
	return fn, first, nil
}

// trimBounds drops the oldest events of the room while it is over
// MaxEvents or MaxBytes.
func (s *Store) trimBounds(lb *bbolt.Bucket, room string, m *roomMeta) error {
	for m.count() > 0 &&
		((s.ret.MaxEvents > 0 && m.count() > uint64(s.ret.MaxEvents)) || (s.ret.MaxBytes > 0 && m.bytes > s.ret.MaxBytes)) {
		if err := s.dropFirst(lb, room, m); err != nil {
			return err
		}
	}
	return nil
}

// dropFirst deletes the oldest event of the room.
func (s *Store) dropFirst(lb *bbolt.Bucket, room string, m *roomMeta) error {
	k := logKey(m.id, m.first)
	v := lb.Get(k)
	if len(v) < recordHeader {
		return s.corrupt("room %q: offset %d: record missing or short", room, m.first)
	}
	m.bytes -= int64(len(v) - recordHeader)
	m.first++
	return lb.Delete(k)
}

// trimAge drops the events older than cutoff, a room and a commit at a
// time, at most 10,000 events per commit.
func (s *Store) trimAge(ctx context.Context, cutoff time.Time) error {
	// Find the rooms with expired events without taking the committer.
	var rooms []string
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		lb := tx.Bucket(bucketLog)
		return tx.Bucket(bucketRooms).ForEach(func(k, v []byte) error {
			m, ok := decodeRoomMeta(k, v)
			if !ok || m.count() == 0 {
				return nil
			}
			if r := lb.Get(logKey(m.id, m.first)); len(r) >= recordHeader && recordTime(r) < cutoff.UnixNano() {
				rooms = append(rooms, string(k))
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	for _, room := range rooms {
		for more := true; more; {
			more = false
			err := s.write(ctx, func(tx *bbolt.Tx) error {
				m, ok, err := s.getRoom(tx, room)
				if err != nil || !ok {
					return err
				}
				lb := tx.Bucket(bucketLog)
				before := m
				for n := 0; m.count() > 0; n++ {
					if n == 10_000 {
						more = true
						break
					}
					r := lb.Get(logKey(m.id, m.first))
					if len(r) >= recordHeader && recordTime(r) >= cutoff.UnixNano() {
						break
					}
					if err := s.dropFirst(lb, room, &m); err != nil {
						return err
					}
				}
				if m == before {
					return nil
				}
				return tx.Bucket(bucketRooms).Put([]byte(room), m.encode(room))
			})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

func recordTime(v []byte) int64 { return int64(binary.BigEndian.Uint64(v[4:])) }

// Read implements switchboard.Store. Every event is checked against its
// checksum; a damaged one fails the Read with an error wrapping
// switchboard.ErrCorrupt that names the file, the room and the offset. The
// events returned are the caller's. A limit below 1 is an error.
func (s *Store) Read(ctx context.Context, room string, from uint64, limit int) ([]switchboard.StoredEvent, error) {
	if limit < 1 {
		return nil, errBadLimit
	}
	var out []switchboard.StoredEvent
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		m, ok, err := s.getRoom(tx, room)
		if err != nil || !ok {
			return err
		}
		from = max(from, m.first)
		if from > m.last {
			return nil
		}
		n := min(uint64(limit), m.last-from+1)
		out = make([]switchboard.StoredEvent, 0, n)
		var buf []byte
		c := tx.Bucket(bucketLog).Cursor()
		want := from
		for k, v := c.Seek(logKey(m.id, from)); uint64(len(out)) < n; k, v = c.Next() {
			if len(k) != 16 || binary.BigEndian.Uint64(k) != m.id || binary.BigEndian.Uint64(k[8:]) != want {
				return s.corrupt("room %q: offset %d: record missing", room, want)
			}
			if len(v) < recordHeader || recordSum(k, v) != binary.BigEndian.Uint32(v) {
				return s.corrupt("room %q: offset %d: record fails its checksum", room, want)
			}
			if buf == nil {
				buf = make([]byte, 0, int(n)*len(v)) // a guess: events of this size
			}
			start := len(buf)
			buf = append(buf, v[recordHeader:]...)
			out = append(out, switchboard.StoredEvent{
				Offset: want,
				Time:   time.Unix(0, recordTime(v)),
				Data:   buf[start:len(buf):len(buf)],
			})
			want++
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Info implements switchboard.Store.
func (s *Store) Info(ctx context.Context, room string) (info switchboard.LogInfo, ok bool, err error) {
	err = s.view(ctx, func(tx *bbolt.Tx) error {
		m, found, err := s.getRoom(tx, room)
		if found {
			info, ok = m.info(), true
		}
		return err
	})
	return info, ok, err
}

// Rooms implements switchboard.Store; the rooms come sorted (bytewise).
func (s *Store) Rooms(ctx context.Context) ([]string, error) {
	var rooms []string
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketRooms).ForEach(func(k, _ []byte) error {
			rooms = append(rooms, string(k))
			return nil
		})
	})
	return rooms, err
}

// prefixKey returns uvarint(len(a)) a b.
func prefixKey(a, b string) []byte {
	k := binary.AppendUvarint(make([]byte, 0, binary.MaxVarintLen64+len(a)+len(b)), uint64(len(a)))
	k = append(k, a...)
	return append(k, b...)
}

// splitKey splits a prefixKey; ok is false if k is not one.
func splitKey(k []byte) (a, b string, ok bool) {
	n, w := binary.Uvarint(k)
	if w <= 0 || n > uint64(len(k)-w) {
		return "", "", false
	}
	return string(k[w : w+int(n)]), string(k[w+int(n):]), true
}

func encodePosition(key []byte, cursor uint64, acked []uint64) []byte {
	v := make([]byte, 12+8*len(acked)+4)
	binary.BigEndian.PutUint64(v, cursor)
	binary.BigEndian.PutUint32(v[8:], uint32(len(acked)))
	for i, o := range acked {
		binary.BigEndian.PutUint64(v[12+8*i:], o)
	}
	crc := crc32.Update(crc32.Checksum(key, castagnoli), castagnoli, v[:len(v)-4])
	binary.BigEndian.PutUint32(v[len(v)-4:], crc)
	return v
}

// decodePosition decodes a position; ok is false if it is damaged.
func decodePosition(key, v []byte) (cursor uint64, acked []uint64, ok bool) {
	if len(v) < 16 {
		return 0, nil, false
	}
	n := binary.BigEndian.Uint32(v[8:])
	if uint64(len(v)) != 16+8*uint64(n) {
		return 0, nil, false
	}
	crc := crc32.Update(crc32.Checksum(key, castagnoli), castagnoli, v[:len(v)-4])
	if crc != binary.BigEndian.Uint32(v[len(v)-4:]) {
		return 0, nil, false
	}
	cursor = binary.BigEndian.Uint64(v)
	for i := range int(n) {
		acked = append(acked, binary.BigEndian.Uint64(v[12+8*i:]))
	}
	return cursor, acked, true
}

// SetCursor implements switchboard.Store. It stores a sorted copy of acked
// without duplicates, dropping the offsets not above cursor. Like Append,
// it returns once committed per the sync policy.
func (s *Store) SetCursor(ctx context.Context, room, subscriber string, cursor uint64, acked []uint64) error {
	if err := checkName(room); err != nil {
		return err
	}
	if err := checkName(subscriber); err != nil {
		return err
	}
	acked = switchboard.NormalizeAcked(cursor, acked)
	key := prefixKey(room, subscriber)
	return s.write(ctx, func(tx *bbolt.Tx) error {
		cb := tx.Bucket(bucketCursors)
		if old := cb.Get(key); old != nil {
			cur, _, ok := decodePosition(key, old)
			if !ok {
				return s.corrupt("cursor of %q in room %q fails its checksum", subscriber, room)
			}
			if cursor < cur {
				return nil
			}
		} else if err := tx.Bucket(bucketBySub).Put(prefixKey(subscriber, room), nil); err != nil {
			return err
		}
		return cb.Put(key, encodePosition(key, cursor, acked))
	})
}

// Cursor implements switchboard.Store.
func (s *Store) Cursor(ctx context.Context, room, subscriber string) (sub switchboard.Subscription, ok bool, err error) {
	err = s.view(ctx, func(tx *bbolt.Tx) error {
		var err error
		sub, ok, err = s.position(tx, room, subscriber)
		return err
	})
	return sub, ok, err
}

func (s *Store) position(tx *bbolt.Tx, room, subscriber string) (switchboard.Subscription, bool, error) {
	key := prefixKey(room, subscriber)
	v := tx.Bucket(bucketCursors).Get(key)
	if v == nil {
		return switchboard.Subscription{}, false, nil
	}
	cur, acked, ok := decodePosition(key, v)
	if !ok {
		return switchboard.Subscription{}, false, s.corrupt("cursor of %q in room %q fails its checksum", subscriber, room)
	}
	return switchboard.Subscription{Room: room, Subscriber: subscriber, Cursor: cur, Acked: acked}, true, nil
}

// DeleteCursor implements switchboard.Store. Deleting a subscription that
// does not exist is not an error.
func (s *Store) DeleteCursor(ctx context.Context, room, subscriber string) error {
	key := prefixKey(room, subscriber)
	return s.write(ctx, func(tx *bbolt.Tx) error {
		if err := tx.Bucket(bucketCursors).Delete(key); err != nil {
			return err
		}
		return tx.Bucket(bucketBySub).Delete(prefixKey(subscriber, room))
	})
}

// Subscriptions implements switchboard.Store; they come sorted by room
// (bytewise).
func (s *Store) Subscriptions(ctx context.Context, subscriber string) ([]switchboard.Subscription, error) {
	var out []switchboard.Subscription
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		prefix := prefixKey(subscriber, "")
		c := tx.Bucket(bucketBySub).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			room := string(k[len(prefix):])
			sub, ok, err := s.position(tx, room, subscriber)
			if err != nil {
				return err
			}
			if !ok {
				return s.corrupt("subscription of %q to room %q has no cursor", subscriber, room)
			}
			out = append(out, sub)
		}
		return nil
	})
	return out, err
}

// Subscribers implements switchboard.Store; they come sorted by subscriber
// (bytewise).
func (s *Store) Subscribers(ctx context.Context, room string) ([]switchboard.Subscription, error) {
	var out []switchboard.Subscription
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		prefix := prefixKey(room, "")
		c := tx.Bucket(bucketCursors).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			cur, acked, ok := decodePosition(k, v)
			if !ok {
				return s.corrupt("cursor of %q in room %q fails its checksum", k[len(prefix):], room)
			}
			out = append(out, switchboard.Subscription{Room: room, Subscriber: string(k[len(prefix):]), Cursor: cur, Acked: acked})
		}
		return nil
	})
	return out, err
}

// renewEpochs gives every room a new epoch and returns the rooms.
func renewEpochs(tx *bbolt.Tx) ([]string, error) {
	rb := tx.Bucket(bucketRooms)
	var rooms []string
	var metas []roomMeta
	err := rb.ForEach(func(k, v []byte) error {
		m, ok := decodeRoomMeta(k, v)
		if !ok {
			return fmt.Errorf("room %q: meta fails its checksum", k)
		}
		m.epoch = newEpoch()
		rooms = append(rooms, string(k))
		metas = append(metas, m)
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i, room := range rooms {
		if err := rb.Put([]byte(room), metas[i].encode(room)); err != nil {
			return nil, err
		}
	}
	return rooms, nil
}
