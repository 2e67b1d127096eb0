package worker

import (
	"runtime"
	"sync"
	"testing"
	"time"
	"weak"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitIdle waits until n workers are idle; the test fails at its deadline
// otherwise (no time is asserted: only the count).
func waitIdle(t *testing.T, p *Pool, n int) {
	t.Helper()
	for p.Idle() != n {
		time.Sleep(time.Millisecond)
	}
}

func TestTasksRunAndWorkersWait(t *testing.T) {
	p := New(2)
	defer p.Close()
	var wg sync.WaitGroup
	release := make(chan struct{})
	ran := make(chan int, 5)
	for i := range 5 {
		wg.Add(1)
		p.Go(func() {
			defer wg.Done()
			<-release
			ran <- i
		})
	}
	close(release)
	wg.Wait()
	close(ran)
	seen := map[int]bool{}
	for i := range ran {
		seen[i] = true
	}
	if len(seen) != 5 {
		t.Fatalf("ran %v, want all of 0..4", seen)
	}
	// Five goroutines finished; only maxIdle of them wait.
	waitIdle(t, p, 2)
	time.Sleep(10 * time.Millisecond)
	if got := p.Idle(); got != 2 {
		t.Fatalf("%d idle workers, want 2", got)
	}
}

func TestIdleWorkerTakesTheNextTask(t *testing.T) {
	p := New(1)
	defer p.Close()
	done := make(chan struct{})
	p.Go(func() { close(done) })
	<-done
	waitIdle(t, p, 1)
	hold := make(chan struct{})
	running := make(chan struct{})
	p.Go(func() { close(running); <-hold })
	<-running
	if got := p.Idle(); got != 0 {
		t.Errorf("%d idle workers while the only one runs a task, want 0", got)
	}
	close(hold)
	waitIdle(t, p, 1)
}

func TestCloseEndsWorkersAndLaterTasksStillRun(t *testing.T) {
	p := New(4)
	hold := make(chan struct{})
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		p.Go(func() { defer wg.Done(); <-hold })
	}
	p.Close()
	p.Close() // twice is fine
	close(hold)
	wg.Wait()
	done := make(chan struct{})
	p.Go(func() { close(done) })
	<-done
	// goleak (TestMain) checks that no worker is left.
}

// An idle worker does not keep its last task (and what the task refers to,
// such as a closed connection) alive.
func TestIdleWorkerReleasesItsTask(t *testing.T) {
	p := New(1)
	defer p.Close()
	type conn struct{ buf [1 << 16]byte }
	c := &conn{}
	ref := weak.Make(c)
	done := make(chan struct{})
	p.Go(func() { c.buf[0] = 1; close(done) })
	<-done
	waitIdle(t, p, 1)
	c = nil
	for i := 0; ref.Value() != nil; i++ {
		if i == 100 {
			t.Fatal("the idle worker keeps its last task's data alive")
		}
		runtime.GC()
		time.Sleep(time.Millisecond)
	}
}
