package invenio_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

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
