package core_test

import (
	"bytes"
	"context"
	"io"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dmsfs/dmsfs/fs/core"
	"github.com/dmsfs/dmsfs/remote"
	"github.com/dmsfs/dmsfs/remote/remotetest"
)

// countingRepo counts the reads of content it is asked for, each
// answered 6 ms later by the mount's clock: across a network, where
// streams are used.
type countingRepo struct {
	remote.Repository
	opens atomic.Int64
	clock atomic.Int64 // Unix nanoseconds
}

func (c *countingRepo) now() time.Time { return time.Unix(0, c.clock.Load()) }

func (c *countingRepo) Open(ctx context.Context, doc remote.ID, file string, off, length int64) (io.ReadCloser, error) {
	c.clock.Add(int64(6 * time.Millisecond))
	c.opens.Add(1)
	return c.Repository.Open(ctx, doc, file, off, length)
}

// TestSequentialReadOutOfOrder: the kernel reads ahead with several
// requests at once, so a sequential read arrives a little out of order
// (over a network, where each answer waits a round trip). It is still one
// stream, not a request per block (bench.sh --delay 20ms found 248).
func TestSequentialReadOutOfOrder(t *testing.T) {
	repo := embeddedRepo(t)
	root, err := repo.Root(context.Background())
	require.NoError(t, err)
	data := bytes.Repeat([]byte("0123456789abcdef"), 24<<16) // 24 MiB
	_, err = repo.Insert(context.Background(), root.ID, "big.bin", remotetest.Content(data))
	require.NoError(t, err)
	counted := &countingRepo{Repository: repo}
	counted.clock.Store(time.Now().UnixNano())
	fsys := newCore(t, counted, core.Options{Now: counted.now})
	n, err := fsys.Root().Lookup(context.Background(), "big.bin")
	require.NoError(t, err)
	h, _, err := n.(*core.File).Open(context.Background(), syscall.O_RDONLY)
	require.NoError(t, err)
	const piece = 128 << 10
	var got []byte
	for off := int64(0); off < int64(len(data)); off += 2 * piece {
		// Each pair of pieces in reverse order, as two readahead requests
		// answered out of turn.
		for _, o := range []int64{off + piece, off} {
			if o >= int64(len(data)) {
				continue
			}
			b, err := h.Read(context.Background(), make([]byte, piece), o)
			require.NoError(t, err)
			require.Equal(t, data[o:o+int64(len(b))], b)
			got = append(got, b...)
		}
	}
	require.Len(t, got, len(data))
	require.NoError(t, h.Release(context.Background()))
	require.LessOrEqual(t, counted.opens.Load(), int64(2), "one stream (and the first block), not a request per block")
}
