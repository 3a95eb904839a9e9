// Package cache holds dmsfs's local state: the block cache that serves
// reads, and the durable write-back spool with its journal.
package cache

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"
)

// BlockSize is the unit of caching and of range requests.
const BlockSize = 1 << 20

// FetchFunc reads n bytes at off of one file from the repository.
type FetchFunc func(ctx context.Context, off, n int64) ([]byte, error)

// Blocks is a bounded in-memory cache of file blocks, keyed by a content
// key (which names the document, file and content version, so a changed file
// never hits old blocks) and the block's index. Concurrent misses of one
// block are fetched once.
type Blocks struct {
	c *lru
	// free recycles the buffers of blocks no one holds (buf.go).
	free    *freeList
	fmu     sync.Mutex         // leaf
	flights map[string]*flight // the fetch under way of a block, by cache key; guarded by fmu
	// ahead bounds the read-ahead fetches under way, streamSlots the
	// streams (stream.go).
	ahead, streamSlots chan struct{}
	closed             chan struct{} // closed by Close: streams end
	// putMu orders Close after the sets under way: none lands once
	// Close cleared the cache.
	putMu sync.RWMutex

	smu     sync.Mutex          // leaf, but for a stream's mu taken inside it
	streams map[string]*stream  // the running stream of a content key; guarded by smu
	keepers map[string]*keeper  // the copy to disk behind a reader, by content key (keep.go); guarded by smu
	unkept  map[string]struct{} // contents whose copy failed, not tried again (keep.go); guarded by smu

	// disk keeps whole contents read by streams; nil: none (UseDisk).
	disk  *Disk
	latMu sync.Mutex // leaf
	// answers are the repository's latest answer times, measured by now,
	// at nAnswers modulo their number; see near. Guarded by latMu.
	answers  [64]time.Duration
	nAnswers int
	now      func() time.Time
}

// UseDisk makes the cache keep whole contents in d and read missing
// blocks from there before asking the repository. Call it before use.
func (b *Blocks) UseDisk(d *Disk) { b.disk = d }

// UseClock makes the cache time the repository's answers by now (time.Now
// if never called; tests inject one). Call it before use.
func (b *Blocks) UseClock(now func() time.Time) { b.now = now }

// Disk is the disk cache in use, nil if none.
func (b *Blocks) Disk() *Disk { return b.disk }

// NewBlocks makes a cache holding at most maxBytes.
func NewBlocks(maxBytes int64, parallel int) (*Blocks, error) {
	if maxBytes < BlockSize {
		maxBytes = BlockSize
	}
	return &Blocks{c: newLRU(maxBytes), free: newFreeList(freeBuffers), flights: map[string]*flight{}, ahead: make(chan struct{}, max(parallel, 1)), streamSlots: make(chan struct{}, max(parallel, 1)),
		closed: make(chan struct{}), streams: map[string]*stream{}, keepers: map[string]*keeper{}, unkept: map[string]struct{}{}, now: time.Now}, nil
}

// freeBuffers is how many released block buffers wait for reuse: a
// stream's, a reader's and the kernel's few blocks in flight.
const freeBuffers = 16

// Close ends the streams and frees the cache. Fetches still under way
// (read-ahead) then keep their blocks to themselves.
func (b *Blocks) Close() {
	b.putMu.Lock()
	defer b.putMu.Unlock()
	close(b.closed)
	b.c.Clear()
}

// put adds a block, taking the caller's hold; nothing once the cache is
// closed.
func (b *Blocks) put(key string, k *buf) {
	b.putMu.RLock()
	defer b.putMu.RUnlock()
	select {
	case <-b.closed:
		k.release()
		return
	default:
	}
	b.c.Set(key, k)
}

// Used is the number of bytes held.
func (b *Blocks) Used() int64 { return b.c.Used() }

// Stats are the cache's hits, misses and evicted blocks so far.
func (b *Blocks) Stats() (hits, misses, evicted uint64) {
	return b.c.hits.Load(), b.c.misses.Load(), b.c.evicted.Load()
}

// Capacity is the most the cache holds.
func (b *Blocks) Capacity() int64 { return b.c.max }

func blockKey(key string, idx int64) string { return key + "#" + strconv.FormatInt(idx, 10) }

// block returns block idx of a file of the given size, fetching it on a
// miss, held for the caller.
func (b *Blocks) block(ctx context.Context, key string, size, idx int64, fetch FetchFunc) (*buf, error) {
	k, _, err := b.verifiedBlock(ctx, key, size, idx, fetch)
	return k, err
}

// A flight is one fetch of a block that concurrent misses of it share.
type flight struct {
	done     chan struct{} // closed when the fields below are set
	k        *buf          // held once for each caller, the first and those joined
	verified bool
	err      error
	joined   int32 // callers beside the first; guarded by Blocks.fmu
}

// verifiedBlock is block, and tells whether the bytes are key's content
// for sure (false for bytes an ErrUnverified fetch brought, which are
// never cached).
func (b *Blocks) verifiedBlock(ctx context.Context, key string, size, idx int64, fetch FetchFunc) (*buf, bool, error) {
	k := blockKey(key, idx)
	if data, ok := b.c.Get(k); ok {
		return data, true, nil
	}
	if data, waited := b.awaitStream(ctx, key, idx); data != nil {
		return data, true, nil
	} else if waited {
		if data, ok := b.c.Get(k); ok {
			return data, true, nil
		}
	}
	b.fmu.Lock()
	if f := b.flights[k]; f != nil {
		f.joined++
		b.fmu.Unlock()
		<-f.done
		return f.k, f.verified, f.err
	}
	f := &flight{done: make(chan struct{})}
	b.flights[k] = f
	b.fmu.Unlock()
	f.k, f.verified, f.err = b.fetchBlock(ctx, k, key, size, idx, fetch)
	b.fmu.Lock()
	delete(b.flights, k)
	if f.err == nil {
		f.k.refs.Add(f.joined) // one hold for each caller that joined
	}
	b.fmu.Unlock()
	close(f.done)
	return f.k, f.verified, f.err
}

// fetchBlock is a flight's fetch of block idx (cache key k): from the
// cache if it got there meanwhile, else from the disk cache, else from
// the repository.
func (b *Blocks) fetchBlock(ctx context.Context, k, key string, size, idx int64, fetch FetchFunc) (*buf, bool, error) {
	if data, ok := b.c.Get(k); ok {
		return data, true, nil
	}
	off := idx * BlockSize
	want := min(int64(BlockSize), size-off)
	data, ok := b.fromDisk(key, size, off, want)
	keep := true
	if !ok {
		start := b.now()
		got, err := fetch(ctx, off, want)
		if errors.Is(err, ErrUnverified) {
			keep, err = false, nil
		}
		if err != nil {
			return nil, false, err
		}
		b.noteLatency(b.now().Sub(start))
		data = heldBytes(got)
	}
	if n := len(data.data); int64(n) != want {
		// A short or long body is never cached or returned as data.
		data.release()
		return nil, false, fmt.Errorf("read of %d bytes at %d returned %d: %w", want, off, n, ErrShortRead)
	}
	if !keep {
		return data, false, nil
	}
	// Waits for the set, so that a reader arriving just after this
	// flight ends finds the block instead of fetching it again.
	b.put(k, data.hold())
	return data, true, nil
}

// fromDisk reads a block from the disk cache, if it holds the content.
func (b *Blocks) fromDisk(key string, size, off, n int64) (*buf, bool) {
	if b.disk == nil {
		return nil, false
	}
	fh, ok := b.disk.Open(key, size)
	if !ok {
		return nil, false
	}
	defer fh.Close()
	k := b.free.get(n)
	if _, err := fh.ReadAt(k.data, off); err != nil {
		k.release()
		return nil, false
	}
	return k, true
}

// ErrShortRead is a repository read that returned fewer or more bytes than
// asked for.
var ErrShortRead = fmt.Errorf("wrong length from the repository")

// ErrUnverified comes with data a FetchFunc cannot vouch for: bytes of the
// document that may be of other content than the key names (it changed
// since the read was set up). The reader gets them; the cache keeps none.
var ErrUnverified = errors.New("content changed under the read")

// ReadAt fills dest with the file's bytes at off and returns how many it
// filled (fewer only at the end of the file).
func (b *Blocks) ReadAt(ctx context.Context, key string, size int64, dest []byte, off int64, fetch FetchFunc) (int, error) {
	n := 0
	for n < len(dest) && off+int64(n) < size {
		pos := off + int64(n)
		idx := pos / BlockSize
		k, err := b.block(ctx, key, size, idx, fetch)
		if err != nil {
			return n, err
		}
		n += copy(dest[n:], k.data[pos-idx*BlockSize:])
		k.release()
	}
	return n, nil
}

// Slice returns the file's bytes at [off, off+n) without copying them
// when they lie in one block (the kernel reads block-aligned pieces of a
// sequential read), and ok false otherwise. The bytes are held until the
// caller releases them, and must not be changed.
func (b *Blocks) Slice(ctx context.Context, key string, size, off, n int64, fetch FetchFunc) (data Held, ok bool, err error) {
	idx := off / BlockSize
	if off >= size || (off+n-1)/BlockSize != idx {
		return Held{}, false, nil
	}
	k, err := b.block(ctx, key, size, idx, fetch)
	if err != nil {
		return Held{}, true, err
	}
	start := off - idx*BlockSize
	return Held{Data: k.data[start:min(start+n, int64(len(k.data)))], k: k}, true, nil
}

// Warm fetches every block of a (small) content into the cache that is
// not there yet; the caller bounds how many run at once.
func (b *Blocks) Warm(ctx context.Context, key string, size int64, fetch FetchFunc) {
	for idx := int64(0); idx*BlockSize < size; idx++ {
		if b.c.Has(blockKey(key, idx)) {
			continue
		}
		k, err := b.block(ctx, key, size, idx, fetch)
		if err != nil {
			return
		}
		k.release()
	}
}

// Prefetch fetches blocks covering [off, off+n) in the background, at most
// as many at once as the cache was made with; blocks that cannot start now
// are skipped (the reader will ask again).
func (b *Blocks) Prefetch(key string, size, off, n int64, fetch FetchFunc) {
	for idx := off / BlockSize; idx*BlockSize < min(off+n, size); idx++ {
		if b.c.Has(blockKey(key, idx)) {
			continue
		}
		select {
		case b.ahead <- struct{}{}:
		default:
			return
		}
		go func() {
			defer func() { <-b.ahead }()
			if k, err := b.block(context.Background(), key, size, idx, fetch); err == nil {
				k.release()
			}
		}()
	}
}
