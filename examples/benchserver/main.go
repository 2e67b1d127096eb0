// Command benchserver is the Switchboard side of the benchmark suite
// (bench/run.sh, cmd/switchboard-bench). It listens on 127.0.0.1 at the port
// in the PORT environment variable (default 3000) and implements, on the
// default namespace "/", the contract every benchmark server implements
// (bench/node-server.js is the socket.io one):
//
//   - join(room): joins the room and acknowledges;
//   - publish({room, payload}): emits "msg" with payload to every socket in
//     the room, the sender included, and acknowledges if asked;
//   - echo(...args): acknowledges with the same arguments.
//
// and, Switchboard only, the durable part (durable rooms on the embedded bolt
// store, in -data-dir or a temporary directory removed at exit; the identity
// is the auth payload's id):
//
//   - dsub(room): subscribes the identity to the durable room and
//     acknowledges;
//   - dpublish({room, payload}): stores payload as event "dmsg" and
//     acknowledges with its offset once the store confirmed it;
//   - subscribers receive dmsg(payload, meta, ack) and acknowledge.
//
// Run it with
//
//	go run ./examples/benchserver                      # port 3000
//	PORT=4000 go run ./examples/benchserver -pprof 127.0.0.1:6060
//
// With -pprof, net/http/pprof is served on that address (loopback only),
// with /debug/stats reporting the goroutine and socket counts:
//
//	go tool pprof -seconds 10 http://127.0.0.1:6060/debug/pprof/profile
//	go tool pprof -sample_index=alloc_space http://127.0.0.1:6060/debug/pprof/allocs
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"github.com/switchboard-io/switchboard"
	"github.com/switchboard-io/switchboard/bolt"
	"github.com/switchboard-io/switchboard/engineio"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "benchserver:", err)
		os.Exit(1)
	}
}

// publication is the argument of the publish event.
type publication struct {
	Room    string          `json:"room"`
	Payload json.RawMessage `json:"payload"`
}

// newServer returns a Server implementing the benchmark contract on "/".
func newServer(opts *switchboard.Options) *switchboard.Server {
	srv := switchboard.NewServer(opts)
	srv.OnConnection(func(s *switchboard.Socket) {
		s.On("dsub", func(room string, ack switchboard.AckFunc) {
			if err := s.JoinDurable(context.Background(), room); err != nil {
				ack(map[string]any{"error": err.Error()})
				return
			}
			ack()
		})
		// PublishAsync, so that a publisher with many publishes in flight
		// has them all in the next group commit (Publish would make this
		// connection's handlers wait for one commit per event).
		s.On("dpublish", func(p publication, ack switchboard.AckFunc) {
			s.PublishAsync(context.Background(), p.Room, "dmsg", []any{p.Payload}, func(offset uint64, err error) {
				if err != nil {
					ack(map[string]any{"error": err.Error()})
					return
				}
				ack(offset)
			})
		})
		s.On("join", func(room string, ack switchboard.AckFunc) {
			if err := s.Join(room); err != nil {
				ack(map[string]any{"error": err.Error()})
				return
			}
			ack()
		})
		s.On("publish", func(p publication, ack switchboard.AckFunc) {
			if p.Payload == nil {
				p.Payload = json.RawMessage("null")
			}
			// srv.To, not s.To: the sender receives its own message too.
			_ = srv.To(p.Room).Emit("msg", p.Payload)
			ack() // a no-op when the client asked for no acknowledgement
		})
		s.On("echo", func(args switchboard.Args, ack switchboard.AckFunc) {
			ack(args.Echo()...)
		})
	})
	return srv
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("benchserver", flag.ContinueOnError)
	fs.SetOutput(stderr)
	pprofAddr := fs.String("pprof", "", "serve net/http/pprof and /debug/stats on this loopback `address` (e.g. 127.0.0.1:6060); off by default")
	durableInflight := fs.Int("durable-inflight", 0, "unacknowledged durable deliveries per subscriber connection (DurableOptions.MaxInflight); 0: the default, 100")
	idleReader := fs.Duration("release-idle-reader-after", 0, "engine.Options.ReleaseIdleReaderAfter: a silent websocket's reader goroutine ends after this long; 0: the default (100ms), negative: never")
	memProfileRate := fs.Int("memprofilerate", 0, "runtime.MemProfileRate: record one heap sample per this many `bytes` (1: every allocation, for exact bytes per connection); 0: the runtime's default, 512 KiB")
	dataDir := fs.String("data-dir", "", "`directory` of the durable rooms' bolt store; default a temporary one, removed at exit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *memProfileRate > 0 {
		runtime.MemProfileRate = *memProfileRate
	}
	if *dataDir == "" {
		tmp, err := os.MkdirTemp("", "benchserver-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		*dataDir = tmp
	}
	store, err := bolt.Open(filepath.Join(*dataDir, "bench.db"), nil)
	if err != nil {
		return err
	}
	defer store.Close()
	port := getenv("PORT")
	if port == "" {
		port = "3000"
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv := newServer(&switchboard.Options{Logger: logger, Store: store, Identity: authID,
		Engine:  engineio.Options{ReleaseIdleReaderAfter: *idleReader},
		Durable: switchboard.DurableOptions{MaxInflight: *durableInflight}})

	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", port))
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", srv)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 2)
	go func() { errc <- hs.Serve(ln) }()

	var ps *http.Server
	if *pprofAddr != "" {
		pln, err := listenLoopback(*pprofAddr)
		if err != nil {
			_ = hs.Close()
			return fmt.Errorf("pprof: %w", err)
		}
		ps = &http.Server{Handler: debugMux(srv), ReadHeaderTimeout: 10 * time.Second}
		go func() { errc <- ps.Serve(pln) }()
		fmt.Fprintf(stdout, "pprof on http://%s/debug/pprof/\n", pln.Addr())
	}
	fmt.Fprintf(stdout, "benchserver listening on %s pid %d\n", ln.Addr(), os.Getpid())

	select {
	case err := <-errc:
		_ = hs.Close()
		if ps != nil {
			_ = ps.Close()
		}
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = srv.Close(shutdown)
	if herr := hs.Shutdown(shutdown); herr != nil && !errors.Is(herr, http.ErrServerClosed) && err == nil {
		err = herr
	}
	if ps != nil {
		_ = ps.Close()
	}
	return err
}

// authID is the identity a client names in its auth payload: {id}.
func authID(s *switchboard.Socket) string {
	var a struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(s.Handshake().Auth, &a)
	return a.ID
}

// listenLoopback listens on addr, which must be a loopback address: the
// profiling endpoints are not for the network.
func listenLoopback(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("%q is not a loopback address", addr)
	}
	return net.Listen("tcp", addr)
}

// debugMux serves net/http/pprof and /debug/stats, which reports the numbers
// the goroutines-per-connection figure is computed from.
func debugMux(srv *switchboard.Server) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/debug/stats", func(w http.ResponseWriter, _ *http.Request) {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"goroutines": runtime.NumGoroutine(),
			"sockets":    srv.Of("/").SocketCount(),
			"heap_inuse": ms.HeapInuse,
			"heap_sys":   ms.HeapSys,
			"stack_sys":  ms.StackSys,
			"sys":        ms.Sys,
			"num_gc":     ms.NumGC,
		})
	})
	return mux
}
