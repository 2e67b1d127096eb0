package redis

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	goredis "github.com/redis/go-redis/v9"
	"github.com/switchboard-io/switchboard"
	"github.com/switchboard-io/switchboard/parser"
)

// restorePageSize is how many stream entries one XRANGE of a restore
// reads, and restoreMaxPages how many pages it reads at most (the Node
// adapter reads at most 100 unbounded XRANGEs).
const (
	restorePageSize = 1000
	restoreMaxPages = 100
)

// PersistSession implements switchboard.Adapter: SET
// <SessionKeyPrefix><pid> base64(msgpack({sid, pid, rooms, data})) PX
// <MaxDisconnectionDuration>, readable by any node, Node ones included.
// Data travels as its JSON encoding; nil data is sent as {}, socket.io's
// default.
//
// When the session was kept ahead of time (KeepSession), it replaces the
// kept one only if Redis still holds what this node wrote: a client that
// already came back on another node (its session consumed, or rewritten by
// the node holding it now) must not find a stale copy later.
func (a *adapter) PersistSession(ctx context.Context, st *switchboard.SessionState) error {
	if a.recovery == nil {
		return nil
	}
	last := a.c.keep.take(a, st.PID)
	val, err := encodeSession(st)
	if err != nil {
		return err
	}
	key := a.c.opts.SessionKeyPrefix + st.PID
	if last != "" {
		err = casPersist.Run(ctx, a.c.client, []string{key}, val, last, a.recovery.MaxDisconnectionDuration.Milliseconds()).Err()
	} else {
		err = a.c.client.Set(ctx, key, val, a.recovery.MaxDisconnectionDuration).Err()
	}
	if err != nil {
		return fmt.Errorf("redis: SET %s: %w", key, err)
	}
	return nil
}

// encodeSession is the session in the Node adapter's form.
func encodeSession(st *switchboard.SessionState) (string, error) {
	data, err := goToTree(st.Data)
	if err != nil {
		return "", fmt.Errorf("redis: session data: %w", err)
	}
	if data == nil {
		data = obj{}
	}
	session := obj{{"sid", st.SID}, {"pid", st.PID}, {"rooms", strs(st.Rooms)}, {"data", data}}
	return base64.StdEncoding.EncodeToString(appendMsgpack(nil, session)), nil
}

// RestoreSession implements switchboard.Adapter as the Node adapter does:
// the session is taken (MULTI GET DEL EXEC, so it is consumed even if the
// restore fails), the offset must still be in the stream, and the
// broadcasts of this namespace after it that reach the session's rooms are
// returned with their entry ids appended. Volatile broadcasts are replayed
// too, as upstream does.
func (a *adapter) RestoreSession(ctx context.Context, pid, offset string) (*switchboard.SessionState, []*parser.Packet, error) {
	if a.recovery == nil || !offsetRE.MatchString(offset) {
		return nil, nil, switchboard.ErrSessionNotFound
	}
	key := a.c.opts.SessionKeyPrefix + pid
	var get *goredis.StringCmd
	_, err := a.c.client.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		get = p.Get(ctx, key)
		p.Del(ctx, key)
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) {
		return nil, nil, fmt.Errorf("redis: take session %s: %w", key, err)
	}
	raw, err := get.Result()
	if errors.Is(err, goredis.Nil) {
		return nil, nil, switchboard.ErrSessionNotFound
	}
	if err != nil {
		return nil, nil, fmt.Errorf("redis: take session %s: %w", key, err)
	}
	at, err := a.c.client.XRange(ctx, a.stream, offset, offset).Result()
	if err != nil {
		return nil, nil, fmt.Errorf("redis: XRANGE %s: %w", a.stream, err)
	}
	if len(at) == 0 {
		return nil, nil, switchboard.ErrSessionNotFound
	}
	st, err := decodeSession(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("redis: session %s: %w", key, err)
	}
	rooms := make(map[string]bool, len(st.Rooms))
	for _, r := range st.Rooms {
		rooms[r] = true
	}
	var missed []*parser.Packet
	for range restoreMaxPages {
		entries, err := a.c.client.XRangeN(ctx, a.stream, nextOffset(offset), "+", restorePageSize).Result()
		if err != nil {
			return nil, nil, fmt.Errorf("redis: XRANGE %s: %w", a.stream, err)
		}
		for _, e := range entries {
			offset = e.ID
			if nsp, _ := e.Values["nsp"].(string); nsp != a.nsp {
				continue
			}
			if t, _ := e.Values["type"].(string); t != "3" {
				continue
			}
			m, err := decodeStreamEntry(e.Values)
			if err != nil {
				continue
			}
			b, err := decodeBroadcast(m)
			if err != nil || b.hasRequest || !b.opts.Reaches(rooms) {
				continue
			}
			missed = append(missed, &parser.Packet{
				Type:        parser.Event,
				Namespace:   a.nsp,
				Data:        appendOffset(b.data, e.ID),
				Attachments: b.atts,
			})
		}
		if len(entries) < restorePageSize {
			break
		}
	}
	return st, missed, nil
}

// nextOffset is the smallest stream id after offset ("ms-seq" → "ms-seq+1").
func nextOffset(offset string) string {
	ms, seq, _ := strings.Cut(offset, "-")
	n, _ := strconv.ParseUint(seq, 10, 64)
	return ms + "-" + strconv.FormatUint(n+1, 10)
}

func decodeSession(raw string) (*switchboard.SessionState, error) {
	b, err := base64.StdEncoding.DecodeString(raw)
	if err != nil {
		return nil, err
	}
	v, err := decodeMsgpack(b)
	if err != nil {
		return nil, err
	}
	o, ok := v.(obj)
	if !ok {
		return nil, fmt.Errorf("%w: session is a %T", errMsgpack, v)
	}
	st := &switchboard.SessionState{SID: getString(o, "sid"), PID: getString(o, "pid"), Rooms: getStrings(o, "rooms")}
	if st.SID == "" {
		return nil, errors.New("session without sid")
	}
	if d, ok := o.get("data"); ok {
		st.Data = sessionData(d)
	}
	return st, nil
}
