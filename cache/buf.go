package cache

import "sync/atomic"

// A buf is a block's bytes and a count of who holds them: the cache, a
// stream's recent blocks, the copy to disk, a reader until the kernel has
// its reply. Streamed and disk-read blocks are written into buffers taken
// from a free list, and go back to it when the last holder releases them.
// Fresh 1 MiB buffers cost the mount a fifth of its CPU on a cold read
// across a network (page faults while the socket fills them, and the
// runtime zeroing them), and recycled ones cost nothing.
//
// Invariant: a holder reads data only between taking a hold and
// releasing it; a buffer on the free list is held by no one. A holder
// that never releases costs only the recycling (the garbage collector
// takes the buffer); one that releases twice would hand a buffer still
// read to the next block, so that panics.
type buf struct {
	data []byte
	refs atomic.Int32
	free *freeList // where the buffer goes when the last holder lets go; nil: to the garbage collector
}

// hold takes another hold of k for a new holder, who must release it.
func (k *buf) hold() *buf {
	k.refs.Add(1)
	return k
}

// release ends one hold.
func (k *buf) release() {
	switch n := k.refs.Add(-1); {
	case n == 0 && k.free != nil:
		k.free.put(k)
	case n < 0:
		panic("cache: a block released more often than held")
	}
}

// heldBytes wraps bytes not from the free list (a repository's answer)
// as a buf held once.
func heldBytes(data []byte) *buf {
	k := &buf{data: data}
	k.refs.Store(1)
	return k
}

// A freeList keeps a few released BlockSize buffers for the next blocks.
type freeList struct {
	c chan *buf
	// poison, if set, is copied over each released buffer (tests: a
	// holder that reads after its release sees it).
	poison []byte
}

func newFreeList(n int) *freeList { return &freeList{c: make(chan *buf, n)} }

// get returns a buffer of n (≤ BlockSize) bytes, held once.
func (f *freeList) get(n int64) *buf {
	var k *buf
	select {
	case k = <-f.c:
	default:
		k = &buf{data: make([]byte, BlockSize), free: f}
	}
	k.data = k.data[:n]
	k.refs.Store(1)
	return k
}

// put takes back a buffer no one holds; the garbage collector takes it
// when the list is full.
func (f *freeList) put(k *buf) {
	k.data = k.data[:cap(k.data)]
	copy(k.data, f.poison)
	select {
	case f.c <- k:
	default:
	}
}

// Held is bytes of the cache that stay as they are until Release. The
// zero Held holds nothing.
type Held struct {
	Data []byte
	k    *buf
}

// Release lets go of the bytes; call it once, and read Data no more.
func (h Held) Release() {
	if h.k != nil {
		h.k.release()
	}
}
