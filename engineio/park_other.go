//go:build !linux

package engineio

import "time"

// poller is Linux-only; elsewhere idle readers keep their goroutine.
type poller struct{}

type epollInstance struct{}

func newPoller(func(string, ...any), time.Duration) *poller { return nil }

func (p *poller) add(int, *wsTransport) bool { return false }

func (p *poller) remove(int, *wsTransport) {}

func (p *poller) count() int { return 0 }

func (p *poller) watch(*wsTransport) {}

func (p *poller) unwatch(*wsTransport) {}
