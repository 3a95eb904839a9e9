package invenio_test

import (
	"context"
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
