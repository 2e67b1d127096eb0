package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-io/switchboard"
	"github.com/switchboard-io/switchboard/memory"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// startContractServer serves the benchmark contract (as examples/benchserver
// does) in process, on 127.0.0.1, its durable rooms keeping what retention
// allows (nil: the default).
func startContractServer(t *testing.T, retention *switchboard.Retention) string {
	t.Helper()
	store := memory.NewStore(&memory.StoreOptions{Retention: retention})
	t.Cleanup(func() { store.Close() })
	srv := switchboard.NewServer(&switchboard.Options{Store: store, Identity: func(s *switchboard.Socket) string {
		var a struct{ ID string }
		_ = json.Unmarshal(s.Handshake().Auth, &a)
		return a.ID
	}})
	srv.OnConnection(func(s *switchboard.Socket) {
		s.On("dsub", func(room string, ack switchboard.AckFunc) {
			if err := s.JoinDurable(context.Background(), room); err != nil {
				ack(err.Error())
				return
			}
			ack()
		})
		s.On("dpublish", func(p struct {
			Room    string          `json:"room"`
			Payload json.RawMessage `json:"payload"`
		}, ack switchboard.AckFunc) {
			offset, err := s.Publish(context.Background(), p.Room, "dmsg", p.Payload)
			if err != nil {
				ack(err.Error())
				return
			}
			ack(offset)
		})
		s.On("join", func(room string, ack switchboard.AckFunc) {
			if err := s.Join(room); err != nil {
				ack(err.Error())
				return
			}
			ack()
		})
		s.On("publish", func(p struct {
			Room    string          `json:"room"`
			Payload json.RawMessage `json:"payload"`
		}, ack switchboard.AckFunc) {
			_ = srv.To(p.Room).Emit("msg", p.Payload)
			ack()
		})
		s.On("echo", func(args switchboard.Args, ack switchboard.AckFunc) { ack(args.Echo()...) })
	})
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Close(ctx)
		hs.Close()
	})
	return hs.URL
}

// runScenario runs the tool with args against url and returns its result.
func runScenario(t *testing.T, url string, args ...string) *Result {
	t.Helper()
	var out, errOut bytes.Buffer
	args = append(args, "-url", url, "-server-pid", strconv.Itoa(os.Getpid()), "-json",
		"-warmup", "100ms", "-duration", "500ms", "-timeout", "60s")
	if err := run(context.Background(), args, &out, &errOut); err != nil {
		t.Fatalf("%v: %v\n%s\n%s", args, err, out.String(), errOut.String())
	}
	var r Result
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("%v: %v in %q", args, err, out.String())
	}
	return &r
}

func metric(t *testing.T, r *Result, name string) float64 {
	t.Helper()
	v, ok := r.Metric(name)
	if !ok {
		t.Fatalf("%s: no metric %s in %+v", r.Scenario, name, r.Metrics)
	}
	return v
}

// TestScenarios runs every scenario for a moment with a handful of
// connections and checks the counts make sense: nothing lost, nothing out
// of order, no failure. No figure is checked against a time.
func TestScenarios(t *testing.T) {
	url := startContractServer(t, nil)

	t.Run("fanout", func(t *testing.T) {
		r := runScenario(t, url, "fanout", "-n", "5", "-window", "8")
		if r.Scenario != "fanout" {
			t.Errorf("scenario %q", r.Scenario)
		}
		published, deliveries := metric(t, r, "published"), metric(t, r, "deliveries")
		if published < 1 || deliveries < 1 || deliveries > 5*published {
			t.Errorf("published %v, delivered %v", published, deliveries)
		}
		for _, m := range []string{"lost", "out_of_order", "bad_payloads", "disconnects"} {
			if v := metric(t, r, m); v != 0 {
				t.Errorf("%s = %v", m, v)
			}
		}
		if metric(t, r, "latency_p50_ms") <= 0 || metric(t, r, "server_cpu_s") < 0 {
			t.Errorf("latency or cpu missing: %+v", r.Metrics)
		}
	})
	t.Run("fanout-paced", func(t *testing.T) {
		r := runScenario(t, url, "fanout", "-n", "3", "-rate", "50")
		if r.Scenario != "fanout-paced" {
			t.Errorf("scenario %q", r.Scenario)
		}
		// 50/s over 600 ms: about 30 events, each to 3 receivers.
		if p := metric(t, r, "published"); p < 5 || p > 40 {
			t.Errorf("published %v events at 50/s in 600ms", p)
		}
		for _, m := range []string{"lost", "out_of_order", "bad_payloads"} {
			if v := metric(t, r, m); v != 0 {
				t.Errorf("%s = %v", m, v)
			}
		}
		// CPU per delivery, the tool's and the server's (here the same
		// process): both positive.
		if metric(t, r, "tool_cpu_per_delivery_us") <= 0 || metric(t, r, "server_cpu_per_delivery_us") <= 0 {
			t.Errorf("CPU per delivery missing: %+v", r.Metrics)
		}
	})
	t.Run("echo", func(t *testing.T) {
		r := runScenario(t, url, "echo", "-n", "3", "-inflight", "2")
		if metric(t, r, "round_trips") < 1 {
			t.Error("no round trip")
		}
		for _, m := range []string{"mismatched", "failed"} {
			if v := metric(t, r, m); v != 0 {
				t.Errorf("%s = %v", m, v)
			}
		}
	})
	t.Run("echo paced", func(t *testing.T) {
		// 4 clients, one round trip each per 50 ms, over 500 ms: at most
		// ~40 started while measured (flat-out would be thousands); a
		// slow machine makes fewer, never more.
		r := runScenario(t, url, "echo", "-n", "4", "-interval", "50ms")
		if n := metric(t, r, "round_trips"); n < 1 || n > 4*(500/50+1) {
			t.Errorf("round_trips = %v, want 1..44 when paced", n)
		}
		if v := metric(t, r, "failed") + metric(t, r, "mismatched"); v != 0 {
			t.Errorf("failed or mismatched: %v", v)
		}
	})
	t.Run("handshake", func(t *testing.T) {
		r := runScenario(t, url, "handshake", "-concurrency", "2", "-sources", "2")
		if metric(t, r, "handshakes") < 1 || metric(t, r, "failed") != 0 {
			t.Errorf("%+v", r.Metrics)
		}
	})
	t.Run("conns", func(t *testing.T) {
		r := runScenario(t, url, "conns", "-n", "10", "-settle", "10ms", "-sources", "127.0.0.1,127.0.0.2")
		if metric(t, r, "still_connected") != 10 || metric(t, r, "disconnects") != 0 {
			t.Errorf("%+v", r.Metrics)
		}
		if _, ok := r.Metric("rss_per_conn_kb"); !ok {
			t.Error("no RSS figure")
		}
	})
	t.Run("durable", func(t *testing.T) {
		r := runScenario(t, url, "durable", "-publishers", "4")
		if metric(t, r, "confirmed") < 1 || metric(t, r, "failed") != 0 {
			t.Errorf("%+v", r.Metrics)
		}
		if metric(t, r, "replayed") != metric(t, r, "backlog") || metric(t, r, "lost") != 0 || metric(t, r, "out_of_order") != 0 {
			t.Errorf("replay: %+v", r.Metrics)
		}
	})
}

// A backlog longer than the room's retention: the replay starts with a gap
// notice, whose events count as trimmed, not lost, and the offsets after it
// are in order.
func TestDurableReplayPastRetention(t *testing.T) {
	url := startContractServer(t, &switchboard.Retention{MaxEvents: 50})
	r := runScenario(t, url, "durable", "-publishers", "2", "-inflight", "4")
	backlog, trimmed, replayed := metric(t, r, "backlog"), metric(t, r, "trimmed_by_retention"), metric(t, r, "replayed")
	if backlog <= 50 {
		t.Fatalf("backlog %v does not exceed the retention of 50: %+v", backlog, r.Metrics)
	}
	if replayed != 50 || trimmed != backlog-50 {
		t.Errorf("backlog %v: replayed %v, trimmed %v; want 50 and %v", backlog, replayed, trimmed, backlog-50)
	}
	if metric(t, r, "lost") != 0 || metric(t, r, "out_of_order") != 0 {
		t.Errorf("replay: %+v", r.Metrics)
	}
}

// The raw-TCP floors: tcp-echo and tcp-fanout against the floors' server,
// and the report reading the servers' figures against them.
func TestTCPFloors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- serveTCPFloor(ctx, ln) }()
	url := "http://" + ln.Addr().String()
	echo := runScenario(t, url, "tcp-echo", "-n", "3")
	fan := runScenario(t, url, "tcp-fanout", "-n", "4", "-rate", "50", "-size", "10")
	cancel()
	if err := <-served; err != nil {
		t.Fatalf("tcp-floor-server: %v", err)
	}
	trips, _ := echo.Metric("round_trips")
	failed, _ := echo.Metric("failed")
	if trips < 1 || failed != 0 {
		t.Fatalf("tcp-echo: %v round trips, %v failed", trips, failed)
	}
	if fan.Scenario != "tcp-fanout-paced" {
		t.Errorf("scenario %q", fan.Scenario)
	}
	// 50/s over 600 ms: about 30 events, each to 4 receivers.
	published := metric(t, fan, "published")
	if published < 5 || published > 40 {
		t.Errorf("published %v events at 50/s in 600ms", published)
	}
	for _, m := range []string{"lost", "out_of_order", "bad_payloads", "disconnects"} {
		if v := metric(t, fan, m); v != 0 {
			t.Errorf("tcp-fanout: %s = %v", m, v)
		}
	}
	if metric(t, fan, "latency_p99_ms") <= 0 {
		t.Errorf("tcp-fanout: no latency: %+v", fan.Metrics)
	}

	results := []Result{
		{Scenario: "echo", Label: "switchboard", Metrics: []Metric{{Name: "round_trips_per_cpu_s", Value: 50}}},
		{Scenario: "echo", Label: "node", Metrics: []Metric{{Name: "round_trips_per_cpu_s", Value: 25}}},
		{Scenario: "tcp-echo", Label: floorLabel, Metrics: []Metric{{Name: "round_trips_per_cpu_s", Value: 100}}},
		{Scenario: "fanout-paced", Label: "switchboard", Metrics: []Metric{{Name: "latency_p99_ms", Value: 12}}},
		{Scenario: "fanout-paced", Label: "node", Metrics: []Metric{{Name: "latency_p99_ms", Value: 16}}},
		{Scenario: "tcp-fanout-paced", Label: floorLabel, Metrics: []Metric{
			{Name: "latency_p99_ms", Value: 8}, {Name: "tool_cpu_per_delivery_us", Value: 6.5}, {Name: "server_cpu_per_delivery_us", Value: 5.5},
		}},
	}
	var out bytes.Buffer
	if err := buildReport(results, "switchboard", "node").print(&out, true); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Raw-TCP floor", "100 round trips", "switchboard echo: 50% of the floor", "node echo: 25% of the floor",
		"latency p99 8 ms; the server 5.50 µs and the tool 6.50 µs",
		"switchboard fanout-paced p99: 1.50× the floor's", "node fanout-paced p99: 2.00× the floor's",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "| tcp-") {
		t.Errorf("the floors' figures are rows of the table:\n%s", out.String())
	}
}

func TestRefusesRemoteTargets(t *testing.T) {
	for _, args := range [][]string{
		{"echo", "-url", "http://10.0.0.1:3000"},
		{"echo", "-url", "http://example.com:3000"},
		{"echo", "-sources", "10.0.0.1"},
		{"echo", "-url", "https://127.0.0.1:3000"},
	} {
		if err := run(context.Background(), args, &bytes.Buffer{}, &bytes.Buffer{}); err == nil {
			t.Errorf("%v: accepted", args)
		}
	}
}

func TestHistogram(t *testing.T) {
	var h histogram
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Microsecond}, {0.99, 990 * time.Microsecond}, {1, time.Millisecond}} {
		got := h.Quantile(c.q)
		if d := got - c.want; d < -c.want/50 || d > c.want/50 {
			t.Errorf("q%v = %v, want %v ±2%%", c.q, got, c.want)
		}
	}
	if h.Max() != time.Millisecond || h.Count() != 1000 {
		t.Errorf("max %v count %d", h.Max(), h.Count())
	}
	for v := uint64(0); v < 1<<20; v += 7 {
		if i := histIndex(v); i < 0 || i >= histBuckets {
			t.Fatalf("index %d for %d", i, v)
		}
	}
	if i := histIndex(1<<63 - 1); i >= histBuckets {
		t.Fatalf("index %d for max", i)
	}
}

func TestParseProc(t *testing.T) {
	stat := []byte("1234 (a (weird) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 5 0 100 1000 200")
	cpu, err := parseStatCPU(stat)
	if err != nil || cpu != 3 {
		t.Errorf("cpu %v, %v; want 3", cpu, err)
	}
	rss, err := parseStatusRSS([]byte("Name:\tx\nVmRSS:\t  2048 kB\nThreads: 3\n"))
	if err != nil || rss != 2048<<10 {
		t.Errorf("rss %v, %v", rss, err)
	}
	if _, err := procCPU(os.Getpid()); err != nil {
		t.Error(err)
	}
}

func TestParsePayload(t *testing.T) {
	b := appendPublish(nil, "r", 42, 99, true, "xx")
	var p struct {
		Room    string          `json:"room"`
		Payload json.RawMessage `json:"payload"`
	}
	if err := json.Unmarshal(b, &p); err != nil || p.Room != "r" {
		t.Fatalf("%s: %v", b, err)
	}
	seq, ts, m, ok := parsePayload(p.Payload)
	if !ok || seq != 42 || ts != 99 || !m {
		t.Errorf("%s: %d %d %v %v", p.Payload, seq, ts, m, ok)
	}
	// Another key order, as another server could re-serialize it.
	seq, ts, m, ok = parsePayload([]byte(`{"pad":"","m":0,"ts":7,"seq":3}`))
	if !ok || seq != 3 || ts != 7 || m {
		t.Errorf("%d %d %v %v", seq, ts, m, ok)
	}
}

func TestReport(t *testing.T) {
	dir := t.TempDir()
	var lines []string
	for _, c := range []struct {
		label string
		v     float64
	}{{"switchboard", 500}, {"switchboard", 600}, {"switchboard", 700}, {"node", 100}, {"node", 90}, {"node", 200}} {
		b, _ := json.Marshal(Result{Scenario: "fanout", Label: c.label, Metrics: []Metric{{Name: "deliveries_per_cpu_s", Value: c.v}}})
		lines = append(lines, string(b))
	}
	name := dir + "/r.jsonl"
	if err := os.WriteFile(name, []byte("noise\n"+strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"report", name}, &out, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	// Medians 600 and 100: ratio 6, target ≥ 5× met.
	if !strings.Contains(out.String(), "| fanout | deliveries_per_cpu_s |  | 600 | 100 | 6.00 | ≥ 5× met |") {
		t.Errorf("report:\n%s", out.String())
	}
}
