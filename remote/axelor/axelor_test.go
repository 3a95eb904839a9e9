package axelor_test

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dmsfs/dmsfs/fs/fstest"
	"github.com/dmsfs/dmsfs/remote"
	"github.com/dmsfs/dmsfs/remote/axelor"
	"github.com/dmsfs/dmsfs/remote/axelor/axelortest"
	"github.com/dmsfs/dmsfs/remote/remotetest"
)

// testUser is an ordinary user: the test server checks their permissions
// (only "admin" and Options.Admins bypass them), as Axelor does.
const testUser, testPassword = "jdoe", "test-only-password"

// newServer runs axelortest over real HTTP.
func newServer(t *testing.T, opts axelortest.Options) (*axelortest.Server, string) {
	t.Helper()
	if opts.Users == nil {
		opts.Users = map[string]string{testUser: testPassword}
	}
	srv, err := axelortest.New(t.TempDir(), opts)
	require.NoError(t, err)
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); srv.Close() })
	return srv, hs.URL
}

func newClient(t *testing.T, url string) *axelor.Client {
	t.Helper()
	c, err := axelor.New(context.Background(), axelor.Config{BaseURL: url, User: testUser, Password: testPassword})
	require.NoError(t, err)
	return c
}

func TestConformance(t *testing.T) {
	remotetest.Run(t, func(t *testing.T) remote.Repository {
		_, url := newServer(t, axelortest.Options{})
		return newClient(t, url)
	})
}

// TestFilesystem runs the filesystem suite on a mount of the Axelor server,
// as an ordinary user (not an admin: the server's permission checks apply;
// testUser is none of its admins).
func TestFilesystem(t *testing.T) {
	fstest.Run(t, func(t *testing.T) remote.Repository {
		_, url := newServer(t, axelortest.Options{})
		return newClient(t, url)
	})
}
