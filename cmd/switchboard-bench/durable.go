package main

import (
	"context"
	"flag"
	"fmt"
)

// durableScenario will measure the durable rooms: publish rate with store
// confirms (group commit on the embedded store) and replay rate to a
// reconnecting subscriber.
//
// TODO(durable): the durable-rooms API (issue [missed-events]) is being
// built. Once the benchmark contract has its durable events (a confirmed
// publish and a subscribe-from-offset), implement: -n publishers
// publishing with acknowledgement = store confirm, reporting confirmed
// events/s and per server CPU-second (target ≥ 50,000/s); then one
// subscriber reconnecting from offset 0 and counting replayed events/s
// (target ≥ 200,000/s), with lost and out-of-order counts as in fanout.
type durableScenario struct {
	publishers int
}

func (d *durableScenario) flags(fs *flag.FlagSet, _ *config) {
	fs.IntVar(&d.publishers, "publishers", 1, "publishers (not yet used)")
}

func (d *durableScenario) run(context.Context, *config) (*Result, error) {
	return nil, fmt.Errorf("durable publish and replay: %w (waiting for the durable-rooms API)", errNotYetAvailable)
}
