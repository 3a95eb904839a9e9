package cache

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// diskBlocks is a cache with a disk cache, whose repository was found to
// answer in latency; the test clock never moves, so the fetches of the
// test time no answers.
func diskBlocks(t *testing.T, latency time.Duration) (*Blocks, *Disk) {
	disk, err := OpenDisk(t.TempDir(), 64<<20)
	require.NoError(t, err)
	b, err := NewBlocks(64<<20, 4)
	require.NoError(t, err)
	t.Cleanup(b.Close)
	b.UseDisk(disk)
	b.UseClock((&clock{}).now)
	b.noteLatency(latency)
	return b, disk
}

// nearDiskBlocks is diskBlocks of a repository that answers at once (no
// streams: blocks fetched in parallel).
func nearDiskBlocks(t *testing.T) (*Blocks, *Disk) {
	b, disk := diskBlocks(t, time.Millisecond)
	require.True(t, b.near())
	return b, disk
}

// Near a repository no stream runs, so no stream's copy: a copy follows
// the reader that reads from the start, from the blocks it fetched, and
// is kept once whole. The content is fetched once.
func TestNearReadFromTheStartIsKeptOnDisk(t *testing.T) {
	b, disk := nearDiskBlocks(t)
	data := randomData(5*BlockSize + 777)
	size := int64(len(data))
	var fetches, opens atomic.Int64
	fetch := source(data, &fetches)
	for off := int64(0); off < size; {
		dest := make([]byte, 128<<10)
		n, err := b.ReadAt(context.Background(), "k", size, dest, off, fetch)
		require.NoError(t, err)
		require.Equal(t, data[off:off+int64(n)], dest[:n])
		off += int64(n)
		require.False(t, b.Stream("k", size, off, 4<<20, opener(&clock{}, data, &opens, 0)), "at %d", off)
		b.Keep("k", size, off, fetch)
	}
	require.Eventually(t, func() bool { return disk.Has("k", size) }, time.Minute, 10*time.Millisecond,
		"the whole read leaves a copy on disk")
	require.EqualValues(t, 6, fetches.Load(), "each block fetched once, for the reader")
	require.Zero(t, opens.Load())
	fh, ok := disk.Open("k", size)
	require.True(t, ok)
	defer fh.Close()
	got := make([]byte, size)
	_, err := fh.ReadAt(got, 0)
	require.NoError(t, err)
	require.Equal(t, data, got)
}

// The copy goes no further than the reader: a reader that stops after
// the first block leaves the rest unfetched and nothing kept.
func TestCopyStopsWithItsReader(t *testing.T) {
	b, disk := nearDiskBlocks(t)
	data := randomData(4 * BlockSize)
	size := int64(len(data))
	var fetches atomic.Int64
	fetch := source(data, &fetches)
	dest := make([]byte, 4096)
	_, err := b.ReadAt(context.Background(), "k", size, dest, 0, fetch)
	require.NoError(t, err)
	b.Keep("k", size, int64(len(dest)), fetch)
	b.Keep("k", size, BlockSize, fetch) // the whole first block read
	b.smu.Lock()
	k := b.keepers["k"]
	b.smu.Unlock()
	require.NotNil(t, k, "a copy follows the reader")
	require.EqualValues(t, 1, fetches.Load(), "nothing fetched beyond what the reader read")
	require.False(t, disk.Has("k", size))
}

// Across a network a copy does not fetch again what the cache dropped: it
// ends there, and a later read does not begin it again (it would end at
// the same block, having copied the same ones).
func TestFarCopyEndsAtADroppedBlockForGood(t *testing.T) {
	b, disk := diskBlocks(t, 10*time.Second) // far
	require.False(t, b.near())
	data := randomData(3 * BlockSize)
	size := int64(len(data))
	var fetches atomic.Int64
	fetch := source(data, &fetches)
	dest := make([]byte, 2*BlockSize)
	_, err := b.ReadAt(context.Background(), "k", size, dest, 0, fetch)
	require.NoError(t, err)
	b.c.Del(blockKey("k", 1))
	b.Keep("k", size, 2*BlockSize, fetch)
	keeping := func() bool {
		b.smu.Lock()
		defer b.smu.Unlock()
		return b.keepers["k"] != nil
	}
	require.Eventually(t, func() bool { return !keeping() }, time.Minute, time.Millisecond, "the copy ends")
	b.Keep("k", size, 2*BlockSize, fetch)
	require.False(t, keeping(), "and is not begun again")
	require.EqualValues(t, 2, fetches.Load(), "the copy fetched nothing")
	require.False(t, disk.Has("k", size))
	require.Zero(t, disk.Used())
}

// Near the repository the copy fetches again a block the cache dropped
// before the copy got to it, and keeps the content whole; but bytes of a
// content that changed under the read (ErrUnverified) never go into a
// copy kept under the old content's name.
func TestNearCopyFetchesOnlyVerifiedBytes(t *testing.T) {
	for _, changed := range []bool{false, true} {
		t.Run(map[bool]string{false: "dropped block fetched again", true: "content changed"}[changed], func(t *testing.T) {
			b, disk := nearDiskBlocks(t)
			data := randomData(3 * BlockSize)
			size := int64(len(data))
			var fetches atomic.Int64
			src := source(data, &fetches)
			var after atomic.Bool // the reader is done: the document's content changes now
			fetch := func(ctx context.Context, off, n int64) ([]byte, error) {
				if changed && after.Load() {
					return randomData(int(n)), ErrUnverified
				}
				return src(ctx, off, n)
			}
			// The copy waits for the reader's first report, so the block
			// can be dropped before it is copied.
			dest := make([]byte, 3*BlockSize)
			_, err := b.ReadAt(context.Background(), "k", size, dest, 0, fetch)
			require.NoError(t, err)
			b.c.Del(blockKey("k", 0))
			after.Store(true)
			b.Keep("k", size, size, fetch)
			keeping := func() bool {
				b.smu.Lock()
				defer b.smu.Unlock()
				return b.keepers["k"] != nil
			}
			require.Eventually(t, func() bool { return !keeping() }, time.Minute, time.Millisecond)
			if changed {
				require.False(t, disk.Has("k", size), "nothing kept of a changed content")
				return
			}
			require.True(t, disk.Has("k", size))
			require.EqualValues(t, 4, fetches.Load(), "the dropped block once more")
			fh, ok := disk.Open("k", size)
			require.True(t, ok)
			defer fh.Close()
			got := make([]byte, size)
			_, err = fh.ReadAt(got, 0)
			require.NoError(t, err)
			require.Equal(t, data, got)
		})
	}
}
