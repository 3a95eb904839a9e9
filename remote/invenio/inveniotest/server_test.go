package inveniotest_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dmsfs/dmsfs/remote"
	"github.com/dmsfs/dmsfs/remote/invenio"
	"github.com/dmsfs/dmsfs/remote/invenio/inveniotest"
)

// The server keeps its records and files in its data directory across
// restarts.
func TestStatePersists(t *testing.T) {
	dir := t.TempDir()
	opts := inveniotest.Options{Tokens: map[string]string{inveniotest.TestToken: "tester"}}
	open := func() (*inveniotest.Server, *invenio.Repo, func()) {
		s, err := inveniotest.New(dir, opts)
		require.NoError(t, err)
		api := httptest.NewServer(s.Handler())
		r, err := invenio.New(context.Background(), invenio.Config{BaseURL: api.URL, Token: inveniotest.TestToken, CacheDir: t.TempDir()})
		require.NoError(t, err)
		return s, r, func() { r.Close(); api.Close(); require.NoError(t, s.Close()) }
	}
	ctx := context.Background()
	_, r, stop := open()
	rec, err := r.Mkdir(ctx, "root", "kept")
	require.NoError(t, err)
	for _, name := range []string{"a.txt", "b.txt", "c.txt"} { // changes in quick succession are saved too
		_, err = r.Insert(ctx, rec.ID, name, remote.Content{ReaderAt: strings.NewReader(name), Size: int64(len(name))})
		require.NoError(t, err)
	}
	stop()

	_, r, stop = open()
	defer stop()
	kids, err := r.List(ctx, "root")
	require.NoError(t, err)
	require.Len(t, kids, 1)
	files, err := r.List(ctx, kids[0].ID)
	require.NoError(t, err)
	require.Len(t, files, 3)
}
