package engineio

// Writable reports whether a message sent now would go out at once: the
// session is open and nothing is queued, and it is on a websocket or has a
// long-poll GET waiting. Volatile emits are dropped when it is false, as
// engine.io drops them when its transport is not writable.
func (c *Conn) Writable() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != stateOpen || c.queued > 0 {
		return false
	}
	return c.ws != nil || c.polling
}
