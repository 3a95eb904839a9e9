package core_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dmsfs/dmsfs/cache"
	"github.com/dmsfs/dmsfs/fs/core"
	"github.com/dmsfs/dmsfs/remote"
	"github.com/dmsfs/dmsfs/remote/embedded"
)

// embeddedRepo is an embedded repository in a test directory.
func embeddedRepo(t *testing.T) *embedded.Repo {
	t.Helper()
	repo, err := embedded.Open(t.TempDir(), embedded.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { repo.Close() })
	return repo
}

// newCore is the core over repo with its spool in a test directory.
func newCore(t *testing.T, repo remote.Repository, opts core.Options) *core.FS {
	t.Helper()
	spool, err := cache.OpenSpool(t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { spool.Close() })
	fsys, err := core.New(context.Background(), repo, spool, opts)
	require.NoError(t, err)
	t.Cleanup(fsys.Close)
	return fsys
}
