package cache

import (
	"container/list"
	"sync"
	"sync/atomic"
)

// lru holds the blocks in memory, up to a number of bytes, in two parts
// (the 2Q scheme): a block fetched for the first time goes to the "once"
// part, first in first out, which holds at most half of the cache; a
// block fetched again after it left that part (its key is among the
// recently dropped ones) goes to the "again" part, least recently used
// out first. So a long sequential read, whose blocks are read once,
// cycles through half the cache instead of driving out every block read
// more than once, and its buffers are recycled from then on (buf.go) —
// on a fresh mount, a cold read of 512 MiB touched 66k new pages with
// the whole cache open to it.
//
// Every block is admitted: the blocks a stream or a read-ahead delivers
// ahead of their reader are the newest in the once part, and so stay
// until the reader takes them (the read-ahead is at most half the
// cache). (With ristretto, which admits by how often a key was asked
// for, a full cache refused them in favour of the blocks behind the
// reader, and a read longer than the cache fell back to fetching every
// block itself.)
type lru struct {
	mu      sync.Mutex // guards the fields below
	max     int64      // bytes held at most
	onceMax int64      // bytes held at most in the once part
	used    int64      // bytes held
	// onceUsed are the bytes of the once part.
	onceUsed int64
	once     *list.List               // of *entry, the newest first
	again    *list.List               // of *entry, the most recently used first
	items    map[string]*list.Element // by key, of either list
	// dropped are the keys most recently dropped from the once part,
	// the newest first, at most maxDropped (no bytes).
	dropped     *list.List
	droppedKeys map[string]*list.Element

	hits, misses, evicted atomic.Uint64
}

// maxDropped bounds the keys remembered as dropped from the once part:
// at 20 KiB a block, a once part of 128 MiB holds about 6,500.
const maxDropped = 8192

type entry struct {
	key   string
	k     *buf // the cache's hold of it
	again bool // in the again part
}

func newLRU(maxBytes int64) *lru {
	return &lru{max: maxBytes, onceMax: max(maxBytes/2, BlockSize), once: list.New(), again: list.New(), items: map[string]*list.Element{},
		dropped: list.New(), droppedKeys: map[string]*list.Element{}}
}

// Get returns the block of key, held for the caller (who releases it),
// and marks it used. The hold is taken under mu: a block is never
// dropped and recycled between being found and being held.
func (c *lru) Get(key string) (*buf, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		c.misses.Add(1)
		return nil, false
	}
	c.hits.Add(1)
	e := el.Value.(*entry)
	if e.again {
		c.again.MoveToFront(el)
	}
	return e.k.hold(), true
}

// Has tells whether key's block is held, without using it.
func (c *lru) Has(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.items[key]
	return ok
}

// Set takes the caller's hold of k as key's block (replacing one held),
// dropping blocks to make room; a block larger than the cache is
// released at once.
func (c *lru) Set(key string, k *buf) {
	n := int64(len(k.data))
	if n > c.max {
		k.release()
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		e := el.Value.(*entry)
		c.add(e, n-int64(len(e.k.data)))
		e.k.release()
		e.k = k
		if e.again {
			c.again.MoveToFront(el)
		}
	} else {
		e := &entry{key: key, k: k}
		if d, ok := c.droppedKeys[key]; ok {
			e.again = true // asked for again since it was dropped
			c.dropped.Remove(d)
			delete(c.droppedKeys, key)
			c.items[key] = c.again.PushFront(e)
		} else {
			c.items[key] = c.once.PushFront(e)
		}
		c.add(e, n)
	}
	for c.onceUsed > c.onceMax || c.used > c.max {
		l := c.again
		if c.onceUsed > c.onceMax || c.again.Len() == 0 {
			l = c.once
		}
		c.drop(l.Back())
		c.evicted.Add(1)
	}
}

// add counts n bytes more of e's part (mu held).
func (c *lru) add(e *entry, n int64) {
	c.used += n
	if !e.again {
		c.onceUsed += n
	}
}

// drop removes a block, remembering the key of one of the once part
// (mu held).
func (c *lru) drop(el *list.Element) {
	e := el.Value.(*entry)
	if e.again {
		c.again.Remove(el)
	} else {
		c.once.Remove(el)
		c.droppedKeys[e.key] = c.dropped.PushFront(e.key)
		if c.dropped.Len() > maxDropped {
			delete(c.droppedKeys, c.dropped.Remove(c.dropped.Back()).(string))
		}
	}
	delete(c.items, e.key)
	c.add(e, -int64(len(e.k.data)))
	e.k.release()
}

// Del drops key's block.
func (c *lru) Del(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		c.drop(el)
	}
}

// Used is the number of bytes held.
func (c *lru) Used() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.used
}

// Clear drops every block.
func (c *lru) Clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, el := range c.items {
		el.Value.(*entry).k.release()
	}
	c.once.Init()
	c.again.Init()
	c.dropped.Init()
	clear(c.items)
	clear(c.droppedKeys)
	c.used, c.onceUsed = 0, 0
}
