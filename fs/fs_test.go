package fs_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dmsfs/dmsfs/fs/fstest"
	"github.com/dmsfs/dmsfs/remote"
	"github.com/dmsfs/dmsfs/remote/embedded"
)

// TestEmbedded runs the filesystem suite on a mount of the embedded repository.
func TestEmbedded(t *testing.T) {
	fstest.Run(t, func(t *testing.T) remote.Repository {
		r, err := embedded.Open(t.TempDir(), embedded.Options{})
		require.NoError(t, err)
		t.Cleanup(func() { r.Close() })
		return r
	})
}
