package redis_test

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/switchboard-io/switchboard"
	"github.com/switchboard-io/switchboard/redis"
	"github.com/switchboard-io/switchboard/storetest"
)

// startRedisCluster starts a 3-primary Redis Cluster of private
// redis-servers and returns a ClusterClient for it.
func startRedisCluster(t *testing.T) *goredis.ClusterClient {
	t.Helper()
	for _, bin := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(bin); err != nil {
			requireOrSkip(t, bin+" is not installed")
		}
	}
	var addrs []string
	for i := range 3 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		dir := filepath.Join(t.TempDir(), strconv.Itoa(i))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "",
			"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(dir, "nodes.conf"),
			"--dir", dir, "--logfile", filepath.Join(dir, "redis.log"))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		addr := "127.0.0.1:" + strconv.Itoa(port)
		addrs = append(addrs, addr)
		deadline := time.Now().Add(5 * time.Second)
		for {
			c := goredis.NewClient(&goredis.Options{Addr: addr, MaxRetries: -1})
			err := c.Ping(context.Background()).Err()
			_ = c.Close()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("redis-server on %s did not start: %v", addr, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	out, err := exec.Command("redis-cli", append([]string{"--cluster", "create"}, append(addrs, "--cluster-replicas", "0", "--cluster-yes")...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	cc := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: addrs})
	t.Cleanup(func() { _ = cc.Close() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := cc.ClusterInfo(context.Background()).Result()
		if err == nil && containsLine(info, "cluster_state:ok") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster not ready: %v %s", err, info)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Every primary must know the whole cluster before the suite runs.
	if err := cc.ForEachMaster(context.Background(), func(ctx context.Context, c *goredis.Client) error {
		for {
			info, err := c.ClusterInfo(ctx).Result()
			if err == nil && containsLine(info, "cluster_state:ok") {
				return nil
			}
			if time.Now().After(deadline) {
				return err
			}
			time.Sleep(50 * time.Millisecond)
		}
	}); err != nil {
		t.Fatal(err)
	}
	return cc
}

func containsLine(s, line string) bool {
	for len(s) > 0 {
		i := 0
		for i < len(s) && s[i] != '\n' {
			i++
		}
		l := s[:i]
		if len(l) > 0 && l[len(l)-1] == '\r' {
			l = l[:len(l)-1]
		}
		if l == line {
			return true
		}
		if i == len(s) {
			break
		}
		s = s[i+1:]
	}
	return false
}

// TestStoreSuiteRedisCluster runs the shared Store suite on a Redis
// Cluster of three primaries: the scripts touch only keys of one room,
// which share its hash tag, and the indexes live on other shards.
func TestStoreSuiteRedisCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	cc := startRedisCluster(t)
	o := newStoreOpener(cc)
	storetest.Run(t, o.open, o.reopen)

	// With WaitReplicas (no replicas here): the WAIT goes to the room's
	// primary with the script and reports 0 replicas.
	s := o.openWith(t, redisStoreOptions("wait", 1))
	defer s.Close()
	first, err := s.Append(context.Background(), "r", []switchboard.StoredEvent{{Data: []byte("x")}})
	if first != 1 || !errors.Is(err, redis.ErrNotReplicated) {
		t.Fatalf("Append with WaitReplicas 1 and no replica = %d, %v; want 1 and ErrNotReplicated", first, err)
	}
}
