package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/switchboard-io/switchboard/client"
)

// fanoutScenario: n receivers join a room; one publisher (not in the room)
// publishes numbered, timestamped events to it. Flat-out (rate 0) the
// publisher keeps at most window events not yet delivered to every
// receiver; paced, it publishes rate events per second (the window still
// bounds what is in flight).
type fanoutScenario struct {
	n      int
	window int
	rate   float64
	size   int
	room   string
	drain  time.Duration
	stall  time.Duration
	maxEvt int64
	raw    bool // the raw-TCP floor (tcp-fanout against tcp-floor-server)
}

func (f *fanoutScenario) flags(fs *flag.FlagSet, _ *config) {
	fs.IntVar(&f.n, "n", 1000, "receivers")
	fs.IntVar(&f.window, "window", 0, "events published but not yet delivered to every receiver, at most; default 64 flat-out, 4096 paced")
	fs.Float64Var(&f.rate, "rate", 0, "events published per second; 0: flat-out within the window")
	fs.IntVar(&f.size, "size", 64, "padding bytes in each payload")
	fs.StringVar(&f.room, "room", "bench", "room name")
	fs.DurationVar(&f.drain, "drain", 10*time.Second, "how long to wait, after publishing stops, for the last deliveries")
	fs.DurationVar(&f.stall, "stall", 10*time.Second, "give up when the window has not moved for this long")
	fs.Int64Var(&f.maxEvt, "max-events", 100_000_000, "stop publishing after this many events")
}

// fanoutReceiver is the state of one receiving socket, touched by its
// handler goroutine and read at the end.
type fanoutReceiver struct {
	last atomic.Int64 // highest seq received
	got  atomic.Int64
	ooo  atomic.Int64 // events with a seq not above the previous one
	bad  atomic.Int64 // payloads that did not parse
}

// fanoutState is what the receivers share with the publisher.
type fanoutState struct {
	epoch     time.Time // payload timestamps are nanoseconds since epoch
	pending   []atomic.Int32
	mask      int64
	notify    chan struct{}
	delivered atomic.Int64
	measure   atomic.Bool // record latencies of events published while set
	lat       histogram
}

func (st *fanoutState) receive(r *fanoutReceiver, args client.Args) {
	if len(args.Raw) == 0 {
		r.bad.Add(1)
		return
	}
	seq, ts, meas, ok := parsePayload(args.Raw[0])
	if !ok {
		r.bad.Add(1)
		return
	}
	st.record(r, seq, ts, meas)
}

// record counts event seq, published at ts, as delivered to r.
func (st *fanoutState) record(r *fanoutReceiver, seq, ts int64, meas bool) {
	now := time.Since(st.epoch)
	r.got.Add(1)
	if seq <= r.last.Load() {
		r.ooo.Add(1)
	} else {
		r.last.Store(seq)
	}
	st.delivered.Add(1)
	if meas {
		st.lat.Record(now - time.Duration(ts))
	}
	if st.pending[seq&st.mask].Add(-1) == 0 {
		select {
		case st.notify <- struct{}{}:
		default:
		}
	}
}

// appendPublish appends the publish argument: {"room":..,"payload":{"seq":
// ..,"ts":..,"m":0|1,"pad":".."}}.
func appendPublish(b []byte, room string, seq, ts int64, measured bool, pad string) []byte {
	b = append(b, `{"room":`...)
	b = strconv.AppendQuote(b, room)
	b = append(b, `,"payload":{"seq":`...)
	b = strconv.AppendInt(b, seq, 10)
	b = append(b, `,"ts":`...)
	b = strconv.AppendInt(b, ts, 10)
	if measured {
		b = append(b, `,"m":1,"pad":"`...)
	} else {
		b = append(b, `,"m":0,"pad":"`...)
	}
	b = append(b, pad...)
	b = append(b, `"}}`...)
	return b
}

// parsePayload reads seq, ts and m from a payload written by appendPublish
// (and possibly re-serialized by the server), falling back to encoding/json
// for any other layout.
func parsePayload(raw []byte) (seq, ts int64, measured, ok bool) {
	seq, ok1 := intField(raw, `"seq":`)
	ts, ok2 := intField(raw, `"ts":`)
	m, ok3 := intField(raw, `"m":`)
	if ok1 && ok2 && ok3 {
		return seq, ts, m == 1, true
	}
	var p struct {
		Seq *int64 `json:"seq"`
		TS  *int64 `json:"ts"`
		M   int    `json:"m"`
	}
	if json.Unmarshal(raw, &p) != nil || p.Seq == nil || p.TS == nil {
		return 0, 0, false, false
	}
	return *p.Seq, *p.TS, p.M == 1, true
}

func intField(raw []byte, key string) (int64, bool) {
	i := bytes.Index(raw, []byte(key))
	if i < 0 {
		return 0, false
	}
	rest := raw[i+len(key):]
	j := 0
	for j < len(rest) && (rest[j] >= '0' && rest[j] <= '9' || j == 0 && rest[j] == '-') {
		j++
	}
	v, err := strconv.ParseInt(string(rest[:j]), 10, 64)
	return v, err == nil
}

func (f *fanoutScenario) run(ctx context.Context, c *config) (*Result, error) {
	if f.n < 1 {
		return nil, errors.New("-n must be at least 1")
	}
	paced := f.rate > 0
	if f.window <= 0 {
		f.window = 64
		if paced {
			f.window = 4096
		}
	}
	ring := int64(1) << bits.Len64(uint64(f.window)) // > window
	st := &fanoutState{
		epoch:   time.Now(),
		pending: make([]atomic.Int32, ring),
		mask:    ring - 1,
		notify:  make(chan struct{}, 1),
	}
	res := &Result{Scenario: "fanout", Params: map[string]any{
		"n": f.n, "window": f.window, "size": f.size, "duration": c.duration.String(),
	}}
	if f.raw {
		res.Scenario = "tcp-fanout"
	}
	if paced {
		res.Scenario += "-paced"
		res.Params["rate"] = f.rate
	}

	recv := make([]fanoutReceiver, f.n)
	var dropped atomic.Int64
	link := f.link()
	defer link.close()
	if err := link.open(ctx, c, st, recv, &dropped); err != nil {
		return nil, err
	}

	var (
		seq      int64 // last seq published
		done     int64 // every seq <= done was delivered to every receiver
		stallErr error
	)
	// publish publishes events until the deadline, returning the first
	// error. Latency is recorded for events published while measuring.
	publish := func(until time.Time) error {
		interval := time.Duration(0)
		if paced {
			interval = time.Duration(float64(time.Second) / f.rate)
		}
		next := time.Now()
		for seq < f.maxEvt {
			now := time.Now()
			if !now.Before(until) {
				return nil
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			if paced && now.Before(next) {
				sleep(ctx, min(next.Sub(now), until.Sub(now)))
				continue
			}
			// Wait for room in the window.
			lastMove := time.Now()
			for {
				for done < seq && st.pending[(done+1)&st.mask].Load() <= 0 {
					done++
					lastMove = time.Now()
				}
				if seq-done < int64(f.window) {
					break
				}
				if time.Since(lastMove) > f.stall {
					return fmt.Errorf("no delivery for %v with %d events in flight (event %d not delivered to every receiver)", f.stall, seq-done, done+1)
				}
				t := time.NewTimer(100 * time.Millisecond)
				select {
				case <-st.notify:
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
					return ctx.Err()
				}
				t.Stop()
			}
			seq++
			st.pending[seq&st.mask].Store(int32(f.n))
			if err := link.publish(seq, int64(time.Since(st.epoch)), st.measure.Load()); err != nil {
				return err
			}
			if paced {
				next = next.Add(interval)
			}
		}
		return nil
	}

	if err := publish(time.Now().Add(c.warmup)); err != nil {
		return nil, err
	}
	before := st.delivered.Load()
	st.measure.Store(true)
	meter := startCPU(c.serverPID)
	if err := publish(time.Now().Add(c.duration)); err != nil {
		stallErr = err
	}
	cpu, wall, cpuErr := meter.stop()
	st.measure.Store(false)
	delivered := st.delivered.Load() - before

	// Drain: wait for every published event to reach every receiver.
	drainEnd := time.Now().Add(f.drain)
	for done < seq && time.Now().Before(drainEnd) && ctx.Err() == nil {
		for done < seq && st.pending[(done+1)&st.mask].Load() <= 0 {
			done++
		}
		if done < seq {
			sleep(ctx, 10*time.Millisecond)
		}
	}

	var got, ooo, bad, lost int64
	for i := range recv {
		r := &recv[i]
		got += r.got.Load()
		ooo += r.ooo.Load()
		bad += r.bad.Load()
		lost += max(seq-r.got.Load(), 0)
	}
	res.add("published", float64(seq), "events", "")
	res.add("deliveries", float64(delivered), "events", "")
	res.add("deliveries_per_s", perSecond(float64(delivered), wall), "events/s", "higher")
	if c.serverPID > 0 {
		res.add("server_cpu_s", cpu, "s", "")
		res.add("deliveries_per_cpu_s", perSecond(float64(delivered), cpu), "events/cpu-s", "higher")
		res.add("server_cpu_util", perSecond(cpu, wall), "cores", "")
	}
	meter.report(res, wall)
	if delivered > 0 && meter.selfCPUErr == nil {
		toolUS := meter.selfCPU / float64(delivered) * 1e6
		res.add("tool_cpu_per_delivery_us", toolUS, "µs", "")
		if c.serverPID > 0 {
			serverUS := cpu / float64(delivered) * 1e6
			res.add("server_cpu_per_delivery_us", serverUS, "µs", "")
			if paced && toolUS > serverUS {
				res.note("the load tool spends more CPU per delivery (%.1f µs) than the server (%.1f µs): the latency of an event's burst is mostly the tool's time to read it", toolUS, serverUS)
			}
		}
	}
	res.addLatency("latency", &st.lat)
	res.add("lost", float64(lost), "events", "lower")
	res.add("out_of_order", float64(ooo), "events", "lower")
	res.add("bad_payloads", float64(bad), "events", "lower")
	res.add("disconnects", float64(dropped.Load()), "sockets", "lower")
	if paced {
		res.add("publish_rate", perSecond(float64(seq), c.warmup.Seconds()+wall), "events/s", "")
	}
	return res, errors.Join(stallErr, cpuErr)
}

// fanoutLink is how a fan-out run reaches the server: the socket.io link
// (receivers in a room, a publisher emitting publish) or the raw-TCP floor's.
type fanoutLink interface {
	// open connects the receivers, each reporting its events to st for its
	// entry of recv (and counting itself in dropped if the server drops
	// it), then the publisher.
	open(ctx context.Context, c *config, st *fanoutState, recv []fanoutReceiver, dropped *atomic.Int64) error
	publish(seq, ts int64, measured bool) error
	// close disconnects everything open opened, even after a failed open.
	close()
}

func (f *fanoutScenario) link() fanoutLink {
	if f.raw {
		return &tcpFanoutLink{size: f.size}
	}
	return &socketFanoutLink{room: f.room, pad: strings.Repeat("x", f.size)}
}

// socketFanoutLink publishes through the benchserver contract: receivers
// join room, the publisher emits publish({room, payload}).
type socketFanoutLink struct {
	room  string
	pad   string
	c     *config
	socks []*client.Socket
	pub   *client.Socket
	buf   []byte
}

func (l *socketFanoutLink) open(ctx context.Context, c *config, st *fanoutState, recv []fanoutReceiver, dropped *atomic.Int64) error {
	l.c = c
	var err error
	l.socks, err = c.dialAll(ctx, len(recv), func(i int, s *client.Socket) error {
		r := &recv[i]
		s.On("msg", func(a client.Args) { st.receive(r, a) })
		s.On("disconnect", func(string) { dropped.Add(1) })
		return joinRoom(ctx, s, l.room)
	})
	if err != nil {
		return fmt.Errorf("opening receivers: %w", err)
	}
	if l.pub, err = c.dial(ctx); err != nil {
		return fmt.Errorf("opening the publisher: %w", err)
	}
	return nil
}

func (l *socketFanoutLink) publish(seq, ts int64, measured bool) error {
	l.buf = appendPublish(l.buf[:0], l.room, seq, ts, measured, l.pad)
	return l.pub.Emit("publish", json.RawMessage(l.buf))
}

func (l *socketFanoutLink) close() {
	if l.pub != nil {
		l.pub.Manager().Close()
	}
	if l.c != nil {
		l.c.closeAll(l.socks)
	}
}

// joinRoom emits join and waits for the acknowledgement.
func joinRoom(ctx context.Context, s *client.Socket, room string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	a, err := s.EmitWithAck(ctx, "join", room)
	if err != nil {
		return fmt.Errorf("join %q: %w", room, err)
	}
	if a.Len() > 0 && string(a.Raw[0]) != "null" {
		return fmt.Errorf("join %q: server answered %s", room, a)
	}
	return nil
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
