// Command switchboard runs a Socket.IO server. For now it is a runnable
// example: on the default namespace, "echo" acknowledges with its arguments
// and "chat" is relayed to every other client (to a room when the client
// joined one with "join").
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/switchboard-io/switchboard"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "switchboard:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("switchboard", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:3000", "address to listen on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))

	srv := switchboard.NewServer(&switchboard.Options{Logger: logger})
	srv.OnConnection(func(s *switchboard.Socket) {
		s.On("echo", func(args switchboard.Args, ack switchboard.AckFunc) { ack(args.Echo()...) })
		s.On("join", func(room string, ack switchboard.AckFunc) {
			if err := s.Join(room); err != nil {
				ack(map[string]any{"ok": false, "error": err.Error()})
				return
			}
			ack(map[string]any{"ok": true})
		})
		s.On("chat", func(room, text string) {
			if room == "" {
				_ = s.Broadcast().Emit("chat", room, text)
				return
			}
			_ = s.To(room).Emit("chat", room, text)
		})
	})

	mux := http.NewServeMux()
	mux.Handle("/socket.io/", srv)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	logger.Info("switchboard listening", "addr", ln.Addr().String())

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Info("switchboard shutting down")
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Close the Socket.IO server first: it ends long-polls and websockets
	// that http.Server.Shutdown would otherwise wait for.
	err = srv.Close(shutdown)
	if herr := hs.Shutdown(shutdown); herr != nil && !errors.Is(herr, http.ErrServerClosed) && err == nil {
		err = herr
	}
	return err
}
