package cache

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// far is the answer time of the repository the stream tests read from:
// across a network, where streams are used (Blocks.near).
const far = 6 * time.Millisecond

// clock is a test clock that the test repository's answers move on.
type clock struct{ t atomic.Int64 }

func (c *clock) now() time.Time { return time.Unix(0, c.t.Load()) }

// clockedBlocks is a cache timing answers by a test clock, which the far
// sources below advance (and nothing else does).
func clockedBlocks(t *testing.T) (*Blocks, *clock) {
	b, err := NewBlocks(64<<20, 4)
	require.NoError(t, err)
	t.Cleanup(b.Close)
	clk := &clock{}
	b.UseClock(clk.now)
	return b, clk
}

// farSource is source answering far later by clk.
func farSource(clk *clock, data []byte, calls *atomic.Int64) FetchFunc {
	src := source(data, calls)
	return func(ctx context.Context, off, n int64) ([]byte, error) {
		clk.t.Add(int64(far))
		return src(ctx, off, n)
	}
}

// opener streams data from off, answering far later by clk; after
// failAfter bytes (if > 0) the body fails.
func opener(clk *clock, data []byte, opens *atomic.Int64, failAfter int) OpenFunc {
	return func(ctx context.Context, off int64) (io.ReadCloser, error) {
		clk.t.Add(int64(far))
		opens.Add(1)
		var r io.Reader = bytes.NewReader(data[off:])
		if failAfter > 0 {
			r = io.MultiReader(io.LimitReader(r, int64(failAfter)), errReader{})
		}
		return io.NopCloser(r), nil
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

// readSequentially reads data through b the way Handle.Read does: a
// stream from the start, then the limit moved after every read.
func readSequentially(t *testing.T, b *Blocks, data []byte, fetch FetchFunc, open OpenFunc) []byte {
	size := int64(len(data))
	b.Stream("k", size, 0, 4<<20, open)
	var out []byte
	for off := int64(0); off < size; {
		dest := make([]byte, 128<<10)
		n, err := b.ReadAt(context.Background(), "k", size, dest, off, fetch)
		require.NoError(t, err)
		out = append(out, dest[:n]...)
		off += int64(n)
		b.Stream("k", size, off, 4<<20, open)
	}
	return out
}

func randomData(n int) []byte {
	data := make([]byte, n)
	_, _ = rand.NewChaCha8([32]byte{1}).Read(data)
	return data
}

func TestStreamSequentialReadIsOneRequest(t *testing.T) {
	b, clk := clockedBlocks(t)
	data := randomData(20*BlockSize + 12345)
	var fetches, opens atomic.Int64
	got := readSequentially(t, b, data, farSource(clk, data, &fetches), opener(clk, data, &opens, 0))
	require.Equal(t, data, got)
	require.EqualValues(t, 1, opens.Load(), "one stream for the whole read")
	require.Zero(t, fetches.Load(), "no block fetched apart from the stream")
}

// TestStreamLongerThanTheCacheKeepsStreaming: a file four times the
// cache's size, read in sequence, comes from the one stream to its end.
// The blocks the stream delivers ahead of its reader are the newest and
// stay until the reader takes them. With ristretto, a full cache refused
// them (it admits by how often a key was asked for, and the blocks behind
// the reader had been asked for more), so past the cache's size the
// reader fetched every block itself: a cold read of 512 MiB at 20 ms per
// request fell from 324 to 87 MB/s after the first 256 MiB.
func TestStreamLongerThanTheCacheKeepsStreaming(t *testing.T) {
	b, err := NewBlocks(16<<20, 4)
	require.NoError(t, err)
	t.Cleanup(b.Close)
	clk := &clock{}
	b.UseClock(clk.now)
	data := randomData(64*BlockSize + 777)
	var fetches, opens atomic.Int64
	got := readSequentially(t, b, data, farSource(clk, data, &fetches), opener(clk, data, &opens, 0))
	require.Equal(t, data, got)
	require.EqualValues(t, 1, opens.Load(), "one stream for the whole read")
	require.Zero(t, fetches.Load(), "no block fetched apart from the stream")
	require.LessOrEqual(t, b.Used(), int64(16<<20), "the cache holds no more than its size")
}

func TestStreamFailingMidwayFallsBackToBlocks(t *testing.T) {
	b, clk := clockedBlocks(t)
	data := randomData(12 * BlockSize)
	var fetches, opens atomic.Int64
	// Every stream dies after 2.5 blocks: a reader waiting for the broken
	// block fetches it itself, and later reads start new streams.
	got := readSequentially(t, b, data, farSource(clk, data, &fetches), opener(clk, data, &opens, 5*BlockSize/2))
	require.Equal(t, data, got)
	require.Greater(t, opens.Load(), int64(4), "a new stream after each failure")
}

func TestStreamDoesNotFollowAFarReader(t *testing.T) {
	b, clk := clockedBlocks(t)
	data := randomData(40 * BlockSize)
	var opens atomic.Int64
	open := opener(clk, data, &opens, 0)
	require.True(t, b.Stream("k", int64(len(data)), 0, 2*BlockSize, open))
	// A reader 30 MiB on (another handle, a seek) is not served by the
	// stream at the start; it fetches its own blocks.
	require.False(t, b.Stream("k", int64(len(data)), 30*BlockSize, 2*BlockSize, open))
}

// A stream from the first byte to the last leaves the content on disk;
// a new cache over the same directory (a remount) reads its blocks from
// there, without the repository. A stream that failed leaves nothing.
func TestStreamKeepsWholeContentOnDisk(t *testing.T) {
	dir := t.TempDir()
	disk, err := OpenDisk(dir, 64<<20)
	require.NoError(t, err)
	b, err := NewBlocks(64<<20, 4)
	require.NoError(t, err)
	clk := &clock{}
	b.UseClock(clk.now)
	b.UseDisk(disk)
	data := randomData(5*BlockSize + 777)
	broken := randomData(5 * BlockSize)
	var fetches, opens atomic.Int64
	require.Equal(t, data, readSequentially(t, b, data, farSource(clk, data, &fetches), opener(clk, data, &opens, 0)))
	b2 := "k2" // another content, whose stream dies
	size := int64(len(broken))
	b.Stream(b2, size, 0, 4<<20, opener(clk, broken, &opens, 2*BlockSize))
	dest := make([]byte, size)
	_, err = b.ReadAt(context.Background(), b2, size, dest, 0, farSource(clk, broken, &fetches))
	require.NoError(t, err)
	require.Equal(t, broken, dest)
	require.Eventually(t, func() bool { return disk.Has("k", int64(len(data))) }, time.Minute, 10*time.Millisecond)
	b.Close()
	require.False(t, disk.Has(b2, size), "an interrupted stream keeps nothing")

	disk2, err := OpenDisk(dir, 64<<20)
	require.NoError(t, err)
	require.EqualValues(t, len(data), disk2.Used())
	b3, err := NewBlocks(64<<20, 4)
	require.NoError(t, err)
	t.Cleanup(b3.Close)
	b3.UseClock(clk.now)
	b3.UseDisk(disk2)
	fetches.Store(0)
	opens.Store(0)
	require.Equal(t, data, readSequentially(t, b3, data, farSource(clk, data, &fetches), opener(clk, data, &opens, 0)))
	require.Zero(t, fetches.Load()+opens.Load(), "read from disk")
}

// The disk cache keeps to its budget, dropping the least recently used.
func TestDiskEvictsLeastRecentlyUsed(t *testing.T) {
	d, err := OpenDisk(t.TempDir(), 10<<10)
	require.NoError(t, err)
	put := func(key string) {
		w := d.Create(key, 4<<10)
		require.NotNil(t, w)
		require.NoError(t, w.Write(bytes.Repeat([]byte{key[0]}, 4<<10)))
		require.NoError(t, w.Commit())
	}
	put("a")
	put("b")
	fh, ok := d.Open("a", 4<<10) // a is used: b is older now
	require.True(t, ok)
	fh.Close()
	put("c")
	require.True(t, d.Has("a", 4<<10))
	require.False(t, d.Has("b", 4<<10))
	require.True(t, d.Has("c", 4<<10))
	require.LessOrEqual(t, d.Used(), int64(10<<10))
	require.Nil(t, d.Create("huge", 6<<10), "more than half the budget is not kept")
	w := d.Create("short", 4<<10)
	require.NoError(t, w.Write([]byte("x")))
	require.Error(t, w.Commit(), "an incomplete content is dropped")
	require.False(t, d.Has("short", 4<<10))
}

// Near a repository that answers at once, blocks fetched in parallel beat
// one connection's stream: none is started.
func TestNoStreamFromANearRepository(t *testing.T) {
	b, clk := clockedBlocks(t)
	data := randomData(8 * BlockSize)
	var fetches, opens atomic.Int64
	src := source(data, &fetches)
	near := func(ctx context.Context, off, n int64) ([]byte, error) {
		clk.t.Add(int64(time.Millisecond)) // the answer comes within a millisecond
		return src(ctx, off, n)
	}
	dest := make([]byte, 1000)
	_, err := b.ReadAt(context.Background(), "k", int64(len(data)), dest, 0, near)
	require.NoError(t, err)
	require.False(t, b.Stream("k", int64(len(data)), 1000, 4<<20, opener(clk, data, &opens, 0)))
	require.Zero(t, opens.Load())
}

// TestASlowFirstAnswerLeavesANearRepositoryNear: the quickest recent
// answer decides. A server whose own caches were cold answered its first
// requests in over 5 ms on loopback; averaged in, they made it far, the
// file was streamed (at 368 MB/s, against 915–982 in blocks), and the
// stream gave no answers to time that could have changed it back. A
// listing that answers fast (NoteAnswer) says near; a repository all of
// whose answers take a round trip stays far.
func TestASlowFirstAnswerLeavesANearRepositoryNear(t *testing.T) {
	b, _ := clockedBlocks(t)
	require.False(t, b.near(), "not known yet: far")
	b.noteLatency(30 * time.Millisecond) // the first stream's open, cold
	require.False(t, b.near())
	b.NoteAnswer(time.Millisecond) // a listing
	require.True(t, b.near())

	far, _ := clockedBlocks(t)
	for _, d := range []time.Duration{25, 21, 20, 40, 22} {
		far.NoteAnswer(d * time.Millisecond)
	}
	require.False(t, far.near())
	for range len(far.answers) { // the network moved: only the latest answers count
		far.NoteAnswer(time.Millisecond)
	}
	require.True(t, far.near())
	for range len(far.answers) {
		far.NoteAnswer(20 * time.Millisecond)
	}
	require.False(t, far.near())
}
