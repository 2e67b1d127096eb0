package switchboard

// RecoveryOptions returns the connection-state recovery options in force
// (defaults applied), or nil when recovery is off. Cluster adapters use it
// to decide whether broadcasts carry offsets and how long a disconnected
// socket's session is kept.
func (s *Server) RecoveryOptions() *RecoveryOptions {
	if s.opts.ConnectionStateRecovery == nil {
		return nil
	}
	r := *s.opts.ConnectionStateRecovery
	return &r
}
