package switchboard

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard-io/switchboard/engineio"
	"github.com/switchboard-io/switchboard/internal/worker"
)

// Server is a Socket.IO server. It is an http.Handler: mount it at the
// Engine.IO path (default "/socket.io/"). All methods are safe for
// concurrent use.
type Server struct {
	opts   Options
	engine *engineio.Server

	mu      sync.RWMutex
	nsps    map[string]*Namespace
	parents []*Namespace // dynamic namespaces, in creation order

	clientsMu sync.Mutex
	clients   map[*client]struct{}
	work      sync.WaitGroup // dispatch goroutines of every client
	workers   *worker.Pool   // the goroutines that run them
	closed    atomic.Bool
	counters  counters
	stopWatch context.CancelFunc // ends watchStore; nil without a StoreWatcher
}

// idleWorkers bounds the handler goroutines kept waiting for the next
// connection with work (each holds a grown stack of a few KiB).
const idleWorkers = 128

// NewServer returns a Server with the default namespace "/" created.
func NewServer(opts *Options) *Server {
	s := &Server{
		opts:    opts.withDefaults(),
		nsps:    make(map[string]*Namespace),
		clients: make(map[*client]struct{}),
		workers: worker.New(idleWorkers),
	}
	s.engine = engineio.NewServer(&s.opts.Engine, s.onEngineConn)
	s.Of("/")
	if w, ok := s.opts.Store.(StoreWatcher); ok {
		ctx, cancel := context.WithCancel(context.Background())
		s.stopWatch = cancel
		s.work.Add(1)
		go s.watchStore(ctx, w)
	}
	return s
}

// watchStore wakes the durable deliveries of rooms other nodes published to.
func (s *Server) watchStore(ctx context.Context, w StoreWatcher) {
	defer s.work.Done()
	for ctx.Err() == nil {
		err := w.Watch(ctx, func(key string) {
			nsp, room, ok := strings.Cut(key, "#")
			if !ok {
				return
			}
			s.mu.RLock()
			ns := s.nsps[nsp]
			s.mu.RUnlock()
			if ns != nil {
				ns.durable.notify(room)
			}
		})
		if ctx.Err() != nil || errors.Is(err, ErrStoreClosed) {
			return
		}
		s.opts.Logger.Warn("switchboard: watching the store failed; retrying", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// ServeHTTP serves Engine.IO requests.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.engine.ServeHTTP(w, r)
}

// Of returns the namespace with the given name, creating it on first use. A
// name without a leading slash gets one.
func (s *Server) Of(name string) *Namespace {
	if name == "" || name[0] != '/' {
		name = "/" + name
	}
	s.mu.RLock()
	ns := s.nsps[name]
	s.mu.RUnlock()
	if ns != nil {
		return ns
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if ns = s.nsps[name]; ns == nil {
		ns = newNamespace(s, name, nil)
		s.nsps[name] = ns
	}
	return ns
}

// OfFunc declares dynamic namespaces: when a client connects to a namespace
// that does not exist and match returns true for its name and auth payload,
// the namespace is created as a child of the returned parent. Middlewares and
// connection handlers set on the parent apply to every child; a broadcast on
// the parent reaches every child.
func (s *Server) OfFunc(match func(name string, auth json.RawMessage) bool) *Namespace {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := newNamespace(s, "", nil)
	p.match = match
	s.parents = append(s.parents, p)
	return p
}

// OfRegexp is OfFunc for names matching re.
func (s *Server) OfRegexp(re *regexp.Regexp) *Namespace {
	return s.OfFunc(func(name string, _ json.RawMessage) bool { return re.MatchString(name) })
}

// lookupNamespace finds or, through a dynamic parent, creates the namespace
// a client asked for; nil if none matches.
func (s *Server) lookupNamespace(name string, auth json.RawMessage) *Namespace {
	s.mu.RLock()
	ns := s.nsps[name]
	parents := s.parents
	s.mu.RUnlock()
	if ns != nil {
		return ns
	}
	for _, p := range parents {
		if !p.match(name, auth) {
			continue
		}
		s.mu.Lock()
		if ns = s.nsps[name]; ns == nil {
			ns = newNamespace(s, name, p)
			s.nsps[name] = ns
			p.addChild(ns)
		}
		s.mu.Unlock()
		return ns
	}
	return nil
}

// OnConnection sets the connection handler of the default namespace.
func (s *Server) OnConnection(fn func(*Socket)) { s.Of("/").OnConnection(fn) }

// Use adds a middleware to the default namespace.
func (s *Server) Use(mw func(*Socket) error) { s.Of("/").Use(mw) }

// To starts a broadcast on the default namespace to the given rooms.
func (s *Server) To(rooms ...string) *BroadcastOperator { return s.Of("/").To(rooms...) }

// In is the same as To.
func (s *Server) In(rooms ...string) *BroadcastOperator { return s.To(rooms...) }

// Except starts a broadcast on the default namespace excluding the rooms.
func (s *Server) Except(rooms ...string) *BroadcastOperator { return s.Of("/").Except(rooms...) }

// Emit sends an event to every socket of the default namespace.
func (s *Server) Emit(event string, args ...any) error { return s.Of("/").Emit(event, args...) }

// Volatile starts a volatile broadcast on the default namespace.
func (s *Server) Volatile() *BroadcastOperator { return s.Of("/").Volatile() }

// Local starts a broadcast on the default namespace restricted to this node.
func (s *Server) Local() *BroadcastOperator { return s.Of("/").Local() }

// Timeout starts a broadcast on the default namespace whose EmitWithAck
// waits at most d.
func (s *Server) Timeout(d time.Duration) *BroadcastOperator { return s.Of("/").Timeout(d) }

// FetchSockets returns the sockets of the default namespace, across the
// cluster.
func (s *Server) FetchSockets(ctx context.Context) ([]*RemoteSocket, error) {
	return s.Of("/").FetchSockets(ctx)
}

// SocketsJoin makes every socket of the default namespace join the rooms.
func (s *Server) SocketsJoin(rooms ...string) error { return s.Of("/").SocketsJoin(rooms...) }

// SocketsLeave makes every socket of the default namespace leave the rooms.
func (s *Server) SocketsLeave(rooms ...string) error { return s.Of("/").SocketsLeave(rooms...) }

// DisconnectSockets disconnects every socket of the default namespace.
func (s *Server) DisconnectSockets(close bool) error { return s.Of("/").DisconnectSockets(close) }

// ServerSideEmit sends an event to the other nodes of a cluster, on the
// default namespace.
func (s *Server) ServerSideEmit(ctx context.Context, event string, args ...any) error {
	return s.Of("/").ServerSideEmit(ctx, event, args...)
}

// Engine returns the underlying Engine.IO server.
func (s *Server) Engine() *engineio.Server { return s.engine }

// Close disconnects every client with reason "server shutting down", closes
// the adapters and waits, until ctx ends, for every connection goroutine and
// handler to finish.
func (s *Server) Close(ctx context.Context) error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	err := s.engine.Close(ctx)
	if s.stopWatch != nil {
		s.stopWatch()
	}
	done := make(chan struct{})
	go func() { s.work.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		if err == nil {
			err = ctx.Err()
		}
	}
	s.workers.Close()
	s.mu.RLock()
	nsps := make([]*Namespace, 0, len(s.nsps))
	for _, ns := range s.nsps {
		nsps = append(nsps, ns)
	}
	s.mu.RUnlock()
	for _, ns := range nsps {
		if cerr := ns.adapter.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}
	return err
}

func (s *Server) onEngineConn(conn *engineio.Conn) {
	c := newClient(s, conn)
	s.clientsMu.Lock()
	s.clients[c] = struct{}{}
	s.clientsMu.Unlock()
}

func (s *Server) removeClient(c *client) {
	s.clientsMu.Lock()
	delete(s.clients, c)
	s.clientsMu.Unlock()
}
