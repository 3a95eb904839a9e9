package embedded_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dmsfs/dmsfs/remote"
	"github.com/dmsfs/dmsfs/remote/embedded"
	"github.com/dmsfs/dmsfs/remote/remotetest"
)

func TestConformance(t *testing.T) {
	remotetest.Run(t, func(t *testing.T) remote.Repository {
		r, err := embedded.Open(t.TempDir(), embedded.Options{})
		require.NoError(t, err)
		t.Cleanup(func() { r.Close() })
		return r
	})
}

func TestPersistsAcrossOpen(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	r, err := embedded.Open(dir, embedded.Options{})
	require.NoError(t, err)
	root, err := r.Root(ctx)
	require.NoError(t, err)
	n, err := r.Insert(ctx, root.ID, "kept.txt", remotetest.Content([]byte("kept")))
	require.NoError(t, err)
	_, err = embedded.Open(dir, embedded.Options{})
	require.ErrorContains(t, err, "in use by another process")
	require.NoError(t, r.Close())

	r, err = embedded.Open(dir, embedded.Options{})
	require.NoError(t, err)
	defer r.Close()
	got, err := r.Stat(ctx, n.ID)
	require.NoError(t, err)
	require.Equal(t, n, got)
}

func TestReadOnly(t *testing.T) {
	dir := t.TempDir()
	r, err := embedded.Open(dir, embedded.Options{})
	require.NoError(t, err)
	require.NoError(t, r.Close())
	r, err = embedded.Open(dir, embedded.Options{ReadOnly: true})
	require.NoError(t, err)
	defer r.Close()
	root, err := r.Root(context.Background())
	require.NoError(t, err)
	_, err = r.Mkdir(context.Background(), root.ID, "x")
	require.ErrorIs(t, err, remote.ErrReadOnly)
}
