package invenio_test

import (
	"context"
	"io"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dmsfs/dmsfs/fs/fstest"
	"github.com/dmsfs/dmsfs/remote"
	"github.com/dmsfs/dmsfs/remote/invenio"
	"github.com/dmsfs/dmsfs/remote/invenio/inveniotest"
	"github.com/dmsfs/dmsfs/remote/remotetest"
)

// connect starts a test server with opts and returns a client for it.
func connect(t *testing.T, opts inveniotest.Options, cfg invenio.Config) (*invenio.Repo, *inveniotest.Server) {
	t.Helper()
	srv, url := inveniotest.Start(t, opts)
	cfg.BaseURL, cfg.Token, cfg.CacheDir = url, inveniotest.TestToken, t.TempDir()
	r, err := invenio.New(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { r.Close() })
	return r, srv
}

func TestConformance(t *testing.T) {
	for _, c := range []struct {
		name string
		opts inveniotest.Options
	}{
		{"Range", inveniotest.Options{Range: true}},
		{"NoRange", inveniotest.Options{}},
		{"S3", inveniotest.Options{S3: true, WellKnown: true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			remotetest.Run(t, func(t *testing.T) remote.Repository {
				r, _ := connect(t, c.opts, invenio.Config{})
				return r
			})
		})
	}
}

// TestFilesystem runs the filesystem suite on a mount of the Invenio
// server, inside one record (the root lists records and holds no files).
// The suite's tree has 500 files, so the record limit is raised from
// InvenioRDM's default of 100, as an instance's configuration can.
func TestFilesystem(t *testing.T) {
	fstest.Run(t, func(t *testing.T) remote.Repository {
		r, _ := connect(t, inveniotest.Options{S3: true, MaxFiles: 1000}, invenio.Config{})
		return fstest.InFolder(t, r, "fstest record")
	})
}

// A file renamed away keeps its ID (through the client's alias table); a
// new file at its old key gets an ID of its own, so the two are never
// taken for one (the reference-model test found the new file reading the
// renamed one, and ENOENT once that was deleted).
func TestNewFileAtARenamedFilesKey(t *testing.T) {
	r, _ := connect(t, inveniotest.Options{}, invenio.Config{})
	ctx := context.Background()
	rec := fstest.InFolder(t, r, "ids")
	root, err := rec.Root(ctx)
	require.NoError(t, err)
	old, err := rec.Insert(ctx, root.ID, "b.txt", remotetest.Content([]byte("old")))
	require.NoError(t, err)
	moved, err := rec.Rename(ctx, old.ID, old.Token, root.ID, "a.txt")
	require.NoError(t, err)
	require.Equal(t, old.ID, moved.ID, "a rename keeps the ID")
	fresh, err := rec.Insert(ctx, root.ID, "b.txt", remotetest.Content([]byte("new")))
	require.NoError(t, err)
	require.NotEqual(t, old.ID, fresh.ID)
	read := func(id remote.ID, name string) string {
		rc, err := rec.Open(ctx, id, name, 0, -1)
		require.NoError(t, err)
		defer rc.Close()
		b, err := io.ReadAll(rc)
		require.NoError(t, err)
		return string(b)
	}
	require.Equal(t, "new", read(fresh.ID, "b.txt"))
	require.Equal(t, "old", read(old.ID, "a.txt"))
	kids, err := rec.List(ctx, root.ID)
	require.NoError(t, err)
	ids := map[string]remote.ID{}
	for _, k := range kids {
		ids[k.Name] = k.ID
	}
	require.Equal(t, map[string]remote.ID{"a.txt": old.ID, "b.txt": fresh.ID}, ids, "the listing gives the same IDs")
	require.NoError(t, rec.Delete(ctx, old.ID, moved.Token))
	require.Equal(t, "new", read(fresh.ID, "b.txt"), "the new file outlives the old one")
}
