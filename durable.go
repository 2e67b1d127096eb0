package switchboard

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard-io/switchboard/parser"
)

// Durable rooms: a room published to with Publish keeps an append-only log
// in the Store. A subscriber (a stable identity, from Options.Identity) that
// called JoinDurable gets every event of the room after its cursor, at
// least once and in order, on each of its connections, as
//
//	event(args..., meta, ack)   meta = {"room", "offset", "from"}
//
// and acknowledging advances its cursor. Unacknowledged events are sent
// again after a reconnect and after DurableOptions.AckTimeout. Every
// connection of an identity gets every event after the cursor it started
// from; an acknowledgement from any of them advances the shared cursor.

var (
	// ErrNoStore is returned by durable operations on a server without
	// Options.Store.
	ErrNoStore = errors.New("no store configured for durable rooms")
	// ErrNoIdentity is returned by JoinDurable for a socket without an
	// identity (Options.Identity unset or returning "").
	ErrNoIdentity = errors.New("socket has no identity")
)

// GapEvent is the reserved event a durable subscriber receives when events
// it had not acknowledged were removed by retention before it got them:
// GapNotice{Room, From, To, Missed} as its single argument.
const GapEvent = "switchboard:gap"

// GapNotice tells a durable subscriber which offsets it missed.
type GapNotice struct {
	Room   string `json:"room"`
	From   uint64 `json:"from"`
	To     uint64 `json:"to"`
	Missed uint64 `json:"missed"`
}

// DeliveryMeta is the argument appended to every durable delivery.
type DeliveryMeta struct {
	Room   string `json:"room"`
	Offset uint64 `json:"offset"`
	From   string `json:"from,omitempty"`
}

// DurableOptions configures delivery from durable rooms.
type DurableOptions struct {
	// AckTimeout is how long a delivery may stay unacknowledged before it
	// and those after it are sent again. Default 30 s.
	AckTimeout time.Duration
	// MaxInflight bounds the unacknowledged deliveries per subscription and
	// connection; delivery pauses at the bound. Default 100.
	MaxInflight int
	// CursorSaveInterval is how often a subscription that is busy
	// delivering saves its acknowledgements in the store; one that runs
	// out of events to deliver saves at once. Saving waits for a store
	// commit, so saving after every batch of acknowledgements would hold
	// a replay to one window per commit. Acknowledgements not saved when
	// the server dies are delivered again (at least once). Default 100 ms.
	CursorSaveInterval time.Duration
}

func (o DurableOptions) withDefaults() DurableOptions {
	if o.AckTimeout <= 0 {
		o.AckTimeout = 30 * time.Second
	}
	if o.MaxInflight <= 0 {
		o.MaxInflight = 100
	}
	if o.CursorSaveInterval <= 0 {
		o.CursorSaveInterval = 100 * time.Millisecond
	}
	return o
}

// durableMarker is the room every durable subscriber socket of room is in,
// so that the plain live copy of a publish can skip them.
func durableMarker(room string) string { return "\x00durable\x00" + room }

// Identity returns the socket's stable identity ("" if none).
func (s *Socket) Identity() string { return s.identity }

// Publish stores an event in room's durable log and returns its offset once
// the store confirmed it (publisher confirm). Durable subscribers of the
// room get it with an acknowledgement request; the room's other members get
// a plain copy. Both carry a DeliveryMeta as the last argument.
func (ns *Namespace) Publish(ctx context.Context, room, event string, args ...any) (uint64, error) {
	return ns.publish(ctx, room, event, args, "", "")
}

// Publish is Namespace.Publish from this socket: the plain copy skips the
// socket itself, and the meta's From is the socket's identity.
func (s *Socket) Publish(ctx context.Context, room, event string, args ...any) (uint64, error) {
	return s.nsp.publish(ctx, room, event, args, s.identity, s.id)
}

// PublishAsync is Publish without waiting: the event is queued for the
// store and done is called once with Publish's results after the store
// confirmed it (or did not). With a store that implements AsyncAppender
// (bolt.Store) a connection can keep many publishes waiting for the same
// group commit, and publishes queued one after another from one goroutine
// (a socket's handlers) get increasing offsets in that order; other stores
// confirm before PublishAsync returns. done runs on the store's committer:
// it must not block (calling an AckFunc is fine).
func (ns *Namespace) PublishAsync(ctx context.Context, room, event string, args []any, done func(offset uint64, err error)) {
	ns.publishAsync(ctx, room, event, args, "", "", done)
}

// PublishAsync is Namespace.PublishAsync from this socket, as Publish.
func (s *Socket) PublishAsync(ctx context.Context, room, event string, args []any, done func(offset uint64, err error)) {
	s.nsp.publishAsync(ctx, room, event, args, s.identity, s.id, done)
}

func (ns *Namespace) publish(ctx context.Context, room, event string, args []any, from, exceptSID string) (uint64, error) {
	type result struct {
		offset uint64
		err    error
	}
	ch := make(chan result, 1)
	ns.publishAsync(ctx, room, event, args, from, exceptSID, func(offset uint64, err error) {
		ch <- result{offset, err}
	})
	r := <-ch
	return r.offset, r.err
}

func (ns *Namespace) publishAsync(ctx context.Context, room, event string, args []any, from, exceptSID string, done func(uint64, error)) {
	store := ns.srv.opts.Store
	if store == nil {
		done(0, ErrNoStore)
		return
	}
	if reservedEvents[event] {
		done(0, fmt.Errorf("%w: %q", ErrReservedEvent, event))
		return
	}
	data, atts, err := parser.MarshalEvent(event, args...)
	if err != nil {
		done(0, err)
		return
	}
	rec := durableRecord{data: data, from: from, attachments: atts}
	events := []StoredEvent{{Data: rec.encode()}}
	stored := func(offset uint64, err error) {
		if err != nil {
			done(0, fmt.Errorf("publish to %q: %w", room, err))
			return
		}
		done(offset, ns.deliverPublished(room, offset, data, atts, from, exceptSID))
	}
	if async, ok := store.(AsyncAppender); ok {
		async.AppendAsync(ctx, durableKey(ns.name, room), events, stored)
		return
	}
	stored(store.Append(ctx, durableKey(ns.name, room), events))
}

// deliverPublished sends a stored event's plain copy to the room's live
// members and wakes its durable subscribers' pumps.
func (ns *Namespace) deliverPublished(room string, offset uint64, data []byte, atts [][]byte, from, exceptSID string) error {
	if la, ok := ns.adapter.(*LocalAdapter); ok && la.unheard(room) {
		// No live copy to make: nobody here is in the room and nothing is
		// kept for recovery (a backlog publish to subscribers who are
		// away, say). Deliver would skip the encoding itself; this also
		// skips building the packet (meta and a copy of the payload, ~9 %
		// of a publish's CPU). The pumps still hear of the new event.
		ns.durable.notify(room)
		return nil
	}
	roomJSON, _ := json.Marshal(room)
	meta := appendDeliveryMeta(nil, roomJSON, offset, from)
	p := &parser.Packet{Type: parser.Event, Namespace: ns.name, Data: appendRaw(data, meta), Attachments: atts}
	except := []string{durableMarker(room)}
	if exceptSID != "" {
		except = append(except, exceptSID)
	}
	if err := ns.adapter.Broadcast(p, BroadcastOptions{Rooms: []string{room}, Except: except}); err != nil {
		return err
	}
	ns.durable.notify(room)
	return nil
}

// durableKey is the store's name of a namespace's room: "/#news",
// "/chat#general".
func durableKey(nsp, room string) string { return nsp + "#" + room }

// JoinDurable subscribes the socket's identity to room's log, starting after
// the room's current last event if the identity had no subscription yet, and
// starts delivery to every connection of the identity on this node. The
// socket also joins the room for live events.
func (s *Socket) JoinDurable(ctx context.Context, room string) error {
	return s.joinDurable(ctx, room, nil)
}

// JoinDurableFrom is JoinDurable starting at offset (the first event to
// deliver) for a new subscription; an existing subscription keeps its
// cursor.
func (s *Socket) JoinDurableFrom(ctx context.Context, room string, offset uint64) error {
	return s.joinDurable(ctx, room, &offset)
}

func (s *Socket) joinDurable(ctx context.Context, room string, from *uint64) error {
	store := s.nsp.srv.opts.Store
	if store == nil {
		return ErrNoStore
	}
	if s.identity == "" {
		return ErrNoIdentity
	}
	key := durableKey(s.nsp.name, room)
	if _, ok, err := store.Cursor(ctx, key, s.identity); err != nil {
		return err
	} else if !ok {
		var start uint64
		if from != nil {
			if *from > 0 {
				start = *from - 1
			}
		} else {
			info, _, err := store.Info(ctx, key)
			if err != nil {
				return err
			}
			start = info.Last
		}
		if err := store.SetCursor(ctx, key, s.identity, start, nil); err != nil {
			return err
		}
	}
	if err := s.Join(room, durableMarker(room)); err != nil {
		return err
	}
	for _, peer := range s.nsp.socketsOf(s.identity) {
		if peer != s {
			_ = peer.Join(room, durableMarker(room))
		}
		s.nsp.durable.start(peer, room)
	}
	return nil
}

// LeaveDurable ends the identity's subscription to room and stops delivery
// to its connections on this node; they also leave the room.
// Acknowledgements not saved yet are dropped: the pumps stop (and any save
// in progress ends) before the subscription is deleted, so that no late save
// recreates it.
func (s *Socket) LeaveDurable(ctx context.Context, room string) error {
	store := s.nsp.srv.opts.Store
	if store == nil {
		return ErrNoStore
	}
	if s.identity == "" {
		return ErrNoIdentity
	}
	for _, peer := range s.nsp.socketsOf(s.identity) {
		peer.mu.Lock()
		p := peer.pumps[room]
		delete(peer.pumps, room)
		peer.mu.Unlock()
		if p != nil {
			s.nsp.durable.remove(p)
			if err := p.discard(ctx); err != nil {
				return err
			}
		}
		peer.Leave(durableMarker(room))
		peer.Leave(room)
	}
	return store.DeleteCursor(ctx, durableKey(s.nsp.name, room), s.identity)
}

// StopDurable stops durable delivery of room to this connection only and
// makes it leave the room. Unlike LeaveDurable, the identity's subscription
// and cursor are kept: its other connections keep receiving, and the next
// connection of the identity resumes from the cursor. It does nothing for a
// room the socket does not receive durably.
func (s *Socket) StopDurable(room string) {
	s.nsp.durable.stop(s, room)
	s.Leave(durableMarker(room))
	s.Leave(room)
}

// startSubscriptions resumes delivery of every durable room the socket's
// identity subscribed to; called once the socket is connected.
func (ns *Namespace) startSubscriptions(s *Socket) {
	store := ns.srv.opts.Store
	if store == nil || s.identity == "" {
		return
	}
	subs, err := store.Subscriptions(context.Background(), s.identity)
	if err != nil {
		ns.srv.opts.Logger.Error("switchboard: cannot load durable subscriptions", "identity", s.identity, "err", err)
		return
	}
	for _, sub := range subs {
		room, ok := strings.CutPrefix(sub.Room, ns.name+"#")
		if !ok {
			continue
		}
		_ = s.Join(room, durableMarker(room))
		ns.durable.start(s, room)
	}
}

// socketsOf returns the local sockets with that identity.
func (ns *Namespace) socketsOf(identity string) []*Socket {
	ns.mu.RLock()
	defer ns.mu.RUnlock()
	var out []*Socket
	for _, s := range ns.sockets {
		if s.identity == identity {
			out = append(out, s)
		}
	}
	return out
}

// durableHub tracks the delivery pumps of one namespace.
type durableHub struct {
	ns *Namespace

	mu     sync.Mutex
	byRoom map[string]map[*durablePump]struct{}

	duplicateAcks atomic.Uint64
}

func (h *durableHub) start(s *Socket, room string) {
	s.mu.Lock()
	if !s.connected || s.pumps[room] != nil {
		s.mu.Unlock()
		return
	}
	p := &durablePump{hub: h, s: s, room: room, key: durableKey(h.ns.name, room), opts: h.ns.srv.opts.Durable}
	if s.pumps == nil {
		s.pumps = make(map[string]*durablePump)
	}
	s.pumps[room] = p
	s.mu.Unlock()
	h.mu.Lock()
	if h.byRoom == nil {
		h.byRoom = make(map[string]map[*durablePump]struct{})
	}
	set := h.byRoom[room]
	if set == nil {
		set = make(map[*durablePump]struct{})
		h.byRoom[room] = set
	}
	set[p] = struct{}{}
	h.mu.Unlock()
	p.kick()
}

func (h *durableHub) stop(s *Socket, room string) {
	s.mu.Lock()
	p := s.pumps[room]
	delete(s.pumps, room)
	s.mu.Unlock()
	if p != nil {
		h.remove(p)
		p.close()
	}
}

func (h *durableHub) remove(p *durablePump) {
	h.mu.Lock()
	if set := h.byRoom[p.room]; set != nil {
		delete(set, p)
		if len(set) == 0 {
			delete(h.byRoom, p.room)
		}
	}
	h.mu.Unlock()
}

// stopAll ends the socket's pumps when it disconnects.
func (h *durableHub) stopAll(s *Socket) {
	s.mu.Lock()
	pumps := s.pumps
	s.pumps = nil
	s.mu.Unlock()
	for _, p := range pumps {
		h.remove(p)
		p.close()
	}
}

// notify wakes the pumps of a room after a publish.
func (h *durableHub) notify(room string) {
	h.mu.Lock()
	pumps := make([]*durablePump, 0, len(h.byRoom[room]))
	for p := range h.byRoom[room] {
		pumps = append(pumps, p)
	}
	h.mu.Unlock()
	for _, p := range pumps {
		p.kick()
	}
}

// durablePump delivers one durable room to one connection: it reads the log
// from the connection's position, keeps at most MaxInflight deliveries
// unacknowledged, records acknowledgements (in order or not) as the
// identity's position, and sends everything unacknowledged again after
// AckTimeout. It runs on a goroutine that exists only while there is work.
type durablePump struct {
	hub  *durableHub
	s    *Socket
	room string
	key  string
	opts DurableOptions

	mu       sync.Mutex
	started  bool                // the position was loaded from the store
	next     uint64              // next offset to read
	acked    uint64              // every offset up to here is acknowledged
	above    map[uint64]struct{} // acknowledged offsets above acked
	inflight map[uint64]struct{} // sent, not acknowledged
	dirty    bool                // position not yet saved
	savedAt  time.Time           // last save of the position

	roomJSON []byte // the room as a JSON string, made by the pump's goroutine
	running  bool
	again    bool
	closed   bool
	timer    *time.Timer
}

func (p *durablePump) kick() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	if p.running {
		p.again = true
		p.mu.Unlock()
		return
	}
	p.running, p.again = true, false
	p.mu.Unlock()
	p.hub.ns.srv.work.Add(1)
	p.hub.ns.srv.workers.Go(p.run)
}

// close stops delivery; acknowledgements not yet saved are still saved.
func (p *durablePump) close() {
	p.mu.Lock()
	p.closed = true
	if p.timer != nil {
		p.timer.Stop()
	}
	flush := p.dirty && !p.running
	if flush {
		p.running = true
	}
	p.mu.Unlock()
	if flush {
		p.hub.ns.srv.work.Add(1)
		p.hub.ns.srv.workers.Go(p.run)
	}
}

func (p *durablePump) run() {
	defer p.hub.ns.srv.work.Done()
	store := p.hub.ns.srv.opts.Store
	ctx := context.Background()
	logger := p.hub.ns.srv.opts.Logger
	if !p.load(ctx, store) {
		return
	}
	saveNow := false // the run is about to end with acknowledgements unsaved
	for {
		p.mu.Lock()
		if p.closed && !p.dirty {
			p.running = false
			p.mu.Unlock()
			return
		}
		p.again = false
		// Save acknowledgements first when due: they are what survives a
		// crash.
		if p.dirty && (saveNow || p.closed || time.Since(p.savedAt) >= p.opts.CursorSaveInterval) {
			saveNow = false
			p.dirty = false
			p.savedAt = time.Now()
			cursor, acked := p.acked, sortedKeys(p.above)
			p.mu.Unlock()
			if err := store.SetCursor(ctx, p.key, p.s.identity, cursor, acked); err != nil {
				logger.Error("switchboard: durable acknowledgement not saved", "room", p.room, "err", err)
				p.mu.Lock()
				p.dirty = true
				p.mu.Unlock()
				p.retryLater()
				return
			}
			p.mu.Lock()
		}
		if p.closed {
			p.running = false
			p.mu.Unlock()
			return
		}
		room := p.opts.MaxInflight - len(p.inflight)
		// Refill a busy window only once a quarter of it is free: one
		// store read and one coalesced write per many acknowledgements,
		// not per acknowledgement.
		refill := room > 0 && (len(p.inflight) == 0 || room >= max(1, p.opts.MaxInflight/4))
		from := p.next
		p.mu.Unlock()

		var events []StoredEvent
		if refill {
			var err error
			events, err = store.Read(ctx, p.key, from, room)
			if err != nil {
				logger.Error("switchboard: durable read failed; delivery paused", "room", p.room, "offset", from, "err", err)
				p.retryLater()
				return
			}
		}
		if len(events) > 0 && events[0].Offset > from {
			p.sendGap(from, events[0].Offset-1)
		}
		for _, ev := range events {
			if !p.deliver(ev) {
				p.mu.Lock()
				p.running = false
				p.mu.Unlock()
				return
			}
		}
		p.mu.Lock()
		if len(events) == 0 && !p.again {
			if p.dirty {
				saveNow = true
				p.mu.Unlock()
				continue
			}
			p.running = false
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
	}
}

// load reads the identity's position once per pump.
func (p *durablePump) load(ctx context.Context, store Store) bool {
	p.mu.Lock()
	started := p.started
	p.mu.Unlock()
	if started {
		return true
	}
	sub, _, err := store.Cursor(ctx, p.key, p.s.identity)
	if err != nil {
		p.hub.ns.srv.opts.Logger.Error("switchboard: durable position not loaded", "room", p.room, "err", err)
		p.retryLater()
		return false
	}
	p.mu.Lock()
	p.started = true
	p.acked, p.next = sub.Cursor, sub.Cursor+1
	p.above = make(map[uint64]struct{}, len(sub.Acked))
	for _, o := range sub.Acked {
		if o > sub.Cursor {
			p.above[o] = struct{}{}
		}
	}
	p.inflight = make(map[uint64]struct{})
	p.mu.Unlock()
	return true
}

// discard stops the pump without saving what it has not saved yet, and
// waits until its goroutine is done.
func (p *durablePump) discard(ctx context.Context) error {
	p.mu.Lock()
	p.closed, p.dirty = true, false
	if p.timer != nil {
		p.timer.Stop()
	}
	p.mu.Unlock()
	for {
		p.mu.Lock()
		running := p.running
		p.mu.Unlock()
		if !running {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
}

// retryLater ends this run and tries again after a second (store errors).
func (p *durablePump) retryLater() {
	p.mu.Lock()
	p.running = false
	closed := p.closed
	p.mu.Unlock()
	if !closed {
		time.AfterFunc(time.Second, p.kick)
	}
}

func (p *durablePump) sendGap(from, to uint64) {
	_ = p.s.client.send(&parser.Packet{Type: parser.Event, Namespace: p.s.nsp.name,
		Data: mustJSON([]any{GapEvent, GapNotice{Room: p.room, From: from, To: to, Missed: to - from + 1}})})
	p.mu.Lock()
	// The lost offsets count as acknowledged: they can never be delivered.
	switch {
	case from <= p.acked+1:
		p.acked = max(p.acked, to)
	case to-from < 4096:
		for o := from; o <= to; o++ {
			p.above[o] = struct{}{}
		}
	default:
		// Unacknowledged events below a huge gap: the cursor cannot jump
		// over them, so the notice comes again after a reconnect.
	}
	p.advanceLocked()
	if p.next <= to {
		p.next = to + 1
	}
	p.dirty = true
	p.mu.Unlock()
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// deliver sends one event asking for an acknowledgement, unless it was
// already acknowledged out of order.
func (p *durablePump) deliver(ev StoredEvent) bool {
	offset := ev.Offset
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return false
	}
	if offset >= p.next {
		p.next = offset + 1
	}
	_, done := p.above[offset]
	if done || offset <= p.acked {
		p.mu.Unlock()
		return true
	}
	p.mu.Unlock()
	rec, err := decodeDurableRecord(ev.Data)
	if err != nil {
		p.hub.ns.srv.opts.Logger.Error("switchboard: undecodable durable event skipped", "room", p.room, "offset", offset, "err", err)
		p.onAck(offset)
		return true
	}
	if p.roomJSON == nil {
		p.roomJSON, _ = json.Marshal(p.room)
	}
	meta := appendDeliveryMeta(make([]byte, 0, 64), p.roomJSON, offset, rec.from)
	id := p.hub.ns.nextAckID()
	if !p.s.addAck(id, func(_ Args, err error) {
		if err == nil {
			p.onAck(offset)
		}
	}) {
		return false
	}
	p.mu.Lock()
	p.inflight[offset] = struct{}{}
	if p.timer == nil {
		p.timer = time.AfterFunc(p.opts.AckTimeout, p.onTimeout)
	}
	p.mu.Unlock()
	pkt := &parser.Packet{Type: parser.Event, Namespace: p.s.nsp.name, ID: id, HasID: true,
		Data: appendRaw(rec.data, meta), Attachments: rec.attachments}
	return p.s.client.send(pkt) == nil
}

// appendDeliveryMeta appends DeliveryMeta{room, offset, from} as JSON, with
// room already a JSON string: no encoding/json reflection per delivery (a
// pump encodes its room once for a whole replay).
func appendDeliveryMeta(dst, roomJSON []byte, offset uint64, from string) []byte {
	dst = append(append(append(dst, `{"room":`...), roomJSON...), `,"offset":`...)
	dst = strconv.AppendUint(dst, offset, 10)
	if from != "" {
		f, _ := json.Marshal(from)
		dst = append(append(dst, `,"from":`...), f...)
	}
	return append(dst, '}')
}

func (p *durablePump) onAck(offset uint64) {
	p.mu.Lock()
	_, dup := p.above[offset]
	if dup || offset <= p.acked {
		p.mu.Unlock()
		p.hub.duplicateAcks.Add(1)
		return
	}
	delete(p.inflight, offset)
	p.above[offset] = struct{}{}
	p.advanceLocked()
	p.dirty = true
	if p.timer != nil {
		if len(p.inflight) == 0 {
			p.timer.Stop()
			p.timer = nil
		} else {
			p.timer.Reset(p.opts.AckTimeout)
		}
	}
	p.mu.Unlock()
	p.kick()
}

// advanceLocked moves acked over offsets acknowledged out of order.
func (p *durablePump) advanceLocked() {
	for {
		if _, ok := p.above[p.acked+1]; !ok {
			return
		}
		delete(p.above, p.acked+1)
		p.acked++
	}
}

// onTimeout sends again everything not acknowledged, in order.
func (p *durablePump) onTimeout() {
	p.mu.Lock()
	p.timer = nil
	if p.closed || len(p.inflight) == 0 {
		p.mu.Unlock()
		return
	}
	lowest := uint64(0)
	for o := range p.inflight {
		if lowest == 0 || o < lowest {
			lowest = o
		}
	}
	p.next = lowest
	clear(p.inflight)
	p.mu.Unlock()
	p.kick()
}

func sortedKeys(m map[uint64]struct{}) []uint64 {
	out := make([]uint64, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// DuplicateAcks returns how many acknowledgements of durable deliveries
// were for events already acknowledged (a delivery sent again after a
// timeout or a reconnect is acknowledged twice); they change nothing.
func (ns *Namespace) DuplicateAcks() uint64 { return ns.durable.duplicateAcks.Load() }

// durableRecord is a stored event: the event array (with binary
// placeholders), the publisher identity and the attachments.
type durableRecord struct {
	data        json.RawMessage
	from        string
	attachments [][]byte
}

const durableRecordVersion = 1

func (r durableRecord) encode() []byte {
	n := 1 + 3*binary.MaxVarintLen64 + len(r.data) + len(r.from)
	for _, a := range r.attachments {
		n += binary.MaxVarintLen64 + len(a)
	}
	b := make([]byte, 0, n)
	b = append(b, durableRecordVersion)
	b = binary.AppendUvarint(b, uint64(len(r.data)))
	b = append(b, r.data...)
	b = binary.AppendUvarint(b, uint64(len(r.from)))
	b = append(b, r.from...)
	b = binary.AppendUvarint(b, uint64(len(r.attachments)))
	for _, a := range r.attachments {
		b = binary.AppendUvarint(b, uint64(len(a)))
		b = append(b, a...)
	}
	return b
}

var errBadRecord = errors.New("malformed durable record")

func decodeDurableRecord(b []byte) (durableRecord, error) {
	var r durableRecord
	if len(b) == 0 || b[0] != durableRecordVersion {
		return r, errBadRecord
	}
	b = b[1:]
	next := func() ([]byte, error) {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return nil, errBadRecord
		}
		v := b[k : k+int(n)]
		b = b[k+int(n):]
		return v, nil
	}
	data, err := next()
	if err != nil {
		return r, err
	}
	from, err := next()
	if err != nil {
		return r, err
	}
	count, k := binary.Uvarint(b)
	if k <= 0 || count > uint64(len(b)) {
		return r, errBadRecord
	}
	b = b[k:]
	r.data, r.from = data, string(from)
	for i := uint64(0); i < count; i++ {
		a, err := next()
		if err != nil {
			return r, err
		}
		r.attachments = append(r.attachments, a)
	}
	return r, nil
}
