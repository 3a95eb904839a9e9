package core_test

import (
	"context"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dmsfs/dmsfs/fs/core"
	"github.com/dmsfs/dmsfs/remote"
)

// lostInsertRepo makes the first insert and loses its answer, as a cut
// connection does.
type lostInsertRepo struct {
	remote.Repository
	lost    atomic.Bool
	inserts atomic.Int32
}

func (r *lostInsertRepo) Insert(ctx context.Context, parent remote.ID, name string, c remote.Content) (remote.Node, error) {
	r.inserts.Add(1)
	n, err := r.Repository.Insert(ctx, parent, name, c)
	if err == nil && r.lost.CompareAndSwap(false, true) {
		return remote.Node{}, remote.ErrUnavailable
	}
	return n, err
}

// TestALostInsertAnswerMakesOneDocument: a new file's insert reaches the
// server but its answer is lost. The retry looks for a document of the
// name first and finds the one it made: one document with one version,
// not two documents of one name.
func TestALostInsertAnswerMakesOneDocument(t *testing.T) {
	ctx := context.Background()
	repo := &lostInsertRepo{Repository: embeddedRepo(t)}
	fsys := newCore(t, repo, core.Options{QueueTick: 10 * time.Millisecond})
	_, h, err := fsys.Root().Create(ctx, "new.txt", syscall.O_WRONLY|syscall.O_CREAT|syscall.O_EXCL, 0o644)
	require.NoError(t, err)
	_, err = h.Write(ctx, []byte("the only content"), 0)
	require.NoError(t, err)
	require.Error(t, h.Flush(ctx), "the close is told: the server did not confirm")
	require.NoError(t, h.Release(ctx))
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	require.NoError(t, fsys.Sync(sctx, nil))

	root, err := repo.Root(ctx)
	require.NoError(t, err)
	kids, err := repo.List(ctx, root.ID)
	require.NoError(t, err)
	require.Len(t, kids, 1, "one document: %v", kids)
	vs, err := repo.Versions(ctx, kids[0].ID)
	require.NoError(t, err)
	require.Len(t, vs, 1, "the retry found the same bytes there: no second version")
	require.EqualValues(t, 1, repo.inserts.Load(), "no second insert")
}
