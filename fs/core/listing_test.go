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
	"github.com/dmsfs/dmsfs/remote/remotetest"
)

// heldListRepo holds every listing until the test releases it (or the
// caller gives up) and counts them.
type heldListRepo struct {
	remote.Repository
	lists   atomic.Int32
	started chan struct{}
	release chan struct{}
}

func (r *heldListRepo) List(ctx context.Context, id remote.ID) ([]remote.Node, error) {
	r.lists.Add(1)
	r.started <- struct{}{}
	select {
	case <-r.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return r.Repository.List(ctx, id)
}

// TestConcurrentLookupsShareOneListing: lookups that find the listing out
// of date while it is being fetched wait for that fetch instead of asking
// the server again (the kernel sends a lookup per path and per program;
// during a slow upload they used to queue one listing each), and a lookup
// whose own context ends stops waiting without failing the others.
func TestConcurrentLookupsShareOneListing(t *testing.T) {
	ctx := context.Background()
	base := embeddedRepo(t)
	root, err := base.Root(ctx)
	require.NoError(t, err)
	for _, name := range []string{"a.txt", "b.txt", "c.txt"} {
		_, err := base.Insert(ctx, root.ID, name, remotetest.Content([]byte(name)))
		require.NoError(t, err)
	}
	repo := &heldListRepo{Repository: base, started: make(chan struct{}, 3), release: make(chan struct{})}
	fsys := newCore(t, repo, core.Options{})

	type result struct {
		name string
		err  error
	}
	results := make(chan result, 3)
	lookup := func(ctx context.Context, name string) {
		_, err := fsys.Root().Lookup(ctx, name)
		results <- result{name, err}
	}
	go lookup(ctx, "a.txt")
	<-repo.started // the first lookup is listing
	go lookup(ctx, "b.txt")
	gone, cancel := context.WithCancel(ctx)
	go lookup(gone, "c.txt")
	cancel()
	r := <-results
	require.Equal(t, "c.txt", r.name, "only the interrupted lookup ends before the listing does")
	require.ErrorIs(t, r.err, context.Canceled)
	close(repo.release)
	for range 2 {
		r := <-results
		require.NoError(t, r.err, r.name)
	}
	require.EqualValues(t, 1, repo.lists.Load(), "one listing for all lookups")
}

// listCountingRepo counts listings.
type listCountingRepo struct {
	remote.Repository
	lists atomic.Int32
}

func (r *listCountingRepo) List(ctx context.Context, id remote.ID) ([]remote.Node, error) {
	r.lists.Add(1)
	return r.Repository.List(ctx, id)
}

// TestWriteBackCreatesAskNothing: with write-back a create trusts the
// listing it has, however old or stale (the upload looks for a namesake
// later), so a cp of many files never waits for the listings that
// uploads beside it take; without write-back it asks.
func TestWriteBackCreatesAskNothing(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name      string
		writeBack time.Duration
		asks      bool
	}{{"write-back", time.Hour, false}, {"close confirms", 0, true}} {
		t.Run(c.name, func(t *testing.T) {
			repo := &listCountingRepo{Repository: embeddedRepo(t)}
			now := time.Unix(1_800_000_000, 0)
			fsys := newCore(t, repo, core.Options{WriteBack: c.writeBack, DirCacheTime: time.Second, Now: func() time.Time { return now }})
			_, err := fsys.Root().Readdir(ctx)
			require.NoError(t, err)
			now = now.Add(time.Minute) // the listing expired
			before := repo.lists.Load()
			for _, name := range []string{"a.txt", "b.txt"} {
				_, h, err := fsys.Root().Create(ctx, name, syscall.O_WRONLY|syscall.O_CREAT|syscall.O_EXCL, 0o644)
				require.NoError(t, err)
				_, err = h.Write(ctx, []byte(name), 0)
				require.NoError(t, err)
				if c.writeBack > 0 {
					require.NoError(t, h.Flush(ctx))
					require.NoError(t, h.Release(ctx))
				}
			}
			if c.asks {
				require.Greater(t, repo.lists.Load(), before)
			} else {
				require.Equal(t, before, repo.lists.Load(), "no listing asked for")
			}
		})
	}
}

// TestCreatesInANewFolderAskNothing: a folder this mount made is known
// empty, so with write-back the files cp -r creates in it ask the server
// nothing (the first create waited a round trip for the new folder's
// listing); the uploads still look for a namesake another client made.
func TestCreatesInANewFolderAskNothing(t *testing.T) {
	ctx := context.Background()
	repo := &listCountingRepo{Repository: embeddedRepo(t)}
	fsys := newCore(t, repo, core.Options{WriteBack: time.Hour})
	sub, err := fsys.Root().Mkdir(ctx, "new", 0o755)
	require.NoError(t, err)
	before := repo.lists.Load()
	for _, name := range []string{"a.txt", "b.txt"} {
		_, h, err := sub.Create(ctx, name, syscall.O_WRONLY|syscall.O_CREAT|syscall.O_EXCL, 0o644)
		require.NoError(t, err)
		_, err = h.Write(ctx, []byte(name), 0)
		require.NoError(t, err)
		require.NoError(t, h.Flush(ctx))
		require.NoError(t, h.Release(ctx))
	}
	require.Equal(t, before, repo.lists.Load(), "no listing asked for")
	list, err := sub.Readdir(ctx)
	require.NoError(t, err)
	require.Len(t, list, 2)
	require.Equal(t, before, repo.lists.Load(), "the new folder's listing is what this mount made in it")
}

// TestNamesakeProbeIsShared: the uploads of files created on a cached
// listing look for a document of their name that another client made
// meanwhile in one listing they share (not one each, nor one applied and
// taken again because the creates changed the folder): the other
// client's b.txt gets this mount's content as its next version, a.txt
// and c.txt become documents.
func TestNamesakeProbeIsShared(t *testing.T) {
	ctx := context.Background()
	base := embeddedRepo(t)
	repo := &listCountingRepo{Repository: base}
	fsys := newCore(t, repo, core.Options{WriteBack: time.Hour, QueueTick: time.Hour})
	_, err := fsys.Root().Readdir(ctx)
	require.NoError(t, err)
	for _, name := range []string{"a.txt", "b.txt", "c.txt"} {
		_, h, err := fsys.Root().Create(ctx, name, syscall.O_WRONLY|syscall.O_CREAT|syscall.O_EXCL, 0o644)
		require.NoError(t, err)
		_, err = h.Write(ctx, []byte("ours "+name), 0)
		require.NoError(t, err)
		require.NoError(t, h.Flush(ctx))
		require.NoError(t, h.Release(ctx))
	}
	root, err := base.Root(ctx)
	require.NoError(t, err)
	theirs, err := base.Insert(ctx, root.ID, "b.txt", remotetest.Content([]byte("theirs")))
	require.NoError(t, err)
	before := repo.lists.Load()
	require.NoError(t, fsys.Settle(ctx))
	require.Equal(t, before+1, repo.lists.Load(), "one listing for the three uploads")
	kids, err := base.List(ctx, root.ID)
	require.NoError(t, err)
	require.Len(t, kids, 3, "no second b.txt")
	vs, err := base.Versions(ctx, theirs.ID)
	require.NoError(t, err)
	require.Len(t, vs, 2, "their b.txt, then ours")
	require.Equal(t, "ours b.txt", read(t, base, theirs.ID))
}

// listOrderRepo records the folders listed, in order.
type listOrderRepo struct {
	remote.Repository
	listed chan remote.ID
}

func (r *listOrderRepo) List(ctx context.Context, id remote.ID) ([]remote.Node, error) {
	r.listed <- id
	return r.Repository.List(ctx, id)
}

// TestSubfoldersAreListedAheadInNameOrder: a listing for the kernel lists
// its subfolders ahead in name order, the order ls -R and rsync enter
// them, so that the first one a walker waits for is asked for first
// (they were taken in the map's order, and ls -lR waited on the first
// folders while later ones were fetched).
func TestSubfoldersAreListedAheadInNameOrder(t *testing.T) {
	ctx := context.Background()
	base := embeddedRepo(t)
	root, err := base.Root(ctx)
	require.NoError(t, err)
	names := map[remote.ID]string{}
	for _, name := range []string{"m", "c", "x", "a", "k", "b", "z", "d", "q", "e", "y", "f"} {
		n, err := base.Mkdir(ctx, root.ID, name)
		require.NoError(t, err)
		names[n.ID] = name
	}
	repo := &listOrderRepo{Repository: base, listed: make(chan remote.ID, 64)}
	fsys := newCore(t, repo, core.Options{PrefetchListings: 1}) // one at a time: their order shows
	_, _, err = fsys.Root().Listing(ctx)
	require.NoError(t, err)
	require.Equal(t, root.ID, <-repo.listed)
	var order []string
	for range names {
		order = append(order, names[<-repo.listed])
	}
	require.Equal(t, []string{"a", "b", "c", "d", "e", "f", "k", "m", "q", "x", "y", "z"}, order)
}
