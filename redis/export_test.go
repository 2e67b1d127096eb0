package redis

import "github.com/switchboard-io/switchboard"

// DecodeSession decodes a session stored under SessionKeyPrefix, for tests.
func DecodeSession(raw string) (*switchboard.SessionState, error) { return decodeSession(raw) }

// KeeperStats returns how many SETs, compare-and-deletes and pipelines the
// session keeper of c sent.
func KeeperStats(c *Cluster) (sets, dels, pipelines int64) {
	return c.keep.sets.Load(), c.keep.dels.Load(), c.keep.pipelines.Load()
}
