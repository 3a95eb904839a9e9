package cache

import (
	"context"
	"time"
)

// A keeper writes a content to the disk cache behind a reader that reads
// it in order from its first byte, when no stream reads it (a near
// repository answers blocks fetched in parallel faster, see Stream, so
// there is no stream to copy from). It copies only blocks the reader
// has read: a reader that stops early (file(1) reading a header) costs
// no further fetch, and after streamIdle the copy is dropped.
//
// A stream from the first byte copies what it reads itself (its tee); it
// holds a keeper with tee set meanwhile, so that no second copy starts.
type keeper struct {
	tee   bool          // the copy is a stream's, not this keeper's
	upto  int64         // bytes the reader read in order; guarded by Blocks.smu
	moved chan struct{} // closed and replaced when upto grows; guarded by Blocks.smu
}

// teeing claims key's copy for a stream's tee; false if a copy is under
// way already.
func (b *Blocks) teeing(key string) bool {
	b.smu.Lock()
	defer b.smu.Unlock()
	if b.keepers[key] != nil {
		return false
	}
	b.keepers[key] = &keeper{tee: true}
	return true
}

// teed ends a stream tee's claim.
func (b *Blocks) teed(key string) {
	b.smu.Lock()
	defer b.smu.Unlock()
	delete(b.keepers, key)
}

// Keep tells that a reader has read key's content in order from its
// start up to upto bytes, so that a copy of it is kept on disk (where a
// disk cache is in use, the content is over one block, and no copy is
// kept or under way, a stream's included). The copy is written in the
// background from the cache; what the cache no longer holds is fetched
// again from a near repository, and ends the copy otherwise.
func (b *Blocks) Keep(key string, size, upto int64, fetch FetchFunc) {
	if b.disk == nil || size <= BlockSize {
		return
	}
	b.smu.Lock()
	defer b.smu.Unlock()
	if k := b.keepers[key]; k != nil {
		if !k.tee && upto > k.upto {
			k.upto = upto
			close(k.moved)
			k.moved = make(chan struct{})
		}
		return
	}
	if _, failed := b.unkept[key]; failed || b.disk.Has(key, size) {
		return
	}
	w := b.disk.Create(key, size)
	if w == nil {
		return
	}
	k := &keeper{upto: upto, moved: make(chan struct{})}
	b.keepers[key] = k
	go b.keep(key, size, k, w, fetch)
}

// keep copies the blocks below k.upto in order until the whole content
// is written, then commits it.
func (b *Blocks) keep(key string, size int64, k *keeper, w *DiskWriter, fetch FetchFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	near := b.near() // as found when the copy began: a loaded near one answers slower
	kept, failed := false, false
	defer func() {
		b.smu.Lock()
		delete(b.keepers, key)
		if failed {
			// Not begun again by the next read of the same reader (it
			// would fail at the same place, copying what it copied).
			if len(b.unkept) >= maxUnkept {
				clear(b.unkept)
			}
			b.unkept[key] = struct{}{}
		}
		b.smu.Unlock()
		if !kept {
			w.Abort()
		}
	}()
	idle := time.NewTimer(streamIdle)
	defer idle.Stop()
	for idx := int64(0); idx*BlockSize < size; idx++ {
		end := min((idx+1)*BlockSize, size)
		for {
			b.smu.Lock()
			upto, moved := k.upto, k.moved
			b.smu.Unlock()
			if upto >= end {
				break
			}
			idle.Reset(streamIdle)
			select {
			case <-moved:
			case <-idle.C:
				return // the reader stopped before the end
			case <-b.closed:
				return
			}
		}
		// Near the repository a block the cache lacks is fetched, shared
		// with the reader's fetch of it under way; across a network the
		// copy ends there. Bytes of a content that changed under the read
		// go to a reader, never to a copy kept under this content's name.
		var data *buf
		var verified bool
		var err error
		if near {
			data, verified, err = b.verifiedBlock(ctx, key, size, idx, fetch)
		} else {
			data, verified = b.c.Get(blockKey(key, idx))
		}
		if err != nil || !verified {
			if data != nil {
				data.release() // bytes of another content: never kept
			}
			failed = true
			return
		}
		err = w.Write(data.data)
		data.release()
		if err != nil {
			failed = true // the disk is full, say
			return
		}
	}
	kept = w.Commit() == nil
	failed = !kept
}

// maxUnkept bounds the contents remembered as failed to copy (Blocks.unkept).
const maxUnkept = 1024
