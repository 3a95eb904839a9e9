package cache

import (
	"container/list"
	"sync"
	"sync/atomic"
)

// lru holds the blocks in memory, up to a number of bytes, dropping the
// least recently used first. Every block is admitted: the blocks a
// stream or a read-ahead delivers ahead of their reader are the newest,
// and so stay until the reader takes them, however long the read. (With
// ristretto, which admits by how often a key was asked for, a full cache
// refused them in favour of the blocks behind the reader, and a read
// longer than the cache fell back to fetching every block itself.)
type lru struct {
	mu    sync.Mutex               // guards the fields below
	max   int64                    // bytes held at most
	used  int64                    // bytes held
	order *list.List               // of *entry, the most recently used first
	items map[string]*list.Element // by key

	hits, misses, evicted atomic.Uint64
}

type entry struct {
	key string
	k   *buf // the cache's hold of it
}

func newLRU(maxBytes int64) *lru {
	return &lru{max: maxBytes, order: list.New(), items: map[string]*list.Element{}}
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
	c.order.MoveToFront(el)
	return el.Value.(*entry).k.hold(), true
}

// Has tells whether key's block is held, without using it.
func (c *lru) Has(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.items[key]
	return ok
}

// Set takes the caller's hold of k as key's block (replacing one held),
// dropping the least recently used blocks to make room; a block larger
// than the cache is released at once.
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
		c.used += n - int64(len(e.k.data))
		e.k.release()
		e.k = k
		c.order.MoveToFront(el)
	} else {
		c.items[key] = c.order.PushFront(&entry{key: key, k: k})
		c.used += n
	}
	for c.used > c.max {
		el := c.order.Back()
		e := el.Value.(*entry)
		c.order.Remove(el)
		delete(c.items, e.key)
		c.used -= int64(len(e.k.data))
		e.k.release()
		c.evicted.Add(1)
	}
}

// Del drops key's block.
func (c *lru) Del(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		c.order.Remove(el)
		delete(c.items, key)
		e := el.Value.(*entry)
		c.used -= int64(len(e.k.data))
		e.k.release()
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
	for el := c.order.Front(); el != nil; el = el.Next() {
		el.Value.(*entry).k.release()
	}
	c.order.Init()
	clear(c.items)
	c.used = 0
}
