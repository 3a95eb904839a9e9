package cache

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// blockOf is a buffer of n bytes for the cache tests, held once.
func blockOf(n int) *buf { return heldBytes(make([]byte, n)) }

// TestOnceReadBlocksCycleThroughHalfTheCache: blocks set for the first
// time fill at most half of the cache, the oldest out first however
// often they were asked for since; a block set again after it was
// dropped stays in the other half, least recently used out first, and a
// long run of new blocks never drops it.
func TestOnceReadBlocksCycleThroughHalfTheCache(t *testing.T) {
	c := newLRU(16 * BlockSize)
	a := blockOf(BlockSize)
	c.Set("a", a)
	for i := range 7 {
		c.Set(fmt.Sprint("s", i), blockOf(BlockSize))
	}
	for range 5 {
		k, ok := c.Get("a") // often: no matter in the once part
		require.True(t, ok)
		k.release()
	}
	c.Set("s7", blockOf(BlockSize)) // the once part is full: a, the oldest, goes
	require.False(t, c.Has("a"))
	require.Zero(t, a.refs.Load(), "a dropped block is released")
	require.EqualValues(t, 8*BlockSize, c.Used(), "blocks read once fill half the cache, however empty the rest")

	c.Set("a", blockOf(BlockSize)) // fetched again: to the again part
	c.Set("b", blockOf(BlockSize))
	c.Set("b", blockOf(BlockSize)) // replaced in place: still read once
	for i := range 100 {
		c.Set(fmt.Sprint("scan", i), blockOf(BlockSize)) // a long sequential read
	}
	require.True(t, c.Has("a"), "a long read of new blocks keeps a block read again")
	require.False(t, c.Has("b"))
	require.EqualValues(t, 9*BlockSize, c.Used())

	// The again part: least recently used out first.
	for i := range 7 {
		c.Set(fmt.Sprint("s", i), blockOf(BlockSize)) // all dropped before: again
	}
	require.EqualValues(t, 16*BlockSize, c.Used(), "full: a, s0-s6 again, 8 once")
	k, ok := c.Get("a")
	require.True(t, ok)
	k.release()
	c.Set("b", blockOf(BlockSize)) // dropped before: again
	require.False(t, c.Has("s0"), "the least recently used of the again part goes")
	require.True(t, c.Has("a"))
	require.True(t, c.Has("s1"))
	require.EqualValues(t, 16*BlockSize, c.Used())

	c.Set("huge", blockOf(17*BlockSize))
	require.False(t, c.Has("huge"), "a block larger than the cache is not held")
	c.Clear()
	require.Zero(t, c.Used())
}
