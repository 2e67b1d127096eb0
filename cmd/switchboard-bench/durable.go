package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard-io/switchboard"
	"github.com/switchboard-io/switchboard/client"
)

// durableScenario measures durable rooms on the server's embedded store
// (the benchserver's dsub/dpublish contract; Switchboard only): n
// publishers publish with acknowledgement = store confirm for the duration
// (confirmed events/s, per server CPU-second); then a subscriber that
// subscribed before the first publish comes back and receives the backlog
// (replayed events/s, lost and out-of-order counts).
type durableScenario struct {
	publishers int
	inflight   int
	size       int
}

func (d *durableScenario) flags(fs *flag.FlagSet, _ *config) {
	fs.IntVar(&d.publishers, "publishers", 16, "concurrent publishers (the store batches their commits)")
	fs.IntVar(&d.inflight, "inflight", 256, "publishes each publisher keeps waiting for their confirm")
	fs.IntVar(&d.size, "size", 64, "bytes of each event's payload")
}

func (d *durableScenario) run(ctx context.Context, c *config) (*Result, error) {
	if d.publishers < 1 || d.inflight < 1 {
		return nil, errors.New("-publishers and -inflight must be at least 1")
	}
	res := &Result{Params: map[string]any{
		"publishers": d.publishers, "inflight": d.inflight, "size": d.size, "duration": c.duration.String(),
	}}
	room := fmt.Sprintf("bench-durable-%d", time.Now().UnixNano())
	subscriber := "replayer-" + room

	// Subscribe first, then leave: everything published is backlog.
	sub, err := d.dialAs(ctx, c, subscriber)
	if err != nil {
		return nil, fmt.Errorf("subscriber: %w", err)
	}
	if err := emitOK(ctx, sub, "dsub", room); err != nil {
		_ = sub.Manager().Close()
		return nil, fmt.Errorf("dsub: %w", err)
	}
	_ = sub.Manager().Close()

	pubs, err := c.dialAll(ctx, d.publishers, nil)
	defer func() { c.closeAll(pubs) }()
	if err != nil {
		return nil, fmt.Errorf("opening publishers: %w", err)
	}
	pad := strings.Repeat("x", d.size)
	var total atomic.Int64 // all confirmed, warm-up included
	l := newClosedLoop(ctx, c)
	for i := range d.publishers * d.inflight {
		s := pubs[i%len(pubs)]
		l.wg.Go(func() {
			for !l.stopped() {
				m := l.measure.Load()
				t0 := time.Now()
				a, err := s.EmitWithAck(l.ops, "dpublish", map[string]any{"room": room, "payload": pad})
				var offset uint64
				if err == nil {
					err = a.Decode(0, &offset)
				}
				if err != nil || offset == 0 {
					l.fail(fmt.Errorf("dpublish answered %v: %v", a, err))
					return
				}
				total.Add(1)
				l.done(m, time.Since(t0))
			}
		})
	}
	cpuErr := l.finish(ctx, c, res, "confirmed", "events", "confirm")

	// Replay the whole backlog to the returning subscriber.
	backlog := total.Load()
	var (
		received, outOfOrder atomic.Int64
		trimmed              atomic.Int64 // older than the store's retention: announced by a gap notice
		last                 atomic.Uint64
		done                 = make(chan struct{})
		once                 sync.Once
	)
	finished := func() {
		if received.Load()+trimmed.Load() >= backlog {
			once.Do(func() { close(done) })
		}
	}
	opts := c.clientOptions()
	opts.Auth = map[string]string{"id": subscriber}
	m := client.NewManager(c.url, opts)
	defer m.Close()
	s := m.Socket("/")
	// Args, not typed parameters: the offset is read off the raw meta, so
	// that the tool's own decoding costs as little as possible per event.
	s.On("dmsg", func(args client.Args, ack client.AckFunc) {
		ack()
		var offset uint64
		if len(args.Raw) == 2 {
			offset = metaOffset(args.Raw[1])
		}
		if prev := last.Swap(offset); offset == 0 || offset != prev+1 {
			outOfOrder.Add(1)
		}
		received.Add(1)
		finished()
	})
	// A backlog longer than the room's retention (a million events by
	// default) starts with a gap notice for what was dropped; those events
	// are not lost by the replay, and the next offset follows the gap.
	s.On(switchboard.GapEvent, func(gap switchboard.GapNotice) {
		trimmed.Add(int64(gap.Missed))
		last.Store(gap.To)
		finished()
	})
	replayMeter := startCPU(c.serverPID)
	s.Connect()
	select {
	case <-done:
	case <-time.After(c.timeout):
	case <-ctx.Done():
	}
	rcpu, rwall, rerr := replayMeter.stop()
	got := received.Load()
	res.add("replayed", float64(got), "events", "")
	res.add("replayed_per_s", perSecond(float64(got), rwall), "events/s", "higher")
	if replayMeter.selfCPUErr == nil {
		res.add("replay_tool_cpu_util", perSecond(replayMeter.selfCPU, rwall), "cores", "")
	}
	if c.serverPID > 0 {
		res.add("replay_server_cpu_s", rcpu, "s", "")
		res.add("replay_server_cpu_util", perSecond(rcpu, rwall), "cores", "")
		res.add("replayed_per_cpu_s", perSecond(float64(got), rcpu), "events/cpu-s", "higher")
	}
	res.add("backlog", float64(backlog), "events", "")
	res.add("trimmed_by_retention", float64(trimmed.Load()), "events", "")
	res.add("lost", float64(max(backlog-trimmed.Load()-got, 0)), "events", "lower")
	res.add("out_of_order", float64(outOfOrder.Load()), "events", "lower")
	if cpuErr == nil {
		cpuErr = rerr
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	return res, cpuErr
}

func (d *durableScenario) dialAs(ctx context.Context, c *config, id string) (*client.Socket, error) {
	opts := c.clientOptions()
	opts.Auth = map[string]string{"id": id}
	ctx, cancel := context.WithTimeout(ctx, c.dialTimout)
	defer cancel()
	return client.Dial(ctx, c.url, opts)
}

// emitOK emits with an acknowledgement and fails unless the answer is empty
// (the benchserver's success).
func emitOK(ctx context.Context, s *client.Socket, event string, args ...any) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	a, err := s.EmitWithAck(ctx, event, args...)
	if err != nil {
		return err
	}
	if a.Len() > 0 {
		return errors.New("server answered " + a.String())
	}
	return nil
}

// metaOffset returns the "offset" member of a DeliveryMeta's JSON, 0 if it
// has none.
func metaOffset(meta []byte) uint64 {
	i := bytes.Index(meta, []byte(`"offset":`))
	if i < 0 {
		return 0
	}
	var n uint64
	for _, c := range meta[i+len(`"offset":`):] {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + uint64(c-'0')
	}
	return n
}
