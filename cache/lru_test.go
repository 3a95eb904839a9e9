package cache

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestLRUDropsTheLeastRecentlyUsed: a full cache makes room by dropping
// the blocks used longest ago, whatever was asked for how often, and
// never holds more than its size.
func TestLRUDropsTheLeastRecentlyUsed(t *testing.T) {
	c := newLRU(10)
	a := heldBytes(make([]byte, 4))
	c.Set("a", a)
	c.Set("b", heldBytes(make([]byte, 4)))
	for range 5 {
		k, ok := c.Get("a") // often, then not any more
		require.True(t, ok)
		k.release()
	}
	require.True(t, c.Has("b"))
	_, ok := c.Get("b")
	require.True(t, ok)
	c.Set("c", heldBytes(make([]byte, 4))) // a is the least recently used
	require.Zero(t, a.refs.Load(), "a dropped block is released")
	_, ok = c.Get("a")
	require.False(t, ok, "the least recently used is dropped, however often it was asked for")
	for _, k := range []string{"b", "c"} {
		_, ok := c.Get(k)
		require.True(t, ok, k)
	}
	require.EqualValues(t, 8, c.Used())

	c.Set("b", heldBytes(make([]byte, 7))) // replaced, larger: c goes
	require.EqualValues(t, 7, c.Used())
	c.Set("huge", heldBytes(make([]byte, 11)))
	_, ok = c.Get("huge")
	require.False(t, ok, "a block larger than the cache is not held")
	c.Del("b")
	require.Zero(t, c.Used())
	require.EqualValues(t, 2, c.evicted.Load())
}
