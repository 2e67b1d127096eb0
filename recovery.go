package switchboard

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/switchboard-io/switchboard/parser"
)

// recoverableReasons are the disconnect reasons after which socket.io keeps
// a socket's state for connection-state recovery; "slow consumer" is ours
// and recoverable too, since the client did nothing wrong on purpose.
var recoverableReasons = map[string]bool{
	"transport error": true, "transport close": true, "forced close": true, "ping timeout": true,
	"server shutting down": true, "forced server close": true, "slow consumer": true,
}

// IsRecoverable reports whether a socket that disconnected with reason
// keeps its state for connection-state recovery (when recovery is on):
// "transport close", "transport error", "ping timeout", "forced close",
// "server shutting down", "forced server close" and "slow consumer".
func IsRecoverable(reason string) bool { return recoverableReasons[reason] }

// RecoveryOptions returns the connection-state recovery options in force
// (defaults applied), or nil when recovery is off. Cluster adapters use it
// to decide whether broadcasts carry offsets and how long a disconnected
// socket's session is kept.
func (s *Server) RecoveryOptions() *RecoveryOptions {
	if s.opts.ConnectionStateRecovery == nil {
		return nil
	}
	r := *s.opts.ConnectionStateRecovery
	return &r
}

// recoveryLog is the in-memory adapter's part of connection-state recovery:
// the recent stored events of a namespace with their offsets, and the
// sessions of sockets that dropped.
type recoveryLog struct {
	opts   RecoveryOptions
	prefix string // makes offsets of another process (or namespace) unknown here

	mu        sync.Mutex
	seq       uint64
	events    []loggedEvent
	sessions  map[string]keptSession
	lastPrune time.Time
}

type loggedEvent struct {
	seq  uint64
	at   time.Time
	opts BroadcastOptions
	p    *parser.Packet
}

type keptSession struct {
	state SessionState
	at    time.Time
}

func newRecoveryLog(opts RecoveryOptions) *recoveryLog {
	return &recoveryLog{opts: opts, prefix: newID()[:8], sessions: make(map[string]keptSession)}
}

// storable reports whether socket.io would store this broadcast for
// recovery: a plain event, no ack requested, not volatile.
func storable(p *parser.Packet, opts BroadcastOptions) bool {
	return p.Type == parser.Event && !p.HasID && !opts.Flags.Volatile
}

// append logs a broadcast and returns the packet to deliver: a copy with
// the offset appended as the last argument.
func (l *recoveryLog) append(p *parser.Packet, opts BroadcastOptions) *parser.Packet {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seq++
	q := *p
	q.Data = appendArg(p.Data, l.offset(l.seq))
	l.events = append(l.events, loggedEvent{seq: l.seq, at: now, opts: opts, p: &q})
	l.pruneLocked(now)
	return &q
}

func (l *recoveryLog) offset(seq uint64) string {
	return l.prefix + "-" + strconv.FormatUint(seq, 36)
}

func (l *recoveryLog) parseOffset(off string) (uint64, bool) {
	rest, ok := strings.CutPrefix(off, l.prefix+"-")
	if !ok {
		return 0, false
	}
	seq, err := strconv.ParseUint(rest, 36, 64)
	return seq, err == nil
}

func (l *recoveryLog) pruneLocked(now time.Time) {
	cutoff := now.Add(-l.opts.MaxDisconnectionDuration)
	drop := 0
	for drop < len(l.events) && (l.events[drop].at.Before(cutoff) || len(l.events)-drop > l.opts.MaxLogEvents) {
		drop++
	}
	if drop > 0 {
		clear(l.events[:drop])
		l.events = l.events[drop:]
	}
	if now.Sub(l.lastPrune) > 10*time.Second {
		l.lastPrune = now
		for pid, s := range l.sessions {
			if s.at.Before(cutoff) {
				delete(l.sessions, pid)
			}
		}
	}
}

func (l *recoveryLog) persist(st SessionState) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sessions[st.PID] = keptSession{state: st, at: now}
	l.pruneLocked(now)
}

// restore takes the session back (it is consumed even if the restore
// fails, as in socket.io) and returns the events it missed after offset.
func (l *recoveryLog) restore(pid, offset string) (*SessionState, []*parser.Packet, error) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pruneLocked(now)
	kept, ok := l.sessions[pid]
	delete(l.sessions, pid)
	if !ok || now.Sub(kept.at) > l.opts.MaxDisconnectionDuration {
		return nil, nil, ErrSessionNotFound
	}
	seq, ok := l.parseOffset(offset)
	if !ok || len(l.events) == 0 || seq < l.events[0].seq || seq > l.seq {
		return nil, nil, ErrSessionNotFound
	}
	rooms := make(map[string]bool, len(kept.state.Rooms))
	for _, r := range kept.state.Rooms {
		rooms[r] = true
	}
	var missed []*parser.Packet
	for _, ev := range l.events[seq-l.events[0].seq+1:] {
		if ev.opts.Reaches(rooms) {
			missed = append(missed, ev.p)
		}
	}
	st := kept.state
	return &st, missed, nil
}

// appendArg returns a copy of the JSON array data with s appended.
func appendArg(data json.RawMessage, s string) json.RawMessage {
	enc, _ := json.Marshal(s)
	return appendRaw(data, enc)
}

// appendRaw returns a copy of the JSON array data with the JSON value enc
// appended.
func appendRaw(data json.RawMessage, enc []byte) json.RawMessage {
	trimmed := bytes.TrimRight(data, " \t\r\n")
	out := make([]byte, 0, len(trimmed)+len(enc)+1)
	out = append(out, trimmed[:len(trimmed)-1]...)
	if len(bytes.TrimSpace(trimmed[1:len(trimmed)-1])) > 0 {
		out = append(out, ',')
	}
	out = append(out, enc...)
	return append(out, ']')
}

// recoveryAuth extracts pid and offset from a CONNECT payload.
func recoveryAuth(auth json.RawMessage) (pid, offset string, ok bool) {
	if len(auth) == 0 {
		return "", "", false
	}
	var a struct {
		PID    *string `json:"pid"`
		Offset *string `json:"offset"`
	}
	if json.Unmarshal(auth, &a) != nil || a.PID == nil || a.Offset == nil {
		return "", "", false
	}
	return *a.PID, *a.Offset, true
}
