package core_test

import (
	"context"
	"io"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dmsfs/dmsfs/fs/core"
	"github.com/dmsfs/dmsfs/fs/core/reftest"
	"github.com/dmsfs/dmsfs/fs/upload"
	"github.com/dmsfs/dmsfs/remote"
	"github.com/dmsfs/dmsfs/remote/remotetest"
)

// TestServerChangeUnderAnOpenEditIsKept: another client saves a document
// while this mount edits it through an open handle, and a listing shows
// the document's new token before the edit is saved. The save must still
// be refused by the repository and end as a conflict copy beside the
// document: before, the upload took the listing's token and overwrote
// the other client's save. An edit undone (the bytes it started from) is
// kept the same way: before, it was taken for no change against the
// file's outdated view, and the mount went on showing the old content.
func TestServerChangeUnderAnOpenEditIsKept(t *testing.T) {
	for _, tc := range []struct {
		name  string
		local []byte // the open handle's content at its close
	}{
		{"an edit", []byte("one, edited here")},
		{"an edit undone", []byte("one")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			repo := embeddedRepo(t)
			root, err := repo.Root(ctx)
			require.NoError(t, err)
			doc, err := repo.Insert(ctx, root.ID, "a.txt", remotetest.Content([]byte("one")))
			require.NoError(t, err)
			clk := reftest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
			fsys := newCore(t, repo, core.Options{Now: clk.Now, DirCacheTime: time.Second, QueueTick: time.Hour})

			n, err := fsys.Root().Lookup(ctx, "a.txt")
			require.NoError(t, err)
			h, _, err := n.(*core.File).Open(ctx, syscall.O_RDWR)
			require.NoError(t, err)
			_, err = h.Write(ctx, []byte(" edited"), 3) // the local copy starts from "one"
			require.NoError(t, err)
			zero := int64(0)
			_, err = h.File().Setattr(ctx, h, core.SetAttr{Size: &zero})
			require.NoError(t, err)
			_, err = h.Write(ctx, tc.local, 0)
			require.NoError(t, err)

			_, err = repo.Replace(ctx, doc.ID, doc.Token, "a.txt", remotetest.Content([]byte("theirs")))
			require.NoError(t, err)
			clk.Advance(time.Minute)
			_, err = fsys.Root().Readdir(ctx) // the listing brings the new token
			require.NoError(t, err)
			require.NoError(t, h.Release(ctx))
			require.NoError(t, fsys.Settle(ctx))

			vs, err := repo.Versions(ctx, doc.ID)
			require.NoError(t, err)
			require.Len(t, vs, 2, "the original and the other client's save")
			require.Equal(t, "theirs", read(t, repo, doc.ID))
			kids, err := repo.List(ctx, root.ID)
			require.NoError(t, err)
			names := map[string]remote.ID{}
			for _, k := range kids {
				names[k.Name] = k.ID
			}
			cp := upload.ConflictName("a.txt", clk.Now())
			require.Len(t, names, 2)
			require.Contains(t, names, cp)
			require.Equal(t, string(tc.local), read(t, repo, names[cp]))

			clk.Advance(time.Minute)
			n, err = fsys.Root().Lookup(ctx, "a.txt")
			require.NoError(t, err)
			require.EqualValues(t, len("theirs"), n.Attr().Size, "the mount shows the other client's save")
		})
	}
}

func read(t *testing.T, repo remote.Repository, id remote.ID) string {
	t.Helper()
	n, err := repo.Stat(context.Background(), id)
	require.NoError(t, err)
	rc, err := repo.Open(context.Background(), id, n.Files[0].Name, 0, -1)
	require.NoError(t, err)
	defer rc.Close()
	b, err := io.ReadAll(rc)
	require.NoError(t, err)
	return string(b)
}
