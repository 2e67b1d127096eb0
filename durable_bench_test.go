package switchboard_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-io/switchboard"
	"github.com/switchboard-io/switchboard/bolt"
	"github.com/switchboard-io/switchboard/client"
)

// BenchmarkDurablePublish measures Namespace.Publish on the bolt store with
// its default fsync-per-confirm policy: concurrent publishers share commits
// (group commit).
func BenchmarkDurablePublish(b *testing.B) {
	for _, publishers := range []int{1, 16} {
		b.Run(fmt.Sprintf("publishers=%d", publishers), func(b *testing.B) {
			store, err := bolt.Open(filepath.Join(b.TempDir(), "bench.db"), nil)
			if err != nil {
				b.Fatal(err)
			}
			defer store.Close()
			srv := switchboard.NewServer(&switchboard.Options{Store: store})
			defer closeServer(b, srv)
			ns := srv.Of("/")
			payload := map[string]any{"user": "ann", "text": "hello world"}
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			for p := 0; p < publishers; p++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						if _, err := ns.Publish(context.Background(), "room", "chat", payload); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkDurableReplay measures how fast a returning subscriber receives
// (and acknowledges) a backlog of b.N events over a websocket, from the bolt
// store.
func BenchmarkDurableReplay(b *testing.B) {
	store, err := bolt.Open(filepath.Join(b.TempDir(), "bench.db"), &bolt.Options{Sync: bolt.SyncNone})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	srv := switchboard.NewServer(&switchboard.Options{
		Store:    store,
		Identity: authIdentity,
		Durable:  switchboard.DurableOptions{MaxInflight: 1000},
	})
	srv.OnConnection(func(s *switchboard.Socket) {
		s.On("sub", func(room string, ack switchboard.AckFunc) { ack(s.JoinDurable(context.Background(), room) == nil) })
	})
	hs := httptest.NewServer(srv)
	defer hs.Close()
	defer closeServer(b, srv)
	opts := &client.Options{Transports: []string{"websocket"}, Auth: map[string]string{"id": "replayer"}}

	ctx := context.Background()
	sub, err := client.Dial(ctx, hs.URL+"/", opts)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := sub.EmitWithAck(ctx, "sub", "backlog"); err != nil {
		b.Fatal(err)
	}
	sub.Manager().Close()
	for i := 0; i < b.N; i++ {
		if _, err := srv.Of("/").Publish(ctx, "backlog", "m", i); err != nil {
			b.Fatal(err)
		}
	}

	done := make(chan struct{})
	var got atomic.Int64
	m := client.NewManager(hs.URL, opts)
	defer m.Close()
	s := m.Socket("/")
	s.On("m", func(v int, meta switchboard.DeliveryMeta, ack client.AckFunc) {
		ack()
		if got.Add(1) == int64(b.N) {
			close(done)
		}
	})
	b.ResetTimer()
	s.Connect()
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		b.Fatalf("replayed %d of %d", got.Load(), b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
