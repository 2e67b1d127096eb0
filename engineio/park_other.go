//go:build !linux

package engineio

// poller is Linux-only; elsewhere idle readers keep their goroutine.
type poller struct{}

func newPoller(func(string, ...any)) *poller { return nil }

func (p *poller) add(int, *wsTransport) bool { return false }

func (p *poller) remove(int, *wsTransport) {}

func (p *poller) count() int { return 0 }
