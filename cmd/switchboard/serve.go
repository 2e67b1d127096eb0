package main

import (
	"context"
	"crypto"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/switchboard-io/switchboard"
	"github.com/switchboard-io/switchboard/bolt"
	"github.com/switchboard-io/switchboard/engineio"
	"github.com/switchboard-io/switchboard/hub"
	"github.com/switchboard-io/switchboard/redis"
)

// ServeCommand runs the hub until its context ends, then shuts down
// gracefully.
type ServeCommand struct {
	Main   *Main
	Config Config
}

// Run parses the settings, starts the hub and serves until ctx ends.
func (c *ServeCommand) Run(ctx context.Context, args []string) error {
	m := c.Main
	fs := c.Config.flagSet(m.Stderr)
	fs.Usage = func() { printUsage(m.Stderr, fs) }
	lookup := m.LookupEnv
	if lookup == nil {
		lookup = func(string) (string, bool) { return "", false }
	}
	if err := c.Config.load(fs, args, lookup); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		var ue usageError
		if !errors.As(err, &ue) {
			err = usageError{err} // flag parse errors
		}
		return err
	}
	cfg := &c.Config
	logger, err := newLogger(m.Stderr, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return usageError{err}
	}
	hcfg, err := c.hubConfig(logger)
	if err != nil {
		return usageError{err}
	}

	// Cluster, or a single node with its embedded store.
	var (
		cluster    *redis.Cluster
		rclient    *goredis.Client
		store      switchboard.Store
		storeWhere string
	)
	if cfg.RedisURL != "" {
		if strings.ContainsAny(cfg.RedisPrefix, "{}") || cfg.RedisPrefix == "" {
			return usageError{fmt.Errorf("--redis-prefix %q: must be non-empty, without { or }", cfg.RedisPrefix)}
		}
		ropts, err := goredis.ParseURL(cfg.RedisURL)
		if err != nil {
			return usageError{fmt.Errorf("--redis-url: %w", err)}
		}
		rclient = goredis.NewClient(ropts)
		defer rclient.Close()
		cluster = redis.New(rclient, &redis.Options{Logger: logger})
		defer cluster.Close()
		hcfg.Server.Adapter = cluster.Adapter
		hcfg.Ready = cluster.Err
		hcfg.Redis = rclient
		hcfg.RedisPrefix = cfg.RedisPrefix
		hcfg.NodeTTL = cfg.NodeTTL
		// Redis down at start: say so clearly, serve this node's clients
		// alone (/readyz answers 503) and keep retrying in the background
		// (the adapter, the store and presence all retry with backoff).
		wctx, cancel := context.WithTimeout(ctx, cfg.RedisWait)
		if err := cluster.WaitReady(wctx); err != nil {
			logger.Error("Redis is not reachable: serving this node alone, /readyz answers 503, retrying in the background",
				"redis", ropts.Addr, "err", err)
		}
		cancel()
		store = redis.NewStore(rclient, &redis.StoreOptions{
			Prefix:    cfg.RedisPrefix,
			Retention: c.retention(),
			Logger:    logger,
		})
		storeWhere = "redis://" + ropts.Addr + " prefix " + cfg.RedisPrefix
		logger.Info("cluster mode: rooms, broadcasts, recovery, durable rooms, presence and publish dedupe shared through Redis; "+
			"--data-dir is not used", "redis", ropts.Addr, "prefix", cfg.RedisPrefix)
	} else {
		if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
			return fmt.Errorf("data directory: %w", err)
		}
		storeWhere = filepath.Join(cfg.DataDir, "switchboard.db")
		b, err := bolt.Open(storeWhere, c.boltOptions(logger))
		if err != nil {
			return fmt.Errorf("opening the store: %w", err)
		}
		store = b
	}
	storeClosed := false
	closeStore := func() error {
		if storeClosed {
			return nil
		}
		storeClosed = true
		return store.Close()
	}
	defer closeStore()
	hcfg.Server.Store = store

	h, err := hub.New(hcfg)
	if err != nil {
		return usageError{err}
	}
	if h.DevMode() {
		logger.Warn("DEVELOPMENT MODE: no --jwt-secret or --jwt-public-key-file; any client may connect, " +
			"name its identity ({clientId} in the auth payload), join and publish to any room. Do not expose this server.")
		if cfg.APIKey == "" {
			logger.Warn("the HTTP API (/api/...) is open to anyone: no --api-key")
		}
	} else if cfg.APIKey == "" {
		logger.Warn("no --api-key: the HTTP API (/api/...) answers 401")
	}

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		_ = h.Close(context.Background())
		return err
	}
	if cfg.MaxHTTPConns > 0 {
		ln = newLimitListener(ln, cfg.MaxHTTPConns)
	}
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
	}
	addr := ln.Addr().String()
	logger.Info("switchboard listening", "url", "http://"+addr, "addr", addr, "version", Version(),
		"data", storeWhere, "durable_rooms", cfg.DurableRooms, "presence_rooms", cfg.PresenceRooms,
		"recovery_window", cfg.RecoveryWindow.String())

	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		_ = h.Close(context.Background())
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	if m.StopSignals != nil {
		m.StopSignals()
	}

	// Graceful shutdown: stop accepting, disconnect the clients with a
	// recoverable reason, save what they acknowledged, close the store.
	logger.Info("shutting down", "deadline", cfg.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	h.Drain()
	var wg sync.WaitGroup
	var shutdownErr error
	wg.Add(1)
	go func() { defer wg.Done(); shutdownErr = hs.Shutdown(sctx) }() // closes the listener at once
	closeErr := h.Close(sctx)
	wg.Wait()
	<-errc // Serve returned ErrServerClosed
	storeErr := closeStore()
	if cluster != nil {
		_ = cluster.Close()
	}
	if err := errors.Join(closeErr, shutdownErr, storeErr); err != nil {
		hs.Close()
		return fmt.Errorf("shutdown: %w", err)
	}
	logger.Info("stopped")
	return nil
}

func (c *ServeCommand) hubConfig(logger *slog.Logger) (*hub.Config, error) {
	cfg := &c.Config
	durable, err := hub.ParsePatterns(cfg.DurableRooms)
	if err != nil {
		return nil, fmt.Errorf("--durable-rooms: %w", err)
	}
	presence, err := hub.ParsePatterns(cfg.PresenceRooms)
	if err != nil {
		return nil, fmt.Errorf("--presence-rooms: %w", err)
	}
	secret := []byte(cfg.JWTSecret)
	if cfg.JWTSecretFile != "" {
		if len(secret) > 0 {
			return nil, errors.New("give --jwt-secret or --jwt-secret-file, not both")
		}
		if secret, err = readSecret(cfg.JWTSecretFile); err != nil {
			return nil, fmt.Errorf("--jwt-secret-file: %w", err)
		}
	}
	if n := len(secret); n > 0 && n < 32 {
		logger.Warn("the JWT secret is shorter than 32 bytes; use a long random secret", "bytes", n)
	}
	var public crypto.PublicKey
	if cfg.JWTPublicKeyFile != "" {
		b, err := os.ReadFile(cfg.JWTPublicKeyFile)
		if err != nil {
			return nil, fmt.Errorf("--jwt-public-key-file: %w", err)
		}
		if public, err = hub.ParsePublicKey(b); err != nil {
			return nil, fmt.Errorf("--jwt-public-key-file %s: %w", cfg.JWTPublicKeyFile, err)
		}
	}
	if cfg.JWTLeeway < 0 || cfg.JWTLeeway > hub.MaxLeeway {
		return nil, fmt.Errorf("--jwt-leeway %v: must be between 0 and %v", cfg.JWTLeeway, hub.MaxLeeway)
	}
	apiKey := cfg.APIKey
	if cfg.APIKeyFile != "" {
		if apiKey != "" {
			return nil, errors.New("give --api-key or --api-key-file, not both")
		}
		b, err := readSecret(cfg.APIKeyFile)
		if err != nil {
			return nil, fmt.Errorf("--api-key-file: %w", err)
		}
		apiKey = string(b)
		cfg.APIKey = apiKey
	}
	for _, check := range []struct {
		name string
		bad  bool
	}{
		{"--max-payload", cfg.MaxPayload <= 0}, {"--max-attachments", cfg.MaxAttachments <= 0},
		{"--rooms-per-socket", cfg.RoomsPerSocket <= 0}, {"--recovery-window", cfg.RecoveryWindow < 0},
		{"--ack-timeout", cfg.AckTimeout <= 0}, {"--max-inflight", cfg.MaxInflight <= 0},
		{"--body-limit", cfg.BodyLimit <= 0}, {"--max-connections", cfg.MaxConnections < 0},
		{"--max-http-conns", cfg.MaxHTTPConns < 0}, {"--outbound-buffer", cfg.OutboundBuffer <= 0},
		{"--ping-interval", cfg.PingInterval <= 0}, {"--ping-timeout", cfg.PingTimeout <= 0},
		{"--connect-timeout", cfg.ConnectTimeout <= 0}, {"--read-header-timeout", cfg.ReadHeaderTimeout <= 0},
		{"--idle-timeout", cfg.IdleTimeout <= 0}, {"--shutdown-timeout", cfg.ShutdownTimeout <= 0},
		{"--dedupe-window", cfg.DedupeWindow <= 0}, {"--dedupe-max-ids", cfg.DedupeMaxIDs <= 0},
		{"--retention-age", cfg.RetentionAge < 0}, {"--retention-events", cfg.RetentionEvents < 0},
		{"--retention-bytes", cfg.RetentionBytes < 0},
		{"--redis-wait", cfg.RedisWait < 0}, {"--node-ttl", cfg.NodeTTL < 3*time.Millisecond},
	} {
		if check.bad {
			return nil, fmt.Errorf("%s: value out of range", check.name)
		}
	}
	if _, err := syncPolicy(cfg.Sync); err != nil {
		return nil, err
	}
	eng := engineio.Options{
		PingInterval:      cfg.PingInterval,
		PingTimeout:       cfg.PingTimeout,
		MaxHTTPBufferSize: cfg.MaxPayload,
		MaxBufferedBytes:  cfg.OutboundBuffer,
		MaxConnections:    cfg.MaxConnections,
		Logger:            logger,
	}
	if origins := splitList(cfg.CORSOrigin); len(origins) > 0 {
		eng.CORS = &engineio.CORSOptions{Origins: origins, Credentials: true}
	}
	opts := switchboard.Options{
		Engine:            eng,
		ConnectTimeout:    cfg.ConnectTimeout,
		MaxAttachments:    cfg.MaxAttachments,
		MaxRoomsPerSocket: cfg.RoomsPerSocket,
		Durable:           switchboard.DurableOptions{AckTimeout: cfg.AckTimeout, MaxInflight: cfg.MaxInflight},
		Logger:            logger,
	}
	if cfg.RecoveryWindow > 0 {
		opts.ConnectionStateRecovery = &switchboard.RecoveryOptions{MaxDisconnectionDuration: cfg.RecoveryWindow}
	}
	return &hub.Config{
		Server:        opts,
		JWTSecret:     secret,
		JWTPublicKey:  public,
		JWTLeeway:     cfg.JWTLeeway,
		APIKey:        apiKey,
		DurableRooms:  durable,
		PresenceRooms: presence,
		DedupeWindow:  cfg.DedupeWindow,
		DedupeMaxIDs:  cfg.DedupeMaxIDs,
		MaxBodyBytes:  cfg.BodyLimit,
		Version:       Version(),
		Logger:        logger,
	}, nil
}

func (c *ServeCommand) retention() *switchboard.Retention {
	return &switchboard.Retention{
		MaxAge: c.Config.RetentionAge, MaxEvents: c.Config.RetentionEvents, MaxBytes: c.Config.RetentionBytes,
	}
}

func (c *ServeCommand) boltOptions(logger *slog.Logger) *bolt.Options {
	sync, _ := syncPolicy(c.Config.Sync)
	return &bolt.Options{Retention: c.retention(), Sync: sync, Logger: logger}
}

func syncPolicy(s string) (bolt.SyncPolicy, error) {
	switch s {
	case "always":
		return bolt.SyncAlways, nil
	case "batch":
		return bolt.SyncBatch, nil
	case "none":
		return bolt.SyncNone, nil
	}
	return 0, fmt.Errorf("--sync %q: want always, batch or none", s)
}

func readSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	b = []byte(strings.TrimRight(string(b), "\r\n"))
	if len(b) == 0 {
		return nil, fmt.Errorf("%s is empty", path)
	}
	return b, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

// limitListener accepts at most n connections at a time; Accept waits for
// one to close beyond that (the kernel's backlog holds the others).
type limitListener struct {
	net.Listener
	sem  chan struct{}
	done chan struct{}
	once sync.Once
}

func newLimitListener(l net.Listener, n int) net.Listener {
	return &limitListener{Listener: l, sem: make(chan struct{}, n), done: make(chan struct{})}
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.sem <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.sem }}, nil
}

func (l *limitListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
