package switchboard_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-io/switchboard"
)

// BenchmarkBroadcastRoom measures the server's cost of one broadcast to a
// room of N sockets: selecting the members, encoding once, and queuing the
// frame on every connection. The sockets are long-polling sessions created
// in-process, so no network write is counted (the load tool measures the
// network, cmd/switchboard-bench). Their queues are drained between rounds
// with the timer stopped.
func BenchmarkBroadcastRoom(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			srv, sids := pollingSockets(b, n)
			payload := map[string]any{"user": "ann", "text": "hello world", "ts": 1700000000}
			const round = 64 // broadcasts between drains
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := srv.To("room").Emit("chat", payload); err != nil {
					b.Fatal(err)
				}
				if i%round == round-1 {
					b.StopTimer()
					drain(b, srv, sids)
					b.StartTimer()
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/delivery")
			closeServer(b, srv)
		})
	}
}

// pollingSockets connects n polling sessions to "/" and puts them in "room".
func pollingSockets(b *testing.B, n int) (*switchboard.Server, []string) {
	b.Helper()
	opts := &switchboard.Options{}
	opts.Engine.MaxBufferedBytes = 64 << 20
	opts.Engine.PingInterval = time.Hour // no pings during the benchmark
	srv := switchboard.NewServer(opts)
	srv.OnConnection(func(s *switchboard.Socket) { _ = s.Join("room") })
	sids := make([]string, n)
	for i := range sids {
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, httptest.NewRequest("GET", "/socket.io/?EIO=4&transport=polling", nil))
		var open struct{ SID string }
		if err := json.Unmarshal(rec.Body.Bytes()[1:], &open); err != nil {
			b.Fatalf("handshake: %q", rec.Body.String())
		}
		sids[i] = open.SID
		rec = httptest.NewRecorder()
		srv.ServeHTTP(rec, httptest.NewRequest("POST", "/socket.io/?EIO=4&transport=polling&sid="+open.SID, strings.NewReader("40")))
		if rec.Code != http.StatusOK {
			b.Fatalf("CONNECT: %d %s", rec.Code, rec.Body.String())
		}
	}
	deadline := time.Now().Add(time.Minute)
	for len(srv.Of("/").Adapter().Sockets([]string{"room"})) < n {
		if time.Now().After(deadline) {
			b.Fatal("sockets did not all join")
		}
		time.Sleep(time.Millisecond)
	}
	drain(b, srv, sids)
	return srv, sids
}

// drain answers one long-poll per session: everything queued comes back.
func drain(b *testing.B, srv *switchboard.Server, sids []string) {
	for _, sid := range sids {
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, httptest.NewRequest("GET", "/socket.io/?EIO=4&transport=polling&sid="+sid, nil))
		if rec.Code != http.StatusOK {
			b.Fatalf("drain %s: %d", sid, rec.Code)
		}
	}
}

func closeServer(b *testing.B, srv *switchboard.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Close(ctx); err != nil {
		b.Fatal(err)
	}
}
