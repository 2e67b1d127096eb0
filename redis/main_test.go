package redis_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/switchboard-io/switchboard"
	"github.com/switchboard-io/switchboard/adaptertest"
	"github.com/switchboard-io/switchboard/redis"
)

func TestMain(m *testing.M) {
	if os.Getenv(childNodeEnv) != "" {
		runChildNode() // a node process for TestDurableNodeKilled; never returns
	}
	goleak.VerifyTestMain(m)
}

// redisAddr is the shared Redis of the tests; SWITCHBOARD_REDIS_ADDR
// overrides it.
func redisAddr() string {
	if a := os.Getenv("SWITCHBOARD_REDIS_ADDR"); a != "" {
		return a
	}
	return "127.0.0.1:6379"
}

// requireOrSkip skips the test, loudly, or fails it when
// SWITCHBOARD_REQUIRE_ALL=1.
func requireOrSkip(t *testing.T, reason string) {
	t.Helper()
	if os.Getenv("SWITCHBOARD_REQUIRE_ALL") == "1" {
		t.Fatalf("SWITCHBOARD_REQUIRE_ALL=1 but %s", reason)
	}
	t.Skipf("SKIPPING: %s", reason)
}

// sharedRedis returns a client of the shared Redis, closed at the end of
// the test, or skips the test when Redis does not answer.
func sharedRedis(t *testing.T) *goredis.Client {
	t.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: redisAddr()})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		_ = c.Close()
		requireOrSkip(t, fmt.Sprintf("no Redis at %s: %v", redisAddr(), err))
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// runID keeps the keys of concurrent test runs apart.
var runID = func() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}()

// isolated returns adapter options whose stream, channels and session keys
// belong to this test only, and deletes its keys afterwards.
func isolated(t *testing.T, c *goredis.Client) *redis.Options {
	t.Helper()
	name := "sbtest:" + runID + ":" + strings.ReplaceAll(t.Name(), "/", ":")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		keys, _ := c.Keys(ctx, name+"*").Result()
		if len(keys) > 0 {
			c.Del(ctx, keys...)
		}
	})
	return &redis.Options{StreamName: name, ChannelPrefix: name, SessionKeyPrefix: name + ":session:"}
}

// TestAdapterSuite runs the shared adapter suite on three nodes, in the
// compatible single-stream mode and sharded (one stream per namespace), each
// with and without connection-state recovery.
func TestAdapterSuite(t *testing.T) {
	c := sharedRedis(t)
	for _, mode := range []struct {
		name              string
		sharded, recovery bool
	}{
		{"single-stream", false, false},
		{"single-stream-recovery", false, true},
		{"sharded", true, false},
		{"sharded-recovery", true, true},
	} {
		t.Run(mode.name, func(t *testing.T) {
			opts := map[string]*redis.Options{}
			adaptertest.Run(t, 3, func(t *testing.T) *switchboard.Server {
				o := opts[t.Name()]
				if o == nil {
					o = isolated(t, c)
					o.Sharded = mode.sharded
					opts[t.Name()] = o
				}
				so := &switchboard.Options{Adapter: redis.NewAdapter(c, o)}
				if mode.recovery {
					so.ConnectionStateRecovery = &switchboard.RecoveryOptions{}
				}
				return switchboard.NewServer(so)
			})
		})
	}
}

// privateRedis starts a redis-server of its own on a free port (for tests
// that stop or restart Redis) and returns its address and a restart
// function that kills it and starts it again on the same port.
type privateRedis struct {
	t    *testing.T
	addr string
	port int
	dir  string
	args []string
	cmd  *exec.Cmd
}

func startPrivateRedis(t *testing.T, args ...string) *privateRedis {
	t.Helper()
	r := reservePrivateRedis(t, args...)
	r.start()
	return r
}

// reservePrivateRedis picks a free port and a directory for a private
// redis-server without starting it.
func reservePrivateRedis(t *testing.T, args ...string) *privateRedis {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		requireOrSkip(t, "redis-server is not installed")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	r := &privateRedis{t: t, port: port, addr: "127.0.0.1:" + strconv.Itoa(port), dir: t.TempDir(), args: args}
	t.Cleanup(func() { r.kill(os.Kill) })
	return r
}

func (r *privateRedis) start() {
	r.t.Helper()
	args := append([]string{"--port", strconv.Itoa(r.port), "--bind", "127.0.0.1", "--save", "",
		"--dir", r.dir, "--logfile", filepath.Join(r.dir, "redis.log")}, r.args...)
	r.cmd = exec.Command("redis-server", args...)
	if err := r.cmd.Start(); err != nil {
		r.t.Fatalf("start redis-server: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		c := goredis.NewClient(&goredis.Options{Addr: r.addr, MaxRetries: -1})
		err := c.Ping(context.Background()).Err()
		_ = c.Close()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("redis-server on %s did not start: %v", r.addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill stops the server with sig and waits for it to exit.
func (r *privateRedis) kill(sig os.Signal) {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	_ = r.cmd.Process.Signal(sig)
	_ = r.cmd.Wait()
	r.cmd = nil
}
