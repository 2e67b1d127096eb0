package bolt_test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/switchboard-io/switchboard"
	"github.com/switchboard-io/switchboard/bolt"
	bbolt "go.etcd.io/bbolt"
)

// diskFullEnv holds "limit path": the store file a child process of
// TestDiskFull fills, and the RLIMIT_FSIZE it sets.
const diskFullEnv = "SWITCHBOARD_BOLT_DISKFULL_CHILD"

// diskFullChild runs the child side of TestDiskFull when this process is
// one, and then exits: it opens the store, sets RLIMIT_FSIZE (with SIGXFSZ
// ignored, writes past it fail with EFBIG as on a full disk) and appends from 8 goroutines until every one
// gets an error. It prints "ACK room offset data" for every acknowledged
// event and "ERR message" for every failure.
func diskFullChild() bool {
	env := os.Getenv(diskFullEnv)
	if env == "" {
		return false
	}
	limitStr, path, _ := strings.Cut(env, " ")
	fail := func(err error) {
		fmt.Println("FATAL", err)
		os.Exit(2)
	}
	signal.Ignore(syscall.SIGXFSZ)
	s, err := bolt.Open(path, nil)
	if err != nil {
		fail(err)
	}
	limit, err := strconv.ParseUint(limitStr, 10, 64)
	if err != nil {
		fail(err)
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: limit, Max: limit}); err != nil {
		fail(err)
	}
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			room := fmt.Sprintf("room%d", w%4)
			for i := 0; ; i++ {
				data := fmt.Sprintf("w%d-%d-%s", w, i, strings.Repeat("x", 1000))
				off, err := s.Append(ctx, room, []switchboard.StoredEvent{{Data: []byte(data)}})
				mu.Lock()
				if err != nil {
					fmt.Fprintln(out, "ERR", strings.ReplaceAll(err.Error(), "\n", " "))
				} else {
					fmt.Fprintln(out, "ACK", room, off, data)
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	// The store keeps failing cleanly, and closes.
	if _, err := s.Append(ctx, "room0", []switchboard.StoredEvent{{Data: bytes.Repeat([]byte("y"), 300<<10)}}); err == nil {
		fmt.Fprintln(out, "FATAL append past the limit succeeded")
	}
	if err := s.Close(); err != nil {
		fmt.Fprintln(out, "CLOSE", err)
	}
	out.Flush()
	os.Exit(0)
	return true
}

// TestDiskFull fills the disk under a store in a child process, then checks
// in this one that every acknowledged event is there. "grow": the limit is
// past the file's end, so bbolt's resize of the file fails. "write": the
// limit is inside the space bbolt already allocated, so the page writes of
// the commit fail.
func TestDiskFull(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	t.Run("grow", func(t *testing.T) {
		testDiskFull(t, func(fileSize, used int64) int64 { return fileSize + 256<<10 })
	})
	t.Run("write", func(t *testing.T) {
		testDiskFull(t, func(fileSize, used int64) int64 {
			if fileSize-used < 128<<10 {
				t.Fatalf("file of %d bytes has only %d preallocated", fileSize, fileSize-used)
			}
			return used + 64<<10
		})
	})
}

// testDiskFull runs the child with the RLIMIT_FSIZE that limit returns for
// the file's size and the bytes bbolt uses of it.
func testDiskFull(t *testing.T, limit func(fileSize, used int64) int64) {
	path := filepath.Join(t.TempDir(), "store.db")
	// Some history before the child starts, leaving preallocated space.
	s, err := bolt.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	before := map[uint64]string{}
	for i := 1; i <= 300; i++ {
		d := fmt.Sprintf("before-%d-%s", i, strings.Repeat("b", 500))
		if _, err := s.Append(ctx, "room0", []switchboard.StoredEvent{{Data: []byte(d)}}); err != nil {
			t.Fatal(err)
		}
		before[uint64(i)] = d
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var used int64
	db.View(func(tx *bbolt.Tx) error { used = tx.Size(); return nil })
	db.Close()
	lim := limit(fi.Size(), used)
	t.Logf("file %d bytes, %d used; RLIMIT_FSIZE %d", fi.Size(), used, lim)

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d %s", diskFullEnv, lim, path))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v\nstdout tail: %s\nstderr: %s", err, tail(stdout), stderr.String())
	}
	acked := map[string]map[uint64]string{"room0": before}
	var errs []string
	for _, line := range strings.Split(strings.TrimSpace(string(stdout)), "\n") {
		kind, rest, _ := strings.Cut(line, " ")
		switch kind {
		case "ACK":
			f := strings.SplitN(rest, " ", 3)
			off, err := strconv.ParseUint(f[1], 10, 64)
			if err != nil || len(f) != 3 {
				t.Fatalf("bad line %q", line)
			}
			if acked[f[0]] == nil {
				acked[f[0]] = map[uint64]string{}
			}
			acked[f[0]][off] = f[2]
		case "ERR":
			errs = append(errs, rest)
		case "CLOSE":
			t.Logf("child's Close after the failures: %s", rest)
		default:
			t.Fatalf("child: %s", line)
		}
	}
	n := 0
	for _, m := range acked {
		n += len(m)
	}
	t.Logf("child: %d events acknowledged, then %d appends failed, e.g. %s", n, len(errs), errs[0])
	if n < 50 || len(errs) != 8 {
		t.Fatalf("child acknowledged %d events and saw %d errors; want many, then one per writer", n, len(errs))
	}
	if !strings.Contains(errs[0], "file too large") {
		t.Errorf("append error %q does not say the write failed (EFBIG)", errs[0])
	}

	// Every acknowledged event is there, the log has no holes, and the
	// failed appends left nothing behind.
	s, err = bolt.Open(path, nil)
	if err != nil {
		t.Fatalf("reopening after the disk filled: %v", err)
	}
	defer s.Close()
	for room, want := range acked {
		got, err := s.Read(ctx, room, 1, len(want)+10)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("room %s holds %d events, %d were acknowledged", room, len(got), len(want))
		}
		for i, e := range got {
			if e.Offset != uint64(i+1) || string(e.Data) != want[e.Offset] {
				t.Fatalf("room %s: event %d is offset %d %.20q, want offset %d %.20q", room, i, e.Offset, e.Data, i+1, want[uint64(i+1)])
			}
		}
	}
	// With room on the disk again, the store goes on.
	if off, err := s.Append(ctx, "room0", []switchboard.StoredEvent{{Data: []byte("after")}}); err != nil || off != uint64(len(acked["room0"])+1) {
		t.Fatalf("Append after the disk was freed = %d, %v", off, err)
	}
}

func tail(b []byte) []byte {
	if len(b) > 2000 {
		return b[len(b)-2000:]
	}
	return b
}
