package redis_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/switchboard-io/switchboard"
	"github.com/switchboard-io/switchboard/redis"
)

// childNodeEnv, when set (to JSON childNodeConfig), makes the test binary
// run one cluster node instead of the tests.
const childNodeEnv = "SWITCHBOARD_REDIS_CHILD_NODE"

type childNodeConfig struct {
	Addr     string
	Adapter  redis.Options
	Prefix   string
	Recovery bool // connection-state recovery on
}

// runChildNode serves a node with the Redis adapter and store until
// killed, printing "listening <url>" once ready.
func runChildNode() {
	var cfg childNodeConfig
	if err := json.Unmarshal([]byte(os.Getenv(childNodeEnv)), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "child node:", err)
		os.Exit(2)
	}
	c := goredis.NewClient(&goredis.Options{Addr: cfg.Addr})
	store := redis.NewStore(c, &redis.StoreOptions{Prefix: cfg.Prefix})
	opts := &switchboard.Options{
		Adapter:  redis.NewAdapter(c, &cfg.Adapter),
		Store:    store,
		Identity: authIdentity,
	}
	if cfg.Recovery {
		opts.ConnectionStateRecovery = &switchboard.RecoveryOptions{}
	}
	srv := switchboard.NewServer(opts)
	srv.OnConnection(func(s *switchboard.Socket) {
		s.On("join", func(rooms []string, ack switchboard.AckFunc) {
			if err := s.Join(rooms...); err != nil {
				ack(err.Error())
				return
			}
			ack("ok")
		})
		s.On("setData", func(v any, ack switchboard.AckFunc) { s.SetData(v); ack("ok") })
		s.On("sub", func(room string, ack switchboard.AckFunc) {
			if err := s.JoinDurable(context.Background(), room); err != nil {
				ack(err.Error())
				return
			}
			ack("ok")
		})
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "child node:", err)
		os.Exit(2)
	}
	fmt.Printf("listening http://%s\n", l.Addr())
	_ = http.Serve(l, srv)
	os.Exit(0)
}

// startChildNode runs a node in a child process (the test binary again).
func startChildNode(t *testing.T, cfg childNodeConfig) (*exec.Cmd, string) {
	t.Helper()
	b, _ := json.Marshal(cfg)
	cmd := exec.Command(os.Args[0], "-test.run", "^$")
	cmd.Env = append(os.Environ(), childNodeEnv+"="+string(b))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			line <- sc.Text()
		}
		close(line)
		_, _ = bufio.NewReader(out).WriteTo(discard{})
	}()
	select {
	case l := <-line:
		url, ok := strings.CutPrefix(l, "listening ")
		if !ok {
			t.Fatalf("child node said %q", l)
		}
		return cmd, url
	case <-time.After(waitLimit):
		t.Fatal("child node did not start")
	}
	return nil, ""
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// TestDurableNodeKilled: a durable subscriber reads on node C, a separate
// process, while node A publishes 3,000 events; C is SIGKILLed midway and
// the subscriber reconnects to node B. Publishing on A never fails, and
// every published event reaches the subscriber, in order on each
// connection; events C delivered whose acknowledgement it had not saved
// come again from B (counted and logged).
func TestDurableNodeKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	c := sharedRedis(t)
	aopts := isolated(t, c)
	prefix := "sbtest:" + runID + ":killed"
	deleteKeysAtEnd(t, c, prefix)
	sopts := &redis.StoreOptions{Prefix: prefix}
	nodeA := startDurableNode(t, c, aopts, sopts, switchboard.DurableOptions{}, nil)
	nodeB := startDurableNode(t, c, aopts, sopts, switchboard.DurableOptions{}, nil)
	child, urlC := startChildNode(t, childNodeConfig{Addr: redisAddr(), Adapter: *aopts, Prefix: prefix})

	first := connectDurableSub(t, urlC, "dave", "feed", 0)
	const total = 3000
	var (
		mu        sync.Mutex
		published = make(map[uint64]int) // offset → value
		pubErrs   int
		progress  = make(chan int, total)
		done      = make(chan struct{})
	)
	go func() {
		defer close(done)
		for i := range total {
			off, err := nodeA.srv.Of("/").Publish(context.Background(), "feed", "m", i)
			mu.Lock()
			if err != nil {
				pubErrs++
			} else {
				published[off] = i
			}
			mu.Unlock()
			progress <- i
			if i%10 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	}()
	first.waitCount(total / 3)
	_ = child.Process.Signal(syscall.SIGKILL)
	_ = child.Wait()
	killedAt := time.Now()
	second := connectDurableSub(t, nodeB.url, "dave", "feed", 0)
	<-done
	mu.Lock()
	if pubErrs != 0 {
		t.Errorf("%d publishes on node A failed while node C died", pubErrs)
	}
	n := len(published)
	mu.Unlock()
	offs2, _ := second.waitCount(1)
	resumeFrom := offs2[0]
	// Everything from where B resumed arrives on B.
	deadline := time.Now().Add(waitLimit)
	var offs []uint64
	var vals []int
	for {
		second.mu.Lock()
		offs, vals = slices.Clone(second.offsets), slices.Clone(second.values)
		second.mu.Unlock()
		if len(offs) > 0 && offs[len(offs)-1] >= uint64(n) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node B delivered up to %v of %d", offs[len(offs)-1], n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for i, o := range offs {
		if o != resumeFrom+uint64(i) || vals[i] != published[o] {
			t.Fatalf("delivery %d on node B = offset %d value %d, want offset %d value %d", i, o, vals[i], resumeFrom+uint64(i), published[resumeFrom+uint64(i)])
		}
	}
	first.mu.Lock()
	offs1 := slices.Clone(first.offsets)
	first.mu.Unlock()
	for i, o := range offs1 {
		if o != uint64(i+1) {
			t.Fatalf("delivery %d on node C = offset %d, want %d", i, o, i+1)
		}
	}
	if resumeFrom > uint64(len(offs1))+1 {
		t.Fatalf("node C delivered offsets 1..%d, node B resumed at %d: offsets lost", len(offs1), resumeFrom)
	}
	t.Logf("%d published; node C delivered 1..%d before SIGKILL, node B resumed at %d (%d delivered twice), all delivered %v after the kill",
		n, len(offs1), resumeFrom, uint64(len(offs1))+1-resumeFrom, time.Since(killedAt).Round(time.Millisecond))
}
