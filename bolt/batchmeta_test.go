package bolt_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/switchboard-io/switchboard"
	"github.com/switchboard-io/switchboard/bolt"
)

// Appends queued together share their room's meta within a commit; a
// cursor write queued between them, retention trimming inside the batch,
// and a reopen must all see the same room as appends one at a time would.
func TestBatchedAppendsKeepRoomMeta(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	ret := switchboard.Retention{MaxEvents: 300}
	s, err := bolt.Open(path, &bolt.Options{Retention: &ret, Sync: bolt.SyncNone})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const n = 500
	var wg sync.WaitGroup
	offsets := make([]uint64, 2*n)
	errs := make(chan error, 2*n+1)
	queue := func(from int) {
		for i := from; i < from+n; i++ {
			wg.Add(1)
			ev := []switchboard.StoredEvent{{Data: fmt.Appendf(nil, `"e%d"`, i)}}
			s.AppendAsync(ctx, "a", ev, func(first uint64, err error) {
				offsets[i] = first
				if err != nil {
					errs <- err
				}
				wg.Done()
			})
		}
	}
	queue(0)
	wg.Add(1)
	go func() { // a different kind of op in the middle of the appends
		defer wg.Done()
		if err := s.SetCursor(ctx, "a", "sub", 10, nil); err != nil {
			errs <- err
		}
	}()
	queue(n)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i, o := range offsets {
		if o != uint64(i+1) {
			t.Fatalf("event %d got offset %d, want %d", i, o, i+1)
		}
	}
	check := func(s *bolt.Store, when string) {
		info, ok, err := s.Info(ctx, "a")
		if err != nil || !ok || info.First != 2*n-299 || info.Last != 2*n {
			t.Fatalf("%s: Info = %+v, %v, %v; want first %d, last %d", when, info, ok, err, 2*n-299, 2*n)
		}
		evs, err := s.Read(ctx, "a", 1, 2*n)
		if err != nil || len(evs) != 300 || evs[0].Offset != 2*n-299 || string(evs[299].Data) != fmt.Sprintf(`"e%d"`, 2*n-1) {
			t.Fatalf("%s: Read = %d events, %v", when, len(evs), err)
		}
	}
	check(s, "open")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = bolt.Open(path, &bolt.Options{Retention: &ret, Sync: bolt.SyncNone})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	check(s, "reopened")
	if _, err := s.Append(ctx, "a", []switchboard.StoredEvent{{Data: []byte(`"last"`)}}); err != nil {
		t.Fatal(err)
	}
	if info, _, _ := s.Info(ctx, "a"); info.Last != 2*n+1 {
		t.Fatalf("after one more append Last = %d, want %d", info.Last, 2*n+1)
	}
}
