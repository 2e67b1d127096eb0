package bolt_test

import (
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-io/switchboard"
	"github.com/switchboard-io/switchboard/bolt"
	"github.com/switchboard-io/switchboard/storetest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if diskFullChild() {
		return
	}
	goleak.VerifyTestMain(m)
}

// opener opens stores in temporary files and reopens them.
type opener struct {
	sync   bolt.SyncPolicy
	mu     sync.Mutex
	opened map[switchboard.Store]openArgs
}

type openArgs struct {
	path string
	ret  switchboard.Retention
}

func newOpener(p bolt.SyncPolicy) *opener {
	return &opener{sync: p, opened: make(map[switchboard.Store]openArgs)}
}

func (o *opener) openAt(tb testing.TB, a openArgs) switchboard.Store {
	tb.Helper()
	s, err := bolt.Open(a.path, &bolt.Options{Retention: &a.ret, Sync: o.sync})
	if err != nil {
		tb.Fatal(err)
	}
	o.mu.Lock()
	o.opened[s] = a
	o.mu.Unlock()
	return s
}

func (o *opener) open(tb testing.TB, r switchboard.Retention) switchboard.Store {
	return o.openAt(tb, openArgs{path: filepath.Join(tb.TempDir(), "store.db"), ret: r})
}

func (o *opener) reopen(tb testing.TB, s switchboard.Store) switchboard.Store {
	tb.Helper()
	o.mu.Lock()
	a, ok := o.opened[s]
	o.mu.Unlock()
	if !ok {
		tb.Fatal("reopen of a store this opener did not open")
	}
	if err := s.Close(); err != nil {
		tb.Fatalf("Close before reopening: %v", err)
	}
	s2 := o.openAt(tb, a)
	tb.Cleanup(func() { s2.Close() })
	return s2
}

func TestStore(t *testing.T) {
	o := newOpener(bolt.SyncAlways)
	storetest.Run(t, o.open, o.reopen)
}

func TestStoreSyncNone(t *testing.T) {
	o := newOpener(bolt.SyncNone)
	storetest.Run(t, o.open, o.reopen)
}

func TestStoreSyncBatch(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	o := newOpener(bolt.SyncBatch)
	storetest.Run(t, o.open, o.reopen)
}

func BenchmarkAppend(b *testing.B) { storetest.BenchAppend(b, newOpener(bolt.SyncAlways).open) }

func BenchmarkAppendSyncBatch(b *testing.B) {
	storetest.BenchAppend(b, newOpener(bolt.SyncBatch).open)
}

func BenchmarkAppendAsync(b *testing.B) {
	storetest.BenchAppendAsync(b, newOpener(bolt.SyncAlways).open)
}

func BenchmarkRead(b *testing.B) { storetest.BenchRead(b, newOpener(bolt.SyncAlways).open) }

// BenchmarkOpen measures Open of a store holding 200,000 events of 128
// bytes in 10 rooms: the full check of the file. It reports events/s.
func BenchmarkOpen(b *testing.B) {
	const rooms, perRoom = 10, 20_000
	path := filepath.Join(b.TempDir(), "store.db")
	ret := switchboard.Retention{}
	s, err := bolt.Open(path, &bolt.Options{Sync: bolt.SyncNone, Retention: &ret})
	if err != nil {
		b.Fatal(err)
	}
	batch := make([]switchboard.StoredEvent, 1000)
	for r := 0; r < rooms; r++ {
		for n := 0; n < perRoom; n += len(batch) {
			for i := range batch {
				batch[i] = switchboard.StoredEvent{Data: make([]byte, 128)}
			}
			if _, err := s.Append(ctx, fmt.Sprintf("room-%d", r), batch); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		s, err := bolt.Open(path, nil)
		if err != nil {
			b.Fatal(err)
		}
		s.Close()
	}
	b.ReportMetric(float64(rooms*perRoom*b.N)/time.Since(start).Seconds(), "events/s")
}
