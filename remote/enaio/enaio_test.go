package enaio_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dmsfs/dmsfs/fs/fstest"
	"github.com/dmsfs/dmsfs/remote"
	"github.com/dmsfs/dmsfs/remote/enaio"
	"github.com/dmsfs/dmsfs/remote/enaio/enaiotest"
	"github.com/dmsfs/dmsfs/remote/remotetest"
)

// connect returns a client for srv.
func connect(t *testing.T, srv *enaiotest.Server, cfg enaio.Config) *enaio.Repo {
	t.Helper()
	cfg.Addr, cfg.User, cfg.Password = srv.Addr(), enaiotest.TestUser, enaiotest.TestPassword
	if cfg.CacheDir == "" {
		cfg.CacheDir = t.TempDir()
	}
	if pem := srv.CertPEM(); pem != nil {
		ca := filepath.Join(t.TempDir(), "ca.pem")
		require.NoError(t, os.WriteFile(ca, pem, 0o600))
		cfg.TLS, cfg.CAFile = true, ca
	}
	r, err := enaio.New(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { r.Close() })
	return r
}

var folders atomic.Int64

// inFolder makes a folder object in the cabinet "Akten" and returns the
// repository seen from it: documents and registers live in folders, the
// root holds cabinets.
func inFolder(t *testing.T, r *enaio.Repo, name string) remote.Repository {
	t.Helper()
	f, err := r.Mkdir(context.Background(), "c:akten", fmt.Sprintf("%s %d", name, folders.Add(1)))
	require.NoError(t, err)
	return fstest.AtFolder(r, f.ID)
}

func TestConformance(t *testing.T) {
	for _, c := range []struct {
		name string
		opts enaiotest.Options
	}{
		{"TCP", enaiotest.Options{}},
		{"TLS", enaiotest.Options{TLS: true, MaxPage: 3}},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := enaiotest.Start(t, c.opts)
			remotetest.Run(t, func(t *testing.T) remote.Repository {
				return inFolder(t, connect(t, srv, enaio.Config{}), "conformance")
			})
		})
	}
}

func TestFilesystem(t *testing.T) {
	srv := enaiotest.Start(t, enaiotest.Options{})
	fstest.Run(t, func(t *testing.T) remote.Repository {
		return inFolder(t, connect(t, srv, enaio.Config{}), "fstest")
	})
}
