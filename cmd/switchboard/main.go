// Command switchboard is the Switchboard hub: a Socket.IO-compatible
// real-time hub and message queue in one binary. Browsers connect with any
// Socket.IO client, join the rooms their token allows and publish; backends
// publish over an HTTP API. Run "switchboard --help" for every setting and
// see docs/hub.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3";
// otherwise the module version, or "dev".
var version = ""

func main() {
	m := &Main{Stdout: os.Stdout, Stderr: os.Stderr, LookupEnv: os.LookupEnv}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	m.StopSignals = stop
	err := m.Run(ctx, os.Args[1:])
	stop()
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.As(err, new(usageError)):
		fmt.Fprintln(os.Stderr, "switchboard:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "switchboard:", err)
		os.Exit(1)
	}
}

// Main is the program, with its environment injected for tests.
type Main struct {
	Stdout, Stderr io.Writer
	LookupEnv      func(string) (string, bool)
	// StopSignals, if set, is called once a shutdown begins, so that a
	// second signal kills the process at once.
	StopSignals func()
}

// Run dispatches to a command. ctx ending starts a graceful shutdown.
func (m *Main) Run(ctx context.Context, args []string) error {
	if len(args) > 0 {
		switch args[0] {
		case "version", "--version", "-version":
			fmt.Fprintf(m.Stdout, "switchboard %s %s %s/%s\n", Version(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return nil
		case "help":
			var c Config
			printUsage(m.Stdout, c.flagSet(io.Discard))
			return nil
		case "serve":
			args = args[1:]
		}
	}
	return (&ServeCommand{Main: m}).Run(ctx, args)
}

// Version returns the build's version.
func Version() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}
