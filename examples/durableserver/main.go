// Command durableserver is a small server with durable rooms on the
// embedded bolt store: clients name their identity in the auth payload
// ({id}), "sub"(room) subscribes that identity to a durable room,
// "unsub"(room) ends the subscription, "pub"(room, value) publishes value as
// event "m" and acknowledges with its offset once stored, and
// "position"(room) answers the identity's stored cursor. Deliveries arrive
// as m(value, meta, ack).
//
//	go run ./examples/durableserver --listen 127.0.0.1:3000 --data-dir ./durable-data
//
// It prints "listening http://ADDR" once it accepts connections.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/switchboard-io/switchboard"
	"github.com/switchboard-io/switchboard/bolt"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:3000", "address to listen on (port 0 picks one)")
	dataDir := flag.String("data-dir", "./durable-data", "directory of the store")
	ackTimeout := flag.Duration("ack-timeout", 30*time.Second, "redeliver unacknowledged events after this long")
	flag.Parse()
	if err := run(*listen, *dataDir, *ackTimeout); err != nil {
		fmt.Fprintln(os.Stderr, "durableserver:", err)
		os.Exit(1)
	}
}

func run(listen, dataDir string, ackTimeout time.Duration) error {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return err
	}
	store, err := bolt.Open(filepath.Join(dataDir, "switchboard.db"), &bolt.Options{Logger: logger})
	if err != nil {
		return err
	}
	defer store.Close()

	srv := switchboard.NewServer(&switchboard.Options{
		Logger:                  logger,
		Store:                   store,
		Identity:                authID,
		Durable:                 switchboard.DurableOptions{AckTimeout: ackTimeout},
		ConnectionStateRecovery: &switchboard.RecoveryOptions{},
	})
	srv.OnConnection(func(s *switchboard.Socket) {
		ctx := context.Background()
		s.On("sub", func(room string, ack switchboard.AckFunc) { ack(result(s.JoinDurable(ctx, room))) })
		s.On("unsub", func(room string, ack switchboard.AckFunc) { ack(result(s.LeaveDurable(ctx, room))) })
		s.On("pub", func(room string, value any, ack switchboard.AckFunc) {
			offset, err := s.Publish(ctx, room, "m", value)
			if err != nil {
				ack(result(err))
				return
			}
			ack(map[string]any{"ok": true, "offset": offset})
		})
		s.On("position", func(room string, ack switchboard.AckFunc) {
			sub, ok, err := store.Cursor(ctx, "/#"+room, s.Identity())
			if err != nil || !ok {
				ack(map[string]any{"ok": false})
				return
			}
			ack(map[string]any{"ok": true, "cursor": sub.Cursor, "acked": sub.Acked})
		})
	})

	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	fmt.Printf("listening http://%s\n", ln.Addr())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() { <-ctx.Done(); shutdown(srv, hs) }()
	if err := hs.Serve(ln); err != http.ErrServerClosed {
		return err
	}
	return nil
}

func shutdown(srv *switchboard.Server, hs *http.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Close(ctx)
	_ = hs.Shutdown(ctx)
}

func authID(s *switchboard.Socket) string {
	var a struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(s.Handshake().Auth, &a)
	return a.ID
}

func result(err error) map[string]any {
	if err != nil {
		return map[string]any{"ok": false, "error": err.Error()}
	}
	return map[string]any{"ok": true}
}
