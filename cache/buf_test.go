package cache

import (
	"bytes"
	"context"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// poisonedBlocks is a cache of maxBytes in front of a far repository
// (streams run) with a disk cache (streams tee, reads come from disk),
// whose released buffers are poisoned: bytes read after their release
// show it.
func poisonedBlocks(t *testing.T, maxBytes int64) (*Blocks, *clock) {
	disk, err := OpenDisk(t.TempDir(), 256<<20)
	require.NoError(t, err)
	b, err := NewBlocks(maxBytes, 4)
	require.NoError(t, err)
	t.Cleanup(b.Close)
	b.UseDisk(disk)
	clk := &clock{}
	b.UseClock(clk.now)
	b.free.poison = bytes.Repeat([]byte{poisonByte}, BlockSize)
	return b, clk
}

// A reader's block stays as it was while the reader holds it, though the
// cache dropped it and the stream went on into recycled buffers; once
// released, the buffer is reused.
func TestAHeldBlockIsNotReusedWhenTheCacheDropsIt(t *testing.T) {
	b, clk := poisonedBlocks(t, 2*BlockSize)
	data := randomData(12 * BlockSize)
	size := int64(len(data))
	var fetches, opens atomic.Int64
	fetch, open := farSource(clk, data, &fetches), opener(clk, data, &opens, 0)

	require.True(t, b.Stream("k", size, 0, 2*BlockSize, open))
	first, ok, err := b.Slice(context.Background(), "k", size, 0, BlockSize, fetch)
	require.NoError(t, err)
	require.True(t, ok)
	got := readSequentially(t, b, data, fetch, open) // drops block 0 from the cache many times over
	require.True(t, bytes.Equal(data, got))
	require.False(t, b.c.Has(blockKey("k", 0)), "the cache dropped the held block")
	require.True(t, bytes.Equal(data[:BlockSize], first.Data), "a held block is never reused")
	k := first.k
	first.Release()
	require.Zero(t, k.refs.Load())
	require.Equal(t, byte(poisonByte), k.data[0], "the released buffer went back to the free list")
}

// TestRecycledBlocksNeverChangeUnderTheirHolders: readers in parallel —
// in order (streams, their copies to disk, the disk cache), at random
// places (flights shared by misses), read-ahead — through a cache of
// three blocks, each holding what it read a while before checking it. No
// holder ever sees bytes of another block or poison.
func TestRecycledBlocksNeverChangeUnderTheirHolders(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	b, clk := poisonedBlocks(t, 3*BlockSize)
	files := map[string][]byte{"a": randomData(9*BlockSize + 4321), "b": randomData(6 * BlockSize)}
	var fetches, opens atomic.Int64
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seed, uint64(w)))
			for range 12 {
				key := []string{"a", "b"}[r.IntN(2)]
				data := files[key]
				size := int64(len(data))
				fetch, open := farSource(clk, data, &fetches), opener(clk, data, &opens, 0)
				switch r.IntN(4) {
				case 0, 1: // in order, by kernel-sized pieces, each held a while
					b.Stream(key, size, 0, 2*BlockSize, open)
					type piece struct {
						h   Held
						off int64
					}
					var held []piece
					for off := int64(0); off < size; off += 128 << 10 {
						h, ok, err := b.Slice(context.Background(), key, size, off, 128<<10, fetch)
						if err != nil || !ok {
							t.Errorf("Slice at %d: ok %v, err %v", off, ok, err)
							return
						}
						held = append(held, piece{h, off})
						if len(held) > 3 {
							if !sameBytes(t, data, held[0].off, held[0].h.Data) {
								return
							}
							held[0].h.Release()
							held = held[1:]
						}
						b.Stream(key, size, off+128<<10, 2*BlockSize, open)
						b.Keep(key, size, off+128<<10, fetch)
						runtime.Gosched()
					}
					for _, p := range held {
						if !sameBytes(t, data, p.off, p.h.Data) {
							return
						}
						p.h.Release()
					}
				case 2: // at random
					off := r.Int64N(size)
					dest := make([]byte, 1+r.IntN(3*BlockSize))
					n, err := b.ReadAt(context.Background(), key, size, dest, off, fetch)
					if err != nil {
						t.Errorf("ReadAt at %d: %v", off, err)
						return
					}
					if !sameBytes(t, data, off, dest[:n]) {
						return
					}
				case 3:
					b.Prefetch(key, size, r.Int64N(size), 2*BlockSize, fetch)
				}
			}
		}()
	}
	wg.Wait()
}

// poisonByte fills released buffers in these tests.
const poisonByte = 0xDB

// sameBytes reports whether got is data's bytes at off, failing the test
// if not.
func sameBytes(t *testing.T, data []byte, off int64, got []byte) bool {
	t.Helper()
	if !bytes.Equal(data[off:off+int64(len(got))], got) {
		t.Errorf("other bytes than the file's at %d (poison: %v)", off, bytes.IndexByte(got, poisonByte) >= 0)
		return false
	}
	return true
}
