// Command switchboard-bench is the load tool of the benchmark suite. It
// drives, over websocket with Switchboard's Go client, any server that
// implements the benchmark contract on its default namespace
// (examples/benchserver, bench/node-server.js):
//
//	join(room)               joins the room and acknowledges
//	publish({room, payload}) emits "msg" with payload to every socket in the room
//	echo(...args)            acknowledges with the same arguments
//
// Usage:
//
//	switchboard-bench <scenario> [flags]
//	switchboard-bench report results.jsonl...
//
// Scenarios:
//
//	conns      N idle connections answering pings; server RSS per connection
//	fanout     N receivers in a room, one publisher: deliveries/s, latency,
//	           lost and out-of-order; flat-out with a window, or paced (-rate)
//	echo       N clients doing acknowledgement round trips: rate and latency
//	handshake  connections opened (and closed) per second
//	durable    durable publish with store confirms, then replay (Switchboard only)
//
// With -server-pid the tool reads the server's CPU seconds from
// /proc/PID/stat and reports figures per server CPU-second. Every loop is
// bounded in count and in time (-timeout). Only loopback targets are
// accepted; -sources spreads connections over several 127.0.0.x source
// addresses to get past the ephemeral port range. The tool raises its own
// open-files limit to the hard limit.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "switchboard-bench:", err)
		}
		os.Exit(1)
	}
}

// A scenario parses its flags and runs once, returning what it measured.
type scenario interface {
	flags(fs *flag.FlagSet, c *config)
	run(ctx context.Context, c *config) (*Result, error)
}

// scenarios lists the scenarios by name, with their default -duration.
var scenarios = map[string]struct {
	make     func() scenario
	duration time.Duration
}{
	"conns":      {func() scenario { return &connsScenario{} }, 5 * time.Second},
	"fanout":     {func() scenario { return &fanoutScenario{} }, 10 * time.Second},
	"echo":       {func() scenario { return &echoScenario{} }, 10 * time.Second},
	"handshake":  {func() scenario { return &handshakeScenario{} }, 5 * time.Second},
	"durable":    {func() scenario { return &durableScenario{} }, 10 * time.Second},
	"tcp-echo":   {func() scenario { return &tcpEchoScenario{} }, 10 * time.Second},
	"tcp-fanout": {func() scenario { return &fanoutScenario{raw: true} }, 10 * time.Second},
}

const usage = `usage: switchboard-bench <conns|fanout|echo|handshake|durable|tcp-echo|tcp-fanout> [flags]
       switchboard-bench report [-format markdown|text] results.jsonl...
       switchboard-bench tcp-floor-server    (the raw-TCP floors' server, on PORT)
Run "switchboard-bench <scenario> -h" for the flags of a scenario.
`

// run is the whole command, for tests.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return flag.ErrHelp
	}
	name, args := args[0], args[1:]
	if name == "report" {
		return runReport(args, stdout, stderr)
	}
	if name == "tcp-floor-server" {
		return runTCPFloorServer(stdout)
	}
	sc, ok := scenarios[name]
	if !ok {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown scenario %q", name)
	}
	s := sc.make()
	fs := flag.NewFlagSet("switchboard-bench "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := &config{}
	finish := c.addFlags(fs, sc.duration)
	s.flags(fs, c)
	cpuProfile := fs.String("cpuprofile", "", "write the load tool's own CPU profile to `file` (to see whether the tool limits a figure)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if err := finish(); err != nil {
		return err
	}
	if os.Getenv("GOGC") == "" {
		// The tool's own garbage collection competes with the clients for
		// its core; memory is cheaper here.
		debug.SetGCPercent(400)
	}
	if _, err := raiseNoFile(); err != nil {
		return fmt.Errorf("raising the open-files limit: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	res, err := s.run(ctx, c)
	if res != nil {
		res.Scenario = cmp(res.Scenario, name)
		res.Label = c.label
		res.Time = time.Now().UTC().Truncate(time.Second)
		if perr := res.print(stdout, c.json); perr != nil && err == nil {
			err = perr
		}
	}
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

func cmp(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
