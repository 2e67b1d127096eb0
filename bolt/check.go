package bolt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"

	"github.com/switchboard-io/switchboard"
	bbolt "go.etcd.io/bbolt"
)

// bbolt's on-disk format (version 2), read here to check a file before
// bbolt maps it: bbolt trusts its pages and panics, faults or loops on
// damaged ones, so checkFile makes sure every page bbolt will reach is sound.
const (
	boltMagic        = 0xED0CDAED
	boltVersion      = 2
	pageHeaderSize   = 16 // id u64, flags u16, count u16, overflow u32
	elemSize         = 16 // branch: pos, ksize u32, pgid u64; leaf: flags, pos, ksize, vsize u32
	branchPageFlag   = 0x01
	leafPageFlag     = 0x02
	metaPageFlag     = 0x04
	freelistPageFlag = 0x10
	bucketLeafFlag   = 0x01
	inBucketSize     = 16 // root pgid u64, sequence u64
	noFreelist       = ^uint64(0)
	metaChecksumAt   = 56 // bytes of the meta covered by its FNV-64a checksum
	maxTreeDepth     = 64
)

var ne = binary.NativeEndian // bbolt writes in the machine's byte order

// boltMeta is a bbolt meta page.
type boltMeta struct {
	pageSize uint32
	root     uint64
	freelist uint64
	pgid     uint64 // high water mark: pages in use are below it
	txid     uint64
}

// parseMeta decodes the meta page at the start of p.
func parseMeta(p []byte) (boltMeta, error) {
	if len(p) < pageHeaderSize+metaChecksumAt+8 {
		return boltMeta{}, errors.New("short page")
	}
	if ne.Uint16(p[8:])&metaPageFlag == 0 {
		return boltMeta{}, errors.New("not a meta page")
	}
	m := p[pageHeaderSize:]
	if ne.Uint32(m[0:]) != boltMagic {
		return boltMeta{}, errors.New("bad magic number")
	}
	if v := ne.Uint32(m[4:]); v != boltVersion {
		return boltMeta{}, fmt.Errorf("bbolt format version %d, want %d", v, boltVersion)
	}
	h := fnv.New64a()
	h.Write(m[:metaChecksumAt])
	if h.Sum64() != ne.Uint64(m[metaChecksumAt:]) {
		return boltMeta{}, errors.New("checksum mismatch")
	}
	bm := boltMeta{
		pageSize: ne.Uint32(m[8:]),
		root:     ne.Uint64(m[16:]),
		freelist: ne.Uint64(m[32:]),
		pgid:     ne.Uint64(m[40:]),
		txid:     ne.Uint64(m[48:]),
	}
	if bm.pageSize < 1024 || bm.pageSize > 1<<20 || bm.pageSize&(bm.pageSize-1) != 0 {
		return boltMeta{}, fmt.Errorf("bad page size %d", bm.pageSize)
	}
	return bm, nil
}

// checkFile checks the bbolt file at path: its meta pages, its size and
// every page reachable from the current meta. It returns an error wrapping
// switchboard.ErrCorrupt for a damaged file, and a warning when one meta
// page is damaged but the other is sound.
func checkFile(path string) (warning string, err error) {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("bolt: %s: %w: %s", path, switchboard.ErrCorrupt, fmt.Sprintf(format, args...))
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("bolt: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("bolt: %w", err)
	}
	size := fi.Size()
	if size == 0 {
		return "", fail("the file is empty (truncated?); a store file never is. Remove it to start an empty store")
	}

	// Meta page 0 says the page size; if it is damaged, try the usual ones
	// for page 1.
	head := make([]byte, 4096)
	n, _ := f.ReadAt(head, 0)
	m0, err0 := parseMeta(head[:n])
	var m1 boltMeta
	err1 := errors.New("not found")
	sizes := []int64{4096, 8192, 16384, 65536, 1024, 2048, 32768}
	if err0 == nil {
		sizes = []int64{int64(m0.pageSize)}
	}
	for _, ps := range sizes {
		p := make([]byte, 4096)
		n, _ := f.ReadAt(p, ps)
		if m, err := parseMeta(p[:n]); err == nil && int64(m.pageSize) == ps {
			m1, err1 = m, nil
			break
		} else if err0 == nil {
			err1 = err
		}
	}
	var m boltMeta
	switch {
	case err0 != nil && err1 != nil:
		return "", fail("not a bbolt file, or both meta pages are damaged (page 0: %v; page 1: %v)", err0, err1)
	case err0 != nil:
		m, warning = m1, fmt.Sprintf("meta page 0 is damaged (%v); using meta page 1 (transaction %d)", err0, m1.txid)
	case err1 != nil:
		m, warning = m0, fmt.Sprintf("meta page 1 is damaged (%v); using meta page 0 (transaction %d)", err1, m0.txid)
	case m1.txid > m0.txid:
		m = m1
	default:
		m = m0
	}
	if err0 == nil && err1 == nil && m0.pageSize != m1.pageSize {
		return "", fail("meta pages disagree on the page size (%d, %d)", m0.pageSize, m1.pageSize)
	}
	ps := int64(m.pageSize)
	if need := int64(m.pgid) * ps; m.pgid < 2 || need/ps != int64(m.pgid) || size < need {
		return "", fail("the file is truncated: it has %d bytes, its last commit (transaction %d) needs %d", size, m.txid, int64(m.pgid)*ps)
	}

	c := &checker{f: f, ps: ps, hwm: m.pgid, seen: make([]bool, m.pgid)}
	c.seen[0], c.seen[1] = true, true
	if err := c.bucket(m.root, 0); err != nil {
		return "", fail("page tree: %v", err)
	}
	if err := c.freelist(m.freelist); err != nil {
		return "", fail("freelist: %v", err)
	}
	return warning, nil
}

// checker walks bbolt's pages.
type checker struct {
	f    io.ReaderAt
	ps   int64
	hwm  uint64
	seen []bool // reachable or free
}

// page reads page id and its overflow pages, marking them seen.
func (c *checker) page(id uint64) ([]byte, error) {
	if id < 2 || id >= c.hwm {
		return nil, fmt.Errorf("page %d: out of range [2, %d)", id, c.hwm)
	}
	hdr := make([]byte, pageHeaderSize)
	if _, err := c.f.ReadAt(hdr, int64(id)*c.ps); err != nil {
		return nil, fmt.Errorf("page %d: %v", id, err)
	}
	if got := ne.Uint64(hdr); got != id {
		return nil, fmt.Errorf("page %d: header says page %d", id, got)
	}
	over := uint64(ne.Uint32(hdr[12:]))
	if over >= c.hwm-id {
		return nil, fmt.Errorf("page %d: %d overflow pages run past the end", id, over)
	}
	for i := id; i <= id+over; i++ {
		if c.seen[i] {
			return nil, fmt.Errorf("page %d: referenced twice", i)
		}
		c.seen[i] = true
	}
	p := make([]byte, int64(over+1)*c.ps)
	if _, err := c.f.ReadAt(p, int64(id)*c.ps); err != nil {
		return nil, fmt.Errorf("page %d: %v", id, err)
	}
	return p, nil
}

// bucket checks the bucket whose root page is root.
func (c *checker) bucket(root uint64, depth int) error {
	_, err := c.tree(root, nil, nil, depth)
	return err
}

// tree checks the subtree at page id: its keys must be in [lo, hi) (nil:
// unbounded) and increasing. It returns the largest key.
func (c *checker) tree(id uint64, lo, hi []byte, depth int) ([]byte, error) {
	if depth > maxTreeDepth {
		return nil, fmt.Errorf("page %d: tree deeper than %d", id, maxTreeDepth)
	}
	p, err := c.page(id)
	if err != nil {
		return nil, err
	}
	flags, count := ne.Uint16(p[8:]), int(ne.Uint16(p[10:]))
	if pageHeaderSize+count*elemSize > len(p) {
		return nil, fmt.Errorf("page %d: %d elements do not fit", id, count)
	}
	switch flags {
	case branchPageFlag:
		if count == 0 {
			return nil, fmt.Errorf("page %d: empty branch page", id)
		}
		prev := lo
		var last []byte
		for i := 0; i < count; i++ {
			key, child, err := branchElem(p, i)
			if err != nil {
				return nil, fmt.Errorf("page %d: %v", id, err)
			}
			if i == 0 && lo != nil && bytes.Compare(lo, key) > 0 || i > 0 && bytes.Compare(prev, key) >= 0 ||
				hi != nil && bytes.Compare(key, hi) >= 0 {
				return nil, fmt.Errorf("page %d: key %d out of order", id, i)
			}
			next := hi
			if i+1 < count {
				if next, _, err = branchElem(p, i+1); err != nil {
					return nil, fmt.Errorf("page %d: %v", id, err)
				}
			}
			if last, err = c.tree(child, key, next, depth+1); err != nil {
				return nil, err
			}
			prev = last
		}
		return last, nil
	case leafPageFlag:
		return c.leaf(id, p, lo, hi, depth, false)
	}
	return nil, fmt.Errorf("page %d: not a branch or leaf page (flags %#x)", id, flags)
}

func branchElem(p []byte, i int) (key []byte, child uint64, err error) {
	e := pageHeaderSize + i*elemSize
	pos, ksize := int(ne.Uint32(p[e:])), int(ne.Uint32(p[e+4:]))
	if e+pos+ksize > len(p) || e+pos+ksize < e {
		return nil, 0, fmt.Errorf("branch element %d runs past the page", i)
	}
	return p[e+pos : e+pos+ksize], ne.Uint64(p[e+8:]), nil
}

// leaf checks the elements of a leaf page (or inline bucket page) p and
// the buckets they hold.
func (c *checker) leaf(id uint64, p []byte, lo, hi []byte, depth int, inline bool) ([]byte, error) {
	count := int(ne.Uint16(p[10:]))
	if pageHeaderSize+count*elemSize > len(p) {
		return nil, fmt.Errorf("page %d: %d elements do not fit", id, count)
	}
	prev := lo
	for i := 0; i < count; i++ {
		e := pageHeaderSize + i*elemSize
		flags := ne.Uint32(p[e:])
		pos, ksize, vsize := int(ne.Uint32(p[e+4:])), int(ne.Uint32(p[e+8:])), int(ne.Uint32(p[e+12:]))
		end := e + pos + ksize + vsize
		if end > len(p) || end < e || pos < 0 {
			return nil, fmt.Errorf("page %d: element %d runs past the page", id, i)
		}
		key, val := p[e+pos:e+pos+ksize], p[e+pos+ksize:end]
		if i == 0 && prev != nil && bytes.Compare(prev, key) > 0 || i > 0 && bytes.Compare(prev, key) >= 0 ||
			hi != nil && bytes.Compare(key, hi) >= 0 {
			return nil, fmt.Errorf("page %d: key %d out of order", id, i)
		}
		prev = key
		switch flags {
		case 0:
		case bucketLeafFlag:
			if inline {
				return nil, fmt.Errorf("page %d: inline bucket holds a bucket", id)
			}
			if len(val) < inBucketSize {
				return nil, fmt.Errorf("page %d: bucket %q: short header", id, key)
			}
			if root := ne.Uint64(val); root != 0 {
				if err := c.bucket(root, depth+1); err != nil {
					return nil, fmt.Errorf("bucket %q: %v", key, err)
				}
			} else {
				ip := val[inBucketSize:]
				if len(ip) < pageHeaderSize || ne.Uint16(ip[8:]) != leafPageFlag {
					return nil, fmt.Errorf("page %d: inline bucket %q is not a leaf page", id, key)
				}
				if _, err := c.leaf(id, ip, nil, nil, depth+1, true); err != nil {
					return nil, fmt.Errorf("inline bucket %q: %v", key, err)
				}
			}
		default:
			return nil, fmt.Errorf("page %d: element %d has flags %#x", id, i, flags)
		}
	}
	if count == 0 {
		return lo, nil
	}
	return prev, nil
}

// freelist checks the freelist page: it lists pages not reachable, and
// with the reachable ones covers every page below the high water mark.
func (c *checker) freelist(id uint64) error {
	if id == noFreelist {
		return errors.New("not stored in the file") // Open never writes such files
	}
	p, err := c.page(id)
	if err != nil {
		return err
	}
	if flags := ne.Uint16(p[8:]); flags != freelistPageFlag {
		return fmt.Errorf("page %d: not a freelist page (flags %#x)", id, flags)
	}
	idx, count := 0, uint64(ne.Uint16(p[10:]))
	if count == 0xFFFF {
		idx, count = 1, ne.Uint64(p[pageHeaderSize:])
	}
	if count > uint64(len(p)-pageHeaderSize)/8-uint64(idx) {
		return fmt.Errorf("page %d: %d free pages do not fit", id, count)
	}
	for i := uint64(0); i < count; i++ {
		free := ne.Uint64(p[pageHeaderSize+8*(uint64(idx)+i):])
		if free < 2 || free >= c.hwm {
			return fmt.Errorf("free page %d out of range [2, %d)", free, c.hwm)
		}
		if c.seen[free] {
			return fmt.Errorf("page %d is both free and in use (or free twice)", free)
		}
		c.seen[free] = true
	}
	for i, seen := range c.seen {
		if !seen {
			return fmt.Errorf("page %d is neither free nor in use", i)
		}
	}
	return nil
}

// verify checks, in a read transaction, what bbolt cannot: the buckets of
// a store, every room's meta against its records, every record's and
// cursor's checksum and the subscription index.
func (s *Store) verify(tx *bbolt.Tx) error {
	for _, b := range allBuckets {
		if tx.Bucket(b) == nil {
			return s.corrupt("not a switchboard store, or damaged: bucket %q missing", b)
		}
	}
	if v := tx.Bucket(bucketMeta).Get(keyFormat); string(v) != formatVersion {
		return s.corrupt("format %q, want %q", v, formatVersion)
	}

	type roomState struct {
		name string
		m    roomMeta
		next uint64 // offset expected next
		b    int64  // bytes seen
	}
	byID := make(map[uint64]*roomState)
	seq := tx.Bucket(bucketRooms).Sequence()
	err := tx.Bucket(bucketRooms).ForEach(func(k, v []byte) error {
		m, ok := decodeRoomMeta(k, v)
		if !ok {
			return s.corrupt("room %q: meta record fails its checksum", k)
		}
		if byID[m.id] != nil || m.id == 0 || m.id > seq {
			return s.corrupt("room %q: bad log id %d", k, m.id)
		}
		byID[m.id] = &roomState{name: string(k), m: m, next: m.first}
		return nil
	})
	if err != nil {
		return err
	}
	err = tx.Bucket(bucketLog).ForEach(func(k, v []byte) error {
		if len(k) != 16 {
			return s.corrupt("log key %x: bad length", k)
		}
		id, off := binary.BigEndian.Uint64(k), binary.BigEndian.Uint64(k[8:])
		r := byID[id]
		if r == nil {
			return s.corrupt("log record of unknown room id %d (offset %d)", id, off)
		}
		if off != r.next || off > r.m.last {
			return s.corrupt("room %q: offset %d found where %d was expected (log holds %d..%d)", r.name, off, r.next, r.m.first, r.m.last)
		}
		if len(v) < recordHeader || recordSum(k, v) != binary.BigEndian.Uint32(v) {
			return s.corrupt("room %q: offset %d: record fails its checksum", r.name, off)
		}
		r.next++
		r.b += int64(len(v) - recordHeader)
		return nil
	})
	if err != nil {
		return err
	}
	for _, r := range byID {
		if r.next != r.m.last+1 {
			return s.corrupt("room %q: offsets %d..%d missing", r.name, r.next, r.m.last)
		}
		if r.b != r.m.bytes {
			return s.corrupt("room %q: records hold %d bytes, meta says %d", r.name, r.b, r.m.bytes)
		}
	}

	subs := 0
	err = tx.Bucket(bucketCursors).ForEach(func(k, v []byte) error {
		room, sub, ok := splitKey(k)
		if !ok {
			return s.corrupt("cursor key %q: bad format", k)
		}
		if _, _, ok := decodePosition(k, v); !ok {
			return s.corrupt("cursor of %q in room %q fails its checksum", sub, room)
		}
		if tx.Bucket(bucketBySub).Get(prefixKey(sub, room)) == nil {
			return s.corrupt("cursor of %q in room %q missing from the subscription index", sub, room)
		}
		subs++
		return nil
	})
	if err != nil {
		return err
	}
	if n := tx.Bucket(bucketBySub).Stats().KeyN; n != subs {
		return s.corrupt("subscription index holds %d entries for %d cursors", n, subs)
	}
	return nil
}
