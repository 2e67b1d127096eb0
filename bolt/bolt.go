// Package bolt implements switchboard.Store in one file on disk with
// go.etcd.io/bbolt: the embedded store of the hub (--data-dir).
//
// Writes go through one committer goroutine that groups every Append,
// SetCursor and DeleteCursor queued while the previous commit ran into one
// bbolt transaction and one fsync (group commit, with no added delay).
// Every event is stored with a CRC-32C over its offset, time and data;
// Read verifies it and returns switchboard.ErrCorrupt rather than a damaged
// event. Open verifies the whole file first and refuses a damaged one (see
// Open). docs/store.md describes the layout and gives measured figures.
package bolt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard-io/switchboard"
	bbolt "go.etcd.io/bbolt"
)

var _ switchboard.Store = (*Store)(nil)

// SyncPolicy says when appended data reaches the disk.
type SyncPolicy int

const (
	// SyncAlways fsyncs every commit before its Appends return: an
	// acknowledged event survives a crash of the machine. Concurrent writes
	// share one commit and one fsync. The default.
	SyncAlways SyncPolicy = iota
	// SyncBatch returns once the commit is written to the operating system
	// (it survives a crash of the process) and fsyncs every
	// Options.SyncInterval: a crash of the machine loses up to that much,
	// and may leave a file that Open refuses.
	SyncBatch
	// SyncNone never fsyncs but on Close. For tests and throwaway data.
	SyncNone
)

// String returns the policy's name.
func (p SyncPolicy) String() string {
	switch p {
	case SyncAlways:
		return "always"
	case SyncBatch:
		return "batch"
	case SyncNone:
		return "none"
	}
	return fmt.Sprintf("SyncPolicy(%d)", int(p))
}

// Options configures a Store. The zero value (and nil) uses every default.
type Options struct {
	// Retention bounds what each room keeps. Nil means
	// switchboard.DefaultRetention; a non-nil zero Retention keeps
	// everything.
	Retention *switchboard.Retention
	// Sync is the fsync policy; SyncAlways by default.
	Sync SyncPolicy
	// SyncInterval is how often SyncBatch fsyncs; 100 ms by default.
	SyncInterval time.Duration
	// Logger receives warnings (a damaged meta page recovered at Open) and
	// commit errors; slog.Default() by default.
	Logger *slog.Logger
}

// Limits on names, from bbolt's key size.
const (
	// MaxNameLen is the longest room or subscriber name, in bytes.
	MaxNameLen = 8 << 10
)

// Store is a switchboard.Store in a bbolt file. Its methods are safe for
// concurrent use. Reads run in parallel with each other and with the
// committer.
type Store struct {
	path string
	db   *bbolt.DB
	ret  switchboard.Retention
	sync SyncPolicy
	log  *slog.Logger

	mu     sync.RWMutex // closed; read-held while reading or queueing
	closed bool
	ops    chan *op // closed by Close; drained by the committer

	committerDone chan struct{}
	dirty         atomic.Bool        // commits not fsynced yet (SyncBatch)
	cancel        context.CancelFunc // stops the trimmer and the syncer
	wg            sync.WaitGroup     // the trimmer and the syncer

	// batchMetas holds the room metas the appends of the transaction in
	// progress changed, written to the rooms bucket once before any other
	// kind of op and at the end: a commit of thousands of appends to one
	// room reads, encodes and puts its meta once, not once per append.
	// Committer goroutine only.
	batchMetas map[string]*roomMeta
}

// op is one write for the committer.
type op struct {
	ctx  context.Context
	fn   func(tx *bbolt.Tx) error
	done func(error) // called once, by the committer after the commit
	// batchesMeta: fn reads and changes room metas through s.batchMetas
	// (appends); the other ops see the rooms bucket after a flush.
	batchesMeta bool
}

// maxBatch bounds the operations in one commit.
const maxBatch = 4096

// Open opens the store in the file at path, creating it if it does not
// exist. Only one process may open a file at a time; Open waits a second
// for the lock, then fails.
//
// Open checks an existing file before using it: both bbolt meta pages, the
// file size against the last commit, every page of the B+tree and the
// freelist, and the checksum of every record. A file that fails is
// refused with an error wrapping switchboard.ErrCorrupt that names the file
// and what is wrong; nothing is changed in it, so it can be inspected or
// restored from a backup (moving it aside starts an empty store, and every
// room a new epoch). One exception: when one of the two meta pages is
// damaged, bbolt falls back to the previous commit (its crash recovery);
// Open then logs a warning and gives every room a new epoch, because the
// last commit may be lost.
func Open(path string, opts *Options) (*Store, error) {
	if opts == nil {
		opts = &Options{}
	}
	s := &Store{
		path:          path,
		ret:           switchboard.DefaultRetention,
		sync:          opts.Sync,
		log:           opts.Logger,
		ops:           make(chan *op, maxBatch),
		committerDone: make(chan struct{}),
	}
	if opts.Retention != nil {
		s.ret = *opts.Retention
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.sync < SyncAlways || s.sync > SyncNone {
		return nil, fmt.Errorf("bolt: %s: unknown sync policy %d", path, int(s.sync))
	}
	syncInterval := opts.SyncInterval
	if syncInterval <= 0 {
		syncInterval = 100 * time.Millisecond
	}

	fresh := false
	if fi, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		fresh = true
	} else if err != nil {
		return nil, fmt.Errorf("bolt: %w", err)
	} else if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("bolt: %s: not a regular file", path)
	}
	var metaWarning string
	if !fresh {
		w, err := checkFile(path)
		if err != nil {
			return nil, err
		}
		metaWarning = w
	}

	db, err := openDB(path, s.sync != SyncAlways)
	if err != nil {
		return nil, err
	}
	s.db = db
	if err := s.prepare(fresh, metaWarning); err != nil {
		db.Close()
		return nil, err
	}

	go s.commitLoop()
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	if s.sync == SyncBatch {
		s.wg.Add(1)
		go s.syncLoop(ctx, syncInterval)
	}
	if s.ret.MaxAge > 0 {
		s.wg.Add(1)
		go s.trimLoop(ctx)
	}
	return s, nil
}

// openDB opens the bbolt file, turning a panic of bbolt (a damaged page)
// into an error.
func openDB(path string, noSync bool) (db *bbolt.DB, err error) {
	var file *os.File
	defer func() {
		if r := recover(); r != nil {
			if file != nil {
				file.Close() // releases the lock; the mapping stays
			}
			db, err = nil, fmt.Errorf("bolt: %s: %w: bbolt failed opening it: %v", path, switchboard.ErrCorrupt, r)
		}
	}()
	old := debug.SetPanicOnFault(true)
	defer debug.SetPanicOnFault(old)
	db, err = bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout:      time.Second,
		NoSync:       noSync,
		FreelistType: bbolt.FreelistMapType,
		OpenFile: func(name string, flag int, perm os.FileMode) (*os.File, error) {
			f, err := os.OpenFile(name, flag, perm)
			file = f
			return f, err
		},
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: %s: %w", path, err)
	}
	return db, nil
}

// prepare creates the buckets of a new file, or verifies an existing one.
func (s *Store) prepare(fresh bool, metaWarning string) error {
	if fresh {
		return s.guard(func() error {
			return s.db.Update(func(tx *bbolt.Tx) error {
				for _, b := range allBuckets {
					if _, err := tx.CreateBucketIfNotExists(b); err != nil {
						return err
					}
				}
				return tx.Bucket(bucketMeta).Put(keyFormat, []byte(formatVersion))
			})
		})
	}
	if err := s.guard(func() error { return s.db.View(s.verify) }); err != nil {
		return err
	}
	if metaWarning == "" {
		return nil
	}
	var rooms []string
	err := s.guard(func() error {
		return s.db.Update(func(tx *bbolt.Tx) error {
			var err error
			rooms, err = renewEpochs(tx)
			return err
		})
	})
	if err != nil {
		return fmt.Errorf("bolt: %s: renewing epochs after a damaged meta page: %w", s.path, err)
	}
	s.log.Warn("bolt: store recovered from a damaged meta page; the last commit before the damage may be lost, so every room has a new epoch",
		"file", s.path, "detail", metaWarning, "rooms", len(rooms))
	return nil
}

// guard runs fn, turning a panic in bbolt (a damaged page) into an error.
func (s *Store) guard(fn func() error) (err error) {
	old := debug.SetPanicOnFault(true)
	defer debug.SetPanicOnFault(old)
	defer func() {
		if r := recover(); r != nil {
			err = s.corrupt("bbolt failed: %v", r)
		}
	}()
	return fn()
}

// corrupt returns an error wrapping switchboard.ErrCorrupt naming the file.
func (s *Store) corrupt(format string, args ...any) error {
	return fmt.Errorf("bolt: %s: %w: %s", s.path, switchboard.ErrCorrupt, fmt.Sprintf(format, args...))
}

// view runs fn in a read transaction.
func (s *Store) view(ctx context.Context, fn func(tx *bbolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return switchboard.ErrStoreClosed
	}
	return s.guard(func() error { return s.db.View(fn) })
}

// write queues fn for the committer and waits until its commit is done
// (durable per the sync policy). If ctx ends first, write returns its
// error and fn may or may not be committed.
func (s *Store) write(ctx context.Context, fn func(tx *bbolt.Tx) error) error {
	return s.writeOp(ctx, fn, false)
}

func (s *Store) writeOp(ctx context.Context, fn func(tx *bbolt.Tx) error, batchesMeta bool) error {
	result := make(chan error, 1)
	if !s.enqueueOp(ctx, fn, batchesMeta, func(err error) { result <- err }) {
		return <-result
	}
	select {
	case err := <-result:
		return err
	case <-ctx.Done():
		select {
		case err := <-result:
			return err
		default:
			return ctx.Err()
		}
	}
}

// enqueue queues fn for the committer, which calls done after the commit.
// When fn cannot be queued (ctx ended, store closed) done is called at once
// and enqueue reports false. Calls from one goroutine commit in call order.
func (s *Store) enqueue(ctx context.Context, fn func(tx *bbolt.Tx) error, done func(error)) bool {
	return s.enqueueOp(ctx, fn, false, done)
}

func (s *Store) enqueueOp(ctx context.Context, fn func(tx *bbolt.Tx) error, batchesMeta bool, done func(error)) bool {
	if err := ctx.Err(); err != nil {
		done(err)
		return false
	}
	o := &op{ctx: ctx, fn: fn, done: done, batchesMeta: batchesMeta}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		done(switchboard.ErrStoreClosed)
		return false
	}
	select {
	case s.ops <- o:
	case <-ctx.Done():
		s.mu.RUnlock()
		done(ctx.Err())
		return false
	}
	s.mu.RUnlock()
	return true
}

// commitLoop is the committer: it takes every operation queued, runs them
// in one transaction and answers them all after the commit.
func (s *Store) commitLoop() {
	defer close(s.committerDone)
	debug.SetPanicOnFault(true)
	batch := make([]*op, 0, 64)
	for o := range s.ops {
		batch = append(batch[:0], o)
		closed := false
	drain:
		for len(batch) < maxBatch {
			select {
			case o, ok := <-s.ops:
				if !ok {
					closed = true
					break drain
				}
				batch = append(batch, o)
			default:
				break drain
			}
		}
		if s.commit(batch) {
			s.dirty.Store(true)
		}
		clear(batch)
		if closed {
			return
		}
	}
}

// syncLoop fsyncs the file every interval when commits were written since
// the last fsync (SyncBatch). It runs beside the committer, not in its way.
func (s *Store) syncLoop(ctx context.Context, interval time.Duration) {
	defer s.wg.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if s.dirty.Swap(false) {
				if err := s.db.Sync(); err != nil {
					s.dirty.Store(true)
					s.log.Error("bolt: fsync failed", "file", s.path, "err", err)
				}
			}
		}
	}
}

// commit runs batch in one transaction and answers every op. An op whose
// function fails is answered with its error and the others are retried
// without it. It reports whether anything was committed.
func (s *Store) commit(batch []*op) bool {
	live := make([]*op, 0, len(batch))
	for _, o := range batch {
		if err := o.ctx.Err(); err != nil {
			o.done(err) // not written: the caller gave up
			continue
		}
		live = append(live, o)
	}
	for len(live) > 0 {
		failed, failErr := -1, error(nil)
		err := s.guard(func() error {
			return s.db.Update(func(tx *bbolt.Tx) error {
				clear(s.batchMetas) // a rolled-back attempt's metas are void
				for i, o := range live {
					if !o.batchesMeta {
						if err := s.flushMetas(tx); err != nil {
							return err
						}
					}
					if err := s.guard(func() error { return o.fn(tx) }); err != nil {
						failed, failErr = i, err
						return err
					}
				}
				return s.flushMetas(tx)
			})
		})
		if failed >= 0 {
			live[failed].done(failErr)
			live = append(live[:failed], live[failed+1:]...)
			continue
		}
		if err != nil {
			s.log.Error("bolt: commit failed", "file", s.path, "ops", len(live), "err", err)
			err = fmt.Errorf("bolt: %s: commit: %w", s.path, err)
		}
		for _, o := range live {
			o.done(err)
		}
		return err == nil
	}
	return false
}

// flushMetas writes the metas batched by appends to the rooms bucket.
func (s *Store) flushMetas(tx *bbolt.Tx) error {
	if len(s.batchMetas) == 0 {
		return nil
	}
	rooms := tx.Bucket(bucketRooms)
	for room, m := range s.batchMetas {
		if err := rooms.Put([]byte(room), m.encode(room)); err != nil {
			return err
		}
	}
	clear(s.batchMetas)
	return nil
}

// Close waits for the writes already queued, stops the background work,
// fsyncs and closes the file. Later calls, Close included, return
// switchboard.ErrStoreClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return switchboard.ErrStoreClosed
	}
	s.closed = true
	close(s.ops)
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	<-s.committerDone
	var err error
	if s.sync != SyncAlways {
		err = s.db.Sync()
	}
	if cerr := s.db.Close(); cerr != nil {
		err = errors.Join(err, cerr)
	}
	if err != nil {
		return fmt.Errorf("bolt: %s: close: %w", s.path, err)
	}
	return nil
}

// Path returns the file the store is in.
func (s *Store) Path() string { return s.path }

// trimInterval is how often the age trimmer runs for maxAge: a tenth of it,
// between 10 ms and a minute.
func trimInterval(maxAge time.Duration) time.Duration {
	return min(max(maxAge/10, 10*time.Millisecond), time.Minute)
}

func (s *Store) trimLoop(ctx context.Context) {
	defer s.wg.Done()
	t := time.NewTicker(trimInterval(s.ret.MaxAge))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if err := s.trimAge(ctx, now.Add(-s.ret.MaxAge)); err != nil && ctx.Err() == nil {
				s.log.Error("bolt: trimming by age failed", "file", s.path, "err", err)
			}
		}
	}
}
