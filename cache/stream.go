package cache

import (
	"context"
	"io"
	"slices"
	"sync"
	"time"
)

// OpenFunc opens a file's bytes from off to its end as one stream (one
// long ranged GET where the repository is HTTP).
type OpenFunc func(ctx context.Context, off int64) (io.ReadCloser, error)

// streamIdle ends a stream whose reader stopped asking for more.
const streamIdle = 10 * time.Second

// A stream reads one file's blocks in order from one open body into the
// cache, up to a limit its reader keeps moving forward. Readers of a block
// the stream is about to deliver wait for it instead of asking the
// repository again.
//
// Invariant: pos <= limit, except that a new stream may start at limit's
// block while its reader has not moved it yet; blocks below pos were
// delivered (or the stream found them cached).
type stream struct {
	mu    sync.Mutex
	pos   int64         // the block read next; guarded by mu
	limit int64         // blocks below it are read, then the stream waits; guarded by mu
	ended bool          // guarded by mu
	moved chan struct{} // closed and replaced when pos, limit or ended change; guarded by mu
	// recent are the last blocks delivered, by index, each held by the
	// stream: the readers waiting for one take it from here, even if the
	// cache dropped it meanwhile (other reads filling it). Guarded by mu.
	recent map[int64]*buf
}

// keptRecent is how many delivered blocks a stream holds for its readers.
const keptRecent = 4

// changed wakes whoever waits on the stream (mu held).
func (s *stream) changed() {
	close(s.moved)
	s.moved = make(chan struct{})
}

// Stream makes the blocks of [from, from+window) reach the cache from one
// long read of the file instead of a request per block: it starts a
// stream at the first block not cached, or moves the running stream's
// limit. It reports false when no stream runs for the range (every stream
// slot is busy, or the file's stream is elsewhere); the caller may then
// fetch ahead block by block (Prefetch).
func (b *Blocks) Stream(key string, size, from, window int64, open OpenFunc) bool {
	blocks := (size + BlockSize - 1) / BlockSize
	limit := min((from+window+BlockSize-1)/BlockSize, blocks)
	first := from / BlockSize
	if b.disk != nil && b.disk.Has(key, size) {
		return true // the blocks come from disk
	}
	b.smu.Lock()
	defer b.smu.Unlock()
	if b.near() {
		// The repository answers at once (the same machine or LAN): one
		// connection's stream is slower than blocks fetched in parallel
		// (a stream already begun stops at its limit).
		return false
	}
	if s := b.streams[key]; s != nil {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.ended || first > s.limit {
			return false // a reader far from this stream's: fetch its blocks apart
		}
		if limit > s.limit {
			s.limit = limit
			s.changed()
		}
		return true
	}
	for first < limit && b.c.Has(blockKey(key, first)) {
		first++
	}
	if first >= limit {
		return true // all there
	}
	select {
	case b.streamSlots <- struct{}{}:
	default:
		return false
	}
	s := &stream{pos: first, limit: limit, moved: make(chan struct{}), recent: map[int64]*buf{}}
	b.streams[key] = s
	go b.run(key, size, blocks, s, open)
	return true
}

// run reads the stream's blocks until the file ends, the reader stops
// moving the limit for streamIdle, or the body fails (readers then fetch
// the blocks themselves).
func (b *Blocks) run(key string, size, blocks int64, s *stream, open OpenFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	var body io.ReadCloser
	defer func() {
		cancel()
		if body != nil {
			body.Close()
		}
		b.smu.Lock()
		delete(b.streams, key)
		b.smu.Unlock()
		s.mu.Lock()
		s.ended = true
		s.changed()
		for _, k := range s.recent {
			k.release()
		}
		clear(s.recent)
		s.mu.Unlock()
		<-b.streamSlots
	}()
	s.mu.Lock()
	pos := s.pos
	s.mu.Unlock()
	start := b.now()
	body, err := open(ctx, pos*BlockSize)
	if err != nil {
		return
	}
	b.noteLatency(b.now().Sub(start))
	// A stream from the first byte keeps a copy on disk (written beside
	// it, dropped if the writer falls behind or the stream ends early).
	var tee chan *buf // each held for the copy
	if pos == 0 && b.disk != nil && !b.disk.Has(key, size) && b.teeing(key) {
		if w := b.disk.Create(key, size); w == nil {
			b.teed(key)
		} else {
			tee = make(chan *buf, 8)
			go func(tee <-chan *buf) {
				defer b.teed(key)
				var err error
				for k := range tee {
					if err == nil {
						err = w.Write(k.data)
					}
					k.release()
				}
				if err != nil {
					w.Abort()
					return
				}
				_ = w.Commit() // drops it unless whole
			}(tee)
		}
	}
	defer func() {
		if tee != nil {
			close(tee)
		}
	}()
	idle := time.NewTimer(streamIdle)
	defer idle.Stop()
	for pos < blocks {
		s.mu.Lock()
		for s.pos >= s.limit {
			if b.near() {
				// Begun before the repository was found near: its reader
				// fetches blocks in parallel now, and a copy to disk
				// follows it (Keep) instead of this stream's.
				s.mu.Unlock()
				return
			}
			moved := s.moved
			s.mu.Unlock()
			idle.Reset(streamIdle)
			select {
			case <-moved:
			case <-idle.C:
				return
			case <-b.closed:
				return
			}
			s.mu.Lock()
		}
		s.mu.Unlock()
		off := pos * BlockSize
		k := b.free.get(min(int64(BlockSize), size-off))
		if _, err := io.ReadFull(body, k.data); err != nil {
			k.release()
			return // short or failed: the waiting readers fetch the block
		}
		if tee != nil {
			select {
			case tee <- k.hold():
			default: // the disk is slower than the reader: no copy
				k.release()
				close(tee)
				tee = nil
			}
		}
		if ck := blockKey(key, pos); !b.c.Has(ck) {
			b.put(ck, k.hold()) // visible before the readers are woken
		}
		s.mu.Lock()
		s.recent[pos] = k // the stream's own hold
		if old, ok := s.recent[pos-keptRecent]; ok {
			old.release()
			delete(s.recent, pos-keptRecent)
		}
		pos++
		s.pos = pos
		s.changed()
		s.mu.Unlock()
	}
}

// awaitStream waits, when a stream of key is about to deliver block idx,
// until it did (or ended). It returns the block, held for the caller, if
// the stream still holds it, and reports whether it waited, so that the
// caller looks in the cache again.
func (b *Blocks) awaitStream(ctx context.Context, key string, idx int64) (*buf, bool) {
	b.smu.Lock()
	s := b.streams[key]
	b.smu.Unlock()
	if s == nil {
		return nil, false
	}
	for {
		s.mu.Lock()
		if k, ok := s.recent[idx]; ok {
			k.hold()
			s.mu.Unlock()
			return k, true
		}
		if s.ended || idx < s.pos {
			s.mu.Unlock()
			return nil, true
		}
		if idx >= s.limit {
			s.mu.Unlock()
			return nil, false
		}
		moved := s.moved
		s.mu.Unlock()
		select {
		case <-moved:
		case <-ctx.Done():
			return nil, false
		}
	}
}

// nearLatency is the answer time below which the repository counts as
// near: streams are for round trips that cost.
const nearLatency = 5 * time.Millisecond

// noteLatency takes the time a request took to answer among the recent
// ones near looks at; none (a clock that did not move: tests) is no
// answer time.
func (b *Blocks) noteLatency(d time.Duration) {
	if d <= 0 {
		return
	}
	b.latMu.Lock()
	defer b.latMu.Unlock()
	b.answers[b.nAnswers%len(b.answers)] = d
	b.nAnswers++
}

// NoteAnswer tells the cache how long another request to the repository
// (a listing, a stat) took to answer: the network's round trip bounds
// every answer, so a fast one says the repository is near, whatever the
// block fetches say.
func (b *Blocks) NoteAnswer(d time.Duration) { b.noteLatency(d) }

// near tells whether the repository answers fast: the quickest of the
// recent answers came within nearLatency (none yet: no). The quickest,
// not an average: the first answers of a server whose own caches are
// cold took over 5 ms on loopback, and a repository found far is
// streamed from, which gives no more answers to time. Recent is the last
// 64: on a loaded 2-core machine parallel block fetches on loopback
// queue behind each other past 5 ms, and 8 answers turned a 1 GiB read
// near and far again and again (54-202 requests of 1,024 blocks, the
// rest streamed); a repository across a network never answers within
// 5 ms, and one that moved there is found far after 64 answers.
func (b *Blocks) near() bool {
	b.latMu.Lock()
	defer b.latMu.Unlock()
	n := min(b.nAnswers, len(b.answers))
	if n == 0 {
		return false
	}
	return slices.Min(b.answers[:n]) < nearLatency
}
