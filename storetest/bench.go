package storetest

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-io/switchboard"
)

// BenchEventSize is the size of the events the benchmarks store.
const BenchEventSize = 128

// BenchAppend measures Append of one event per call by 1, 16 and 256
// concurrent publishers, each publishing to its own room ("rooms") or all to
// one room ("room"), and by 16 publishers appending 10 events per call. It
// reports events/s.
func BenchAppend(b *testing.B, open OpenFunc) {
	for _, pubs := range []int{1, 16, 256} {
		b.Run(fmt.Sprintf("publishers=%d/rooms", pubs), func(b *testing.B) { benchAppend(b, open, pubs, false, 1) })
		if pubs == 16 {
			b.Run(fmt.Sprintf("publishers=%d/room", pubs), func(b *testing.B) { benchAppend(b, open, pubs, true, 1) })
		}
	}
	// Publishers that send batches of 10 events per Append.
	b.Run("publishers=16/rooms/batch=10", func(b *testing.B) { benchAppend(b, open, 16, false, 10) })
}

func benchAppend(b *testing.B, open OpenFunc, pubs int, oneRoom bool, batch int) {
	s := open(b, switchboard.Retention{})
	defer s.Close()
	data := make([]byte, BenchEventSize)
	var next atomic.Int64
	var wg sync.WaitGroup
	b.SetBytes(int64(BenchEventSize))
	b.ResetTimer()
	start := time.Now()
	for p := 0; p < pubs; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			room := fmt.Sprintf("room-%d", p)
			if oneRoom {
				room = "room"
			}
			events := make([]switchboard.StoredEvent, batch)
			for {
				n := next.Add(int64(batch))
				if n-int64(batch) >= int64(b.N) {
					return
				}
				for i := range events {
					events[i] = switchboard.StoredEvent{Data: data}
				}
				if _, err := s.Append(ctx, room, events); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
}

// BenchAppendAsync measures AppendAsync (the store must implement
// switchboard.AsyncAppender) of one event per call from one goroutine with
// 256 and 4,096 appends waiting for their confirm (PublishAsync's pattern:
// one connection pipelining). It reports events/s.
func BenchAppendAsync(b *testing.B, open OpenFunc) {
	for _, inflight := range []int{256, 4096} {
		b.Run(fmt.Sprintf("inflight=%d", inflight), func(b *testing.B) {
			s := open(b, switchboard.Retention{})
			defer s.Close()
			async, ok := s.(switchboard.AsyncAppender)
			if !ok {
				b.Skip("the store does not implement switchboard.AsyncAppender")
			}
			data := make([]byte, BenchEventSize)
			slots := make(chan struct{}, inflight)
			var wg sync.WaitGroup
			var failed atomic.Int64
			b.SetBytes(int64(BenchEventSize))
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				slots <- struct{}{}
				wg.Add(1)
				async.AppendAsync(ctx, "room", []switchboard.StoredEvent{{Data: data}}, func(_ uint64, err error) {
					if err != nil {
						failed.Add(1)
					}
					<-slots
					wg.Done()
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			if n := failed.Load(); n > 0 {
				b.Fatalf("%d appends failed", n)
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
		})
	}
}

// BenchRead measures replay: Read of a room of 100,000 events in pages of
// 1,000 from the start. It reports events/s.
func BenchRead(b *testing.B, open OpenFunc) {
	const total, page = 100_000, 1000
	s := open(b, switchboard.Retention{})
	defer s.Close()
	data := make([]byte, BenchEventSize)
	events := make([]switchboard.StoredEvent, 1000)
	for n := 0; n < total; n += len(events) {
		for i := range events {
			events[i] = switchboard.StoredEvent{Data: data}
		}
		if _, err := s.Append(ctx, "replay", events); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(BenchEventSize))
	b.ResetTimer()
	start := time.Now()
	from := uint64(1)
	for read := 0; read < b.N; {
		got, err := s.Read(ctx, "replay", from, min(page, b.N-read))
		if err != nil {
			b.Fatal(err)
		}
		if len(got) == 0 {
			from = 1
			continue
		}
		read += len(got)
		from = got[len(got)-1].Offset + 1
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
}
