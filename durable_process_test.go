package switchboard_test

import (
	"bufio"
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard-io/switchboard"
	"github.com/switchboard-io/switchboard/client"
)

// These tests run examples/durableserver as a real process on a bolt store
// and kill it with SIGKILL: what was acknowledged must survive.

var (
	buildOnce   sync.Once
	builtServer string
	buildErr    error
)

// durableServerBinary builds examples/durableserver once per test run.
func durableServerBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "switchboard-durableserver-")
		if err != nil {
			buildErr = err
			return
		}
		builtServer = filepath.Join(dir, "durableserver")
		out, err := exec.Command("go", "build", "-race", "-o", builtServer, "./examples/durableserver").CombinedOutput()
		if err != nil {
			buildErr = err
			builtServer = string(out)
		}
	})
	if buildErr != nil {
		t.Fatalf("building examples/durableserver: %v\n%s", buildErr, builtServer)
	}
	return builtServer
}

// serverProcess is a running durableserver.
type serverProcess struct {
	cmd *exec.Cmd
	URL string
}

func startServerProcess(t *testing.T, dataDir string, args ...string) *serverProcess {
	t.Helper()
	cmd := exec.Command(durableServerBinary(t), append([]string{"--listen", "127.0.0.1:0", "--data-dir", dataDir}, args...)...)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &serverProcess{cmd: cmd}
	t.Cleanup(func() { p.kill() })
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			line <- sc.Text()
		}
		close(line)
	}()
	select {
	case l := <-line:
		url, ok := strings.CutPrefix(l, "listening ")
		if !ok {
			t.Fatalf("durableserver printed %q", l)
		}
		p.URL = url
	case <-time.After(30 * time.Second):
		t.Fatal("durableserver did not start")
	}
	return p
}

// kill ends the process with SIGKILL: no shutdown code runs.
func (p *serverProcess) kill() {
	if p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	_ = p.cmd.Wait()
}

// goPeer connects a Go client with an identity, without reconnection.
func goPeer(t *testing.T, url, identity string) *client.Socket {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitBound)
	defer cancel()
	s, err := client.Dial(ctx, url+"/", &client.Options{Transports: []string{"websocket"}, Auth: map[string]string{"id": identity}, DisableReconnection: true})
	if err != nil {
		t.Fatalf("dial %s as %s: %v", url, identity, err)
	}
	t.Cleanup(func() { s.Manager().Close() })
	return s
}

type ackAnswer struct {
	OK     bool     `json:"ok"`
	Error  string   `json:"error"`
	Offset uint64   `json:"offset"`
	Cursor uint64   `json:"cursor"`
	Acked  []uint64 `json:"acked"`
}

func call(ctx context.Context, s *client.Socket, event string, args ...any) (ackAnswer, error) {
	res, err := s.EmitWithAck(ctx, event, args...)
	if err != nil {
		return ackAnswer{}, err
	}
	var a ackAnswer
	err = res.Decode(0, &a)
	return a, err
}

func mustCall(t *testing.T, s *client.Socket, event string, args ...any) ackAnswer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitBound)
	defer cancel()
	a, err := call(ctx, s, event, args...)
	if err != nil || !a.OK {
		t.Fatalf("%s%v: %+v %v", event, args, a, err)
	}
	return a
}

func TestDurableSurvivesSIGKILL(t *testing.T) {
	requireNode(t)
	dir := t.TempDir()
	srv := startServerProcess(t, dir)
	startSubscriber(t, srv.URL, "alice", "news", "all").stop()

	pub := goPeer(t, srv.URL, "publisher")
	for i := 0; i < 1000; i++ {
		if a := mustCall(t, pub, "pub", "news", i); a.Offset != uint64(i+1) {
			t.Fatalf("publish %d confirmed offset %d", i, a.Offset)
		}
	}
	srv.kill()

	srv = startServerProcess(t, dir)
	sub := startSubscriber(t, srv.URL, "alice", "news", "all")
	offs, vals := sub.events(t, 1000)
	for i := range offs {
		if offs[i] != uint64(i+1) || vals[i] != float64(i) {
			t.Fatalf("event %d after restart: offset %d value %v", i, offs[i], vals[i])
		}
	}
	// The acknowledgements are stored before the next connection starts.
	probe := goPeer(t, srv.URL, "alice")
	deadline := time.Now().Add(waitBound)
	for mustCall(t, probe, "position", "news").Cursor != 1000 {
		if time.Now().After(deadline) {
			t.Fatal("alice's cursor never reached 1000")
		}
		time.Sleep(20 * time.Millisecond)
	}
	probe.Manager().Close()
	sub.stop()

	again := startSubscriber(t, srv.URL, "alice", "news", "all")
	pub = goPeer(t, srv.URL, "publisher")
	mustCall(t, pub, "pub", "news", "after")
	if offs, vals := again.events(t, 1); offs[0] != 1001 || vals[0] != "after" {
		t.Fatalf("after acknowledging everything got offset %d (%v), want only the new 1001", offs[0], vals[0])
	}
}

// TestDurableRandomKills publishes while killing the server at random
// moments: every publish the server confirmed reaches the subscriber.
func TestDurableRandomKills(t *testing.T) {
	dir := t.TempDir()
	srv := startServerProcess(t, dir)
	sink := goPeer(t, srv.URL, "sink")
	mustCall(t, sink, "sub", "stream")
	sink.Manager().Close()

	confirmed := map[uint64]int{} // offset → value
	value := 0
	rounds := 20
	for round := 0; round < rounds; round++ {
		if round > 0 {
			srv = startServerProcess(t, dir)
		}
		pub := goPeer(t, srv.URL, "publisher")
		killAt := time.Now().Add(time.Duration(20+rand.IntN(180)) * time.Millisecond)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Until(killAt))
			srv.kill()
		}()
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			a, err := call(ctx, pub, "pub", "stream", value)
			cancel()
			if err != nil || !a.OK {
				break // the server died under us
			}
			confirmed[a.Offset] = value
			value++
		}
		wg.Wait()
		pub.Manager().Close()
	}

	srv = startServerProcess(t, dir)
	got := map[uint64]int{}
	dups := 0
	var mu sync.Mutex
	all := make(chan struct{})
	sinkAgain := client.NewManager(srv.URL, &client.Options{Transports: []string{"websocket"}, Auth: map[string]string{"id": "sink"}, DisableReconnection: true})
	t.Cleanup(func() { sinkAgain.Close() })
	s := sinkAgain.Socket("/")
	var last uint64
	s.On("m", func(v int, meta switchboard.DeliveryMeta, ack client.AckFunc) {
		ack()
		mu.Lock()
		defer mu.Unlock()
		if meta.Offset <= last {
			t.Errorf("offset %d after %d: out of order", meta.Offset, last)
		}
		last = meta.Offset
		if _, seen := got[meta.Offset]; seen {
			dups++
		}
		got[meta.Offset] = v
		for off := range confirmed {
			if _, ok := got[off]; !ok {
				return
			}
		}
		select {
		case <-all:
		default:
			close(all)
		}
	})
	s.Connect()
	select {
	case <-all:
	case <-time.After(30 * time.Second):
		mu.Lock()
		defer mu.Unlock()
		missing := 0
		for off := range confirmed {
			if _, ok := got[off]; !ok {
				missing++
			}
		}
		t.Fatalf("%d of %d confirmed publishes never reached the subscriber", missing, len(confirmed))
	}
	mu.Lock()
	defer mu.Unlock()
	for off, v := range confirmed {
		if got[off] != v {
			t.Errorf("offset %d: delivered value %d, confirmed %d", off, got[off], v)
		}
	}
	t.Logf("%d rounds, %d publishes confirmed, %d delivered (unconfirmed but stored ones included), %d duplicates",
		rounds, len(confirmed), len(got), dups)
}
