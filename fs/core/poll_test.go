package core_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dmsfs/dmsfs/fs/core"
	"github.com/dmsfs/dmsfs/remote"
	"github.com/dmsfs/dmsfs/remote/remotetest"
)

// pollRepo counts listings and can make change polls fail.
type pollRepo struct {
	remote.Repository
	lists atomic.Int32
	fail  atomic.Bool
}

func (r *pollRepo) Unwrap() remote.Repository { return r.Repository }

func (r *pollRepo) List(ctx context.Context, id remote.ID) ([]remote.Node, error) {
	r.lists.Add(1)
	return r.Repository.List(ctx, id)
}

func (r *pollRepo) Changes(ctx context.Context, cursor string, known []remote.ID) (remote.ChangeSet, error) {
	if r.fail.Load() {
		return remote.ChangeSet{}, errors.New("poll refused")
	}
	return r.Repository.(remote.Changes).Changes(ctx, cursor, known)
}

// TestPollerSparesRevalidation (issue 17, "cheap revalidation"): while the
// change poller runs and sees nothing, a listing older than DirCacheTime
// is used without asking the server; a change the poller sees lists the
// folder again at once; after a failed poll, listings expire as usual.
func TestPollerSparesRevalidation(t *testing.T) {
	ctx := context.Background()
	base := embeddedRepo(t)
	root, err := base.Root(ctx)
	require.NoError(t, err)
	_, err = base.Insert(ctx, root.ID, "a.txt", remotetest.Content([]byte("a")))
	require.NoError(t, err)
	var now atomic.Int64
	now.Store(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	step := func(d time.Duration) { now.Add(int64(d)) }
	repo := &pollRepo{Repository: base}
	fsys := newCore(t, repo, core.Options{DirCacheTime: time.Second, PollInterval: time.Minute, Now: clock})

	_, err = fsys.Root().Lookup(ctx, "a.txt")
	require.NoError(t, err)
	require.EqualValues(t, 1, repo.lists.Load())
	step(time.Millisecond)
	require.NoError(t, fsys.PollChanges(ctx)) // the starting point, after the listing
	step(5 * time.Second)                     // past DirCacheTime
	_, err = fsys.Root().Lookup(ctx, "a.txt")
	require.NoError(t, err)
	require.EqualValues(t, 1, repo.lists.Load(), "the poller vouches for the listing")

	_, err = base.Insert(ctx, root.ID, "b.txt", remotetest.Content([]byte("b")))
	require.NoError(t, err)
	require.NoError(t, fsys.PollChanges(ctx))
	require.EqualValues(t, 2, repo.lists.Load(), "a change lists the folder again")
	n, err := fsys.Root().Lookup(ctx, "b.txt")
	require.NoError(t, err)
	require.NotNil(t, n)
	require.EqualValues(t, 2, repo.lists.Load())

	repo.fail.Store(true)
	step(time.Millisecond)
	require.Error(t, fsys.PollChanges(ctx))
	step(5 * time.Second)
	_, err = fsys.Root().Lookup(ctx, "a.txt")
	require.NoError(t, err)
	require.EqualValues(t, 3, repo.lists.Load(), "after a failed poll the listing expires as usual")
}
