package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"
)

// Config is every setting of the serve command. Each comes from a flag,
// an environment variable SWITCHBOARD_<NAME> (upper case, "-" as "_") or
// the config file, in that order of precedence, else its default.
type Config struct {
	ConfigFile string

	Listen   string
	DataDir  string
	RedisURL string

	RedisPrefix string
	RedisWait   time.Duration
	NodeTTL     time.Duration

	JWTSecret        string
	JWTSecretFile    string
	JWTPublicKeyFile string
	JWTLeeway        time.Duration
	APIKey           string
	APIKeyFile       string
	CORSOrigin       string

	DurableRooms  string
	PresenceRooms string
	DedupeWindow  time.Duration
	DedupeMaxIDs  int

	MaxPayload        int64
	MaxAttachments    int
	RoomsPerSocket    int
	RecoveryWindow    time.Duration
	AckTimeout        time.Duration
	MaxInflight       int
	BodyLimit         int64
	MaxConnections    int
	MaxHTTPConns      int
	OutboundBuffer    int
	PingInterval      time.Duration
	PingTimeout       time.Duration
	ConnectTimeout    time.Duration
	ReadHeaderTimeout time.Duration
	IdleTimeout       time.Duration
	ShutdownTimeout   time.Duration

	Sync            string
	RetentionAge    time.Duration
	RetentionEvents int
	RetentionBytes  int64

	LogLevel  string
	LogFormat string
}

// flagSet declares every setting on a FlagSet bound to c, with defaults.
func (c *Config) flagSet(stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("switchboard", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.ConfigFile, "config", "", "read settings from `FILE`: JSON ({\"listen\": \"...\"}) or key=value lines; flags and environment win")

	fs.StringVar(&c.Listen, "listen", "127.0.0.1:3000", "`ADDR`ess to listen on (port 0 picks a free port)")
	fs.StringVar(&c.DataDir, "data-dir", "./switchboard-data", "`DIR`ectory of the embedded store (switchboard.db): durable room logs and cursors")
	fs.StringVar(&c.RedisURL, "redis-url", "", "Redis `URL` (redis://[user:pass@]host:port/db): make this hub a cluster member sharing rooms, broadcasts, recovery, durable rooms, presence and publish dedupe with the other hubs on it; --data-dir is then unused")
	fs.StringVar(&c.RedisPrefix, "redis-prefix", "sb", "`PREFIX` of the hub's Redis keys (durable rooms, presence, dedupe); hubs of one cluster use the same")
	fs.DurationVar(&c.RedisWait, "redis-wait", 5*time.Second, "how long startup waits for Redis before serving alone and retrying in the background")
	fs.DurationVar(&c.NodeTTL, "node-ttl", 15*time.Second, "cluster heartbeat lifetime: a node silent this long is dead and its presence members leave")

	fs.StringVar(&c.JWTSecret, "jwt-secret", "", "HMAC `SECRET` verifying client tokens (HS256/384/512); without any JWT key the hub runs in development mode")
	fs.StringVar(&c.JWTSecretFile, "jwt-secret-file", "", "read the HMAC secret from `FILE` (trailing newline trimmed)")
	fs.StringVar(&c.JWTPublicKeyFile, "jwt-public-key-file", "", "PEM public key `FILE` verifying RS*/PS*, ES* or EdDSA client tokens")
	fs.DurationVar(&c.JWTLeeway, "jwt-leeway", 30*time.Second, "clock skew allowed on token exp and nbf (at most 60s)")
	fs.StringVar(&c.APIKey, "api-key", "", "bearer `KEY` of the HTTP API (/api/...); without it the API is open in development mode and closed otherwise")
	fs.StringVar(&c.APIKeyFile, "api-key-file", "", "read the API key from `FILE`")
	fs.StringVar(&c.CORSOrigin, "cors-origin", "", "comma-separated `ORIGINS` allowed to connect cross-origin (\"*\" for any); default none")

	fs.StringVar(&c.DurableRooms, "durable-rooms", "durable-*", "comma-separated room `PATTERNS` (Go path.Match) of durable rooms; \"\" for none")
	fs.StringVar(&c.PresenceRooms, "presence-rooms", "*", "comma-separated room `PATTERNS` whose members get switchboard:join/leave notices; \"\" for none")
	fs.DurationVar(&c.DedupeWindow, "dedupe-window", 2*time.Minute, "how long a publish id is remembered for idempotent publish")
	fs.IntVar(&c.DedupeMaxIDs, "dedupe-max-ids", 100_000, "most publish ids remembered (oldest forgotten first)")

	fs.Int64Var(&c.MaxPayload, "max-payload", 1_000_000, "largest message in `BYTES` (Engine.IO maxHttpBufferSize)")
	fs.IntVar(&c.MaxAttachments, "max-attachments", 10, "most binary attachments in one packet")
	fs.IntVar(&c.RoomsPerSocket, "rooms-per-socket", 512, "most rooms one connection may be in")
	fs.DurationVar(&c.RecoveryWindow, "recovery-window", 2*time.Minute, "connection-state recovery window; 0 turns recovery off")
	fs.DurationVar(&c.AckTimeout, "ack-timeout", 30*time.Second, "resend durable deliveries not acknowledged within this")
	fs.IntVar(&c.MaxInflight, "max-inflight", 100, "most unacknowledged durable deliveries per subscription and connection")
	fs.Int64Var(&c.BodyLimit, "body-limit", 1<<20, "largest HTTP API request body in `BYTES`")
	fs.IntVar(&c.MaxConnections, "max-connections", 10_000, "most concurrent client sessions (more get 503); 0 for no limit")
	fs.IntVar(&c.MaxHTTPConns, "max-http-conns", 20_000, "most concurrent TCP connections accepted; 0 for no limit")
	fs.IntVar(&c.OutboundBuffer, "outbound-buffer", 4<<20, "`BYTES` queued per client before it is disconnected as a slow consumer")
	fs.DurationVar(&c.PingInterval, "ping-interval", 25*time.Second, "Engine.IO ping interval")
	fs.DurationVar(&c.PingTimeout, "ping-timeout", 20*time.Second, "Engine.IO ping timeout")
	fs.DurationVar(&c.ConnectTimeout, "connect-timeout", 45*time.Second, "close connections that join no namespace within this")
	fs.DurationVar(&c.ReadHeaderTimeout, "read-header-timeout", 10*time.Second, "HTTP request header read timeout")
	fs.DurationVar(&c.IdleTimeout, "idle-timeout", 120*time.Second, "HTTP keep-alive idle timeout")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 10*time.Second, "deadline of a graceful shutdown (SIGTERM, SIGINT)")

	fs.StringVar(&c.Sync, "sync", "always", "store fsync policy: always (every publish confirmed on disk), batch, none")
	fs.DurationVar(&c.RetentionAge, "retention-age", 24*time.Hour, "durable logs keep events this long; 0 for no age bound")
	fs.IntVar(&c.RetentionEvents, "retention-events", 1_000_000, "durable logs keep this many events per room; 0 for no bound")
	fs.Int64Var(&c.RetentionBytes, "retention-bytes", 1<<30, "durable logs keep this many `BYTES` per room; 0 for no bound")

	fs.StringVar(&c.LogLevel, "log-level", "info", "log level: debug (room lifecycle, refused connections), info, warn, error")
	fs.StringVar(&c.LogFormat, "log-format", "text", "log format: text or json")
	return fs
}

// envName is the environment variable of a flag.
func envName(flagName string) string {
	return "SWITCHBOARD_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// load parses args, then fills every flag not given from the environment,
// then from the config file.
func (c *Config) load(fs *flag.FlagSet, args []string, lookupEnv func(string) (string, bool)) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var failed error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || failed != nil {
			return
		}
		if v, ok := lookupEnv(envName(f.Name)); ok {
			if err := fs.Set(f.Name, v); err != nil {
				failed = usageError{fmt.Errorf("%s: %w", envName(f.Name), err)}
			}
			set[f.Name] = true
		}
	})
	if failed != nil || c.ConfigFile == "" {
		return failed
	}
	values, err := readConfigFile(c.ConfigFile)
	if err != nil {
		return usageError{err}
	}
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k == "config" || fs.Lookup(k) == nil {
			return usageError{fmt.Errorf("%s: unknown setting %q", c.ConfigFile, k)}
		}
		if set[k] {
			continue
		}
		if err := fs.Set(k, values[k]); err != nil {
			return usageError{fmt.Errorf("%s: %s: %w", c.ConfigFile, k, err)}
		}
	}
	return nil
}

// readConfigFile reads a JSON object or key=value lines (# comments).
func readConfigFile(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	out := map[string]string{}
	if t := bytes.TrimSpace(b); len(t) > 0 && t[0] == '{' {
		dec := json.NewDecoder(bytes.NewReader(t))
		dec.UseNumber()
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			return nil, fmt.Errorf("config file %s: %w", path, err)
		}
		for k, v := range m {
			s, err := configValue(v)
			if err != nil {
				return nil, fmt.Errorf("config file %s: %s: %w", path, k, err)
			}
			out[k] = s
		}
		return out, nil
	}
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("config file %s:%d: expected key=value", path, i+1)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' && v[len(v)-1] == '"' || v[0] == '\'' && v[len(v)-1] == '\'') {
			v = v[1 : len(v)-1]
		}
		out[k] = v
	}
	return out, nil
}

func configValue(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case json.Number:
		return x.String(), nil
	case bool:
		return fmt.Sprint(x), nil
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			s, ok := e.(string)
			if !ok {
				return "", errors.New("arrays must hold strings")
			}
			parts[i] = s
		}
		return strings.Join(parts, ","), nil
	}
	return "", fmt.Errorf("unsupported value %v", v)
}

// usageError is a configuration mistake: exit status 2.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// printUsage documents every setting with its environment variable.
func printUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprint(w, `Usage: switchboard [flags]     run the hub
       switchboard version       print the version
       switchboard help          print this help

Switchboard is a Socket.IO-compatible real-time hub. Browsers connect with any
Socket.IO client (one is served at /socket.io/socket.io.js), join rooms and
publish; backends publish over the HTTP API. See docs/hub.md.

Every setting is a flag, an environment variable, or a key of the --config
file (JSON object or key=value lines), in that order of precedence.

Settings:
`)
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if name != "" {
			line += " " + name
		}
		fmt.Fprintln(w, line)
		def := ""
		if f.DefValue != "" && f.DefValue != "0" && f.DefValue != "0s" {
			def = fmt.Sprintf(" (default %q)", f.DefValue)
		}
		fmt.Fprintf(w, "      %s%s\n      env %s\n", usage, def, envName(f.Name))
	})
}
