package bolt_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/switchboard-io/switchboard"
	"github.com/switchboard-io/switchboard/bolt"
)

var ctx = context.Background()

// original is what a store held when it was closed.
type original struct {
	data  map[string]map[uint64]string // room → offset → data
	infos map[string]switchboard.LogInfo
}

func payload(room string, off uint64) string {
	return fmt.Sprintf("payload-%s-%06d-", room, off) + strings.Repeat(room, 40)
}

// writeStore fills a store at path with rooms of various sizes (one event
// large enough for overflow pages), trims some by count, sets cursors and
// closes it.
func writeStore(t *testing.T, path string) original {
	t.Helper()
	ret := switchboard.Retention{MaxEvents: 150}
	s, err := bolt.Open(path, &bolt.Options{Retention: &ret})
	if err != nil {
		t.Fatal(err)
	}
	o := original{data: map[string]map[uint64]string{}, infos: map[string]switchboard.LogInfo{}}
	for room, n := range map[string]int{"a": 200, "b": 40, "c": 3} {
		o.data[room] = map[uint64]string{}
		for i := 0; i < n; i += 10 {
			var batch []switchboard.StoredEvent
			for j := i; j < min(i+10, n); j++ {
				d := payload(room, uint64(j+1))
				if room == "c" {
					d += strings.Repeat("x", 9000) // overflow pages
				}
				batch = append(batch, switchboard.StoredEvent{Data: []byte(d)})
			}
			first, err := s.Append(ctx, room, batch)
			if err != nil {
				t.Fatal(err)
			}
			for j, e := range batch {
				o.data[room][first+uint64(j)] = string(e.Data)
			}
		}
		info, _, err := s.Info(ctx, room)
		if err != nil {
			t.Fatal(err)
		}
		o.infos[room] = info
	}
	for _, sub := range []string{"u1", "u2"} {
		if err := s.SetCursor(ctx, "a", sub, 120, []uint64{125}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return o
}

// logBuffer collects what a store logs.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// openDamaged opens the damaged file at path. Either Open refuses it with
// an error naming the file, or every room holds a verified prefix of what
// was written: each event it serves is the original, offsets are
// contiguous, and a room that lost events has a new epoch. It reports
// whether the file was refused.
func openDamaged(t *testing.T, path string, o original, what string) (refused bool, logged string) {
	t.Helper()
	var lb logBuffer
	s, err := bolt.Open(path, &bolt.Options{Logger: slog.New(slog.NewTextHandler(&lb, nil))})
	if err != nil {
		if !strings.Contains(err.Error(), path) {
			t.Fatalf("%s: Open error does not name the file: %v", what, err)
		}
		return true, lb.String()
	}
	defer func() {
		if err := s.Close(); err != nil {
			t.Errorf("%s: Close: %v", what, err)
		}
	}()
	for room, want := range o.data {
		info, ok, err := s.Info(ctx, room)
		if err != nil {
			t.Fatalf("%s: opened, then Info(%q): %v", what, room, err)
		}
		orig := o.infos[room]
		if !ok {
			if len(lb.String()) == 0 {
				t.Fatalf("%s: room %q lost without a warning", what, room)
			}
			continue
		}
		got, err := s.Read(ctx, room, 0, 1000)
		if err != nil {
			t.Fatalf("%s: opened, then Read(%q): %v", what, room, err)
		}
		for i, e := range got {
			if e.Offset != info.First+uint64(i) {
				t.Fatalf("%s: room %q: offset %d at position %d, log starts at %d", what, room, e.Offset, i, info.First)
			}
			if string(e.Data) != want[e.Offset] {
				t.Fatalf("%s: room %q offset %d served damaged data %.40q", what, room, e.Offset, e.Data)
			}
		}
		if len(got) != info.Count || (len(got) > 0 && got[len(got)-1].Offset != info.Last) {
			t.Fatalf("%s: room %q: read %d events, Info %+v", what, room, len(got), info)
		}
		if info != orig {
			if info.Epoch == orig.Epoch {
				t.Fatalf("%s: room %q changed from %+v to %+v in the same epoch", what, room, orig, info)
			}
			if !strings.Contains(lb.String(), "level=WARN") {
				t.Fatalf("%s: room %q changed without a warning", what, room)
			}
		}
	}
	return false, lb.String()
}

func copyFile(t *testing.T, src, dst string) []byte {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestOpenTruncated(t *testing.T) {
	dir := t.TempDir()
	pristine := filepath.Join(dir, "pristine.db")
	o := writeStore(t, pristine)
	fi, err := os.Stat(pristine)
	if err != nil {
		t.Fatal(err)
	}
	size := fi.Size()
	damaged := filepath.Join(dir, "damaged.db")
	sizes := []int64{0, 1, 100, 4095, 4096, 8192, 3 * 4096, 5*4096 + 17, size / 2, size - 4096, size - 1}
	for n := int64(4096 * 6); n < size; n += 4096 * 3 {
		sizes = append(sizes, n)
	}
	refusedAll := true
	for _, n := range sizes {
		if n < 0 || n >= size {
			continue
		}
		copyFile(t, pristine, damaged)
		if err := os.Truncate(damaged, n); err != nil {
			t.Fatal(err)
		}
		refused, _ := openDamaged(t, damaged, o, fmt.Sprintf("truncated to %d of %d bytes", n, size))
		refusedAll = refusedAll && refused
	}
	if !refusedAll {
		t.Log("some truncations left the file usable (they cut preallocated space)")
	}

	// The error says what is wrong.
	copyFile(t, pristine, damaged)
	if err := os.Truncate(damaged, size/2); err != nil {
		t.Fatal(err)
	}
	_, err = bolt.Open(damaged, nil)
	if !errors.Is(err, switchboard.ErrCorrupt) || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("Open of a file cut in half: %v; want ErrCorrupt saying it is truncated", err)
	}
	t.Log(err)
	if err := os.Truncate(damaged, 0); err != nil {
		t.Fatal(err)
	}
	_, err = bolt.Open(damaged, nil)
	if !errors.Is(err, switchboard.ErrCorrupt) || !strings.Contains(err.Error(), "empty") {
		t.Fatalf("Open of an emptied file: %v; want ErrCorrupt saying it is empty", err)
	}
	// A refused file is left as it was.
	if fi, err := os.Stat(damaged); err != nil || fi.Size() != 0 {
		t.Fatalf("refused file changed: %v, %v", fi, err)
	}
}

func TestOpenBitFlips(t *testing.T) {
	dir := t.TempDir()
	pristine := filepath.Join(dir, "pristine.db")
	o := writeStore(t, pristine)
	orig, err := os.ReadFile(pristine)
	if err != nil {
		t.Fatal(err)
	}
	damaged := filepath.Join(dir, "damaged.db")
	step := max(len(orig)/700, 1)
	if testing.Short() {
		step *= 5
	}
	refused, recovered := 0, 0
	for pos := 0; pos < len(orig); pos += step {
		b := bytes.Clone(orig)
		bit := byte(1) << (pos % 8)
		b[pos] ^= bit
		if err := os.WriteFile(damaged, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if r, _ := openDamaged(t, damaged, o, fmt.Sprintf("bit %#x flipped at byte %d", bit, pos)); r {
			refused++
		} else {
			recovered++
		}
	}
	t.Logf("%d bit flips refused, %d opened with intact data (flips in unused bytes)", refused, recovered)
	if refused == 0 {
		t.Fatal("no bit flip was detected")
	}
}

func TestOpenFlippedRecordNamesRoomAndOffset(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "store.db")
	writeStore(t, path)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b, []byte(payload("a", 123)))
	if i < 0 {
		t.Fatal("record not found in the file")
	}
	b[i+30] ^= 0x10
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = bolt.Open(path, nil)
	if !errors.Is(err, switchboard.ErrCorrupt) {
		t.Fatalf("Open = %v, want ErrCorrupt", err)
	}
	for _, want := range []string{path, `room "a"`, "offset 123", "checksum"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("Open error %q does not say %q", err, want)
		}
	}
}

// A record damaged while the store is open is never served.
func TestReadDetectsDamage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	s, err := bolt.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var batch []switchboard.StoredEvent
	for i := 1; i <= 20; i++ {
		batch = append(batch, switchboard.StoredEvent{Data: []byte(payload("r", uint64(i)))})
	}
	if _, err := s.Append(ctx, "r", batch); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b, []byte(payload("r", 7)))
	if i < 0 {
		t.Fatal("record not found in the file")
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{b[i+20] ^ 1}, int64(i+20)); err != nil {
		t.Fatal(err)
	}
	f.Close()

	got, err := s.Read(ctx, "r", 1, 5)
	if err != nil || len(got) != 5 {
		t.Fatalf("Read before the damaged record = %d events, %v", len(got), err)
	}
	got, err = s.Read(ctx, "r", 1, 100)
	if !errors.Is(err, switchboard.ErrCorrupt) || got != nil {
		t.Fatalf("Read over a damaged record = %d events, %v; want ErrCorrupt and nothing", len(got), err)
	}
	for _, want := range []string{path, `room "r"`, "offset 7"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("Read error %q does not say %q", err, want)
		}
	}
	if _, err := s.Read(ctx, "r", 8, 100); err != nil {
		t.Fatalf("Read after the damaged record: %v", err)
	}
}

// A damaged meta page makes bbolt use the previous commit: the store opens
// with a warning and every room gets a new epoch.
func TestOpenDamagedMetaPage(t *testing.T) {
	dir := t.TempDir()
	pristine := filepath.Join(dir, "pristine.db")
	o := writeStore(t, pristine)
	damaged := filepath.Join(dir, "damaged.db")
	for page := 0; page < 2; page++ {
		b := copyFile(t, pristine, damaged)
		b[4096*page+16+50] ^= 0x04 // in the txid
		if err := os.WriteFile(damaged, b, 0o600); err != nil {
			t.Fatal(err)
		}
		refused, logged := openDamaged(t, damaged, o, fmt.Sprintf("meta page %d damaged", page))
		if refused {
			t.Fatalf("meta page %d damaged: refused, want recovery from the other one", page)
		}
		if !strings.Contains(logged, "level=WARN") || !strings.Contains(logged, fmt.Sprintf("meta page %d is damaged", page)) {
			t.Fatalf("meta page %d damaged: logged %q, want a warning naming it", page, logged)
		}
		s, err := bolt.Open(damaged, nil)
		if err != nil {
			t.Fatal(err)
		}
		for room, orig := range o.infos {
			if info, _, _ := s.Info(ctx, room); info.Epoch == orig.Epoch {
				t.Fatalf("room %q kept epoch %q after a meta page was lost", room, orig.Epoch)
			}
		}
		s.Close()
	}
	// Both damaged: refused.
	b := copyFile(t, pristine, damaged)
	b[16+50] ^= 0x04
	b[4096+16+50] ^= 0x04
	if err := os.WriteFile(damaged, b, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := bolt.Open(damaged, nil)
	if !errors.Is(err, switchboard.ErrCorrupt) || !strings.Contains(err.Error(), "meta pages") {
		t.Fatalf("Open with both meta pages damaged: %v", err)
	}
}

func TestOpenNotAStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "junk.db")
	if err := os.WriteFile(path, bytes.Repeat([]byte("junk"), 4096), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := bolt.Open(path, nil); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("Open of a junk file: %v", err)
	}
}
