package invenio_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dmsfs/dmsfs/fs/fstest"
	"github.com/dmsfs/dmsfs/internal/faultproxy"
	"github.com/dmsfs/dmsfs/remote"
	"github.com/dmsfs/dmsfs/remote/invenio"
	"github.com/dmsfs/dmsfs/remote/invenio/inveniotest"
)

// TestFaults runs the fault matrix's writes, saves and reads inside one
// draft record, through a proxy in front of the Invenio server (files
// stored locally, so that every request passes the proxy).
func TestFaults(t *testing.T) {
	var rows []fstest.FaultRow
	// At 50 % the Invenio rows take minutes (every upload is four
	// requests, each retried with backoff); DMSFS_FAULT_RATES=all adds
	// them (scripts/load.sh).
	rates := []float64{0.1}
	if os.Getenv("DMSFS_FAULT_RATES") == "all" {
		rates = append(rates, 0.5)
	}
	for _, rate := range rates {
		for _, kind := range faultproxy.Kinds {
			t.Run(fmt.Sprintf("%s/%.0f%%", kind, rate*100), func(t *testing.T) {
				n := 8
				if rate > 0.2 {
					n = 4
				}
				if v, err := strconv.Atoi(os.Getenv("DMSFS_FAULT_FILES")); err == nil && v > 0 {
					n = v
				}
				_, url := inveniotest.Start(t, inveniotest.Options{})
				direct, err := invenio.New(context.Background(), invenio.Config{BaseURL: url, Token: inveniotest.TestToken, CacheDir: t.TempDir()})
				require.NoError(t, err)
				t.Cleanup(func() { direct.Close() })
				p := faultproxy.Start(t, url)
				p.SetStall(1e9)
				viaProxy, err := invenio.New(context.Background(), invenio.Config{BaseURL: p.URL, Token: inveniotest.TestToken, CacheDir: t.TempDir()})
				require.NoError(t, err)
				t.Cleanup(func() { viaProxy.Close() })
				rec, err := direct.Mkdir(context.Background(), "root", "faults")
				require.NoError(t, err)
				r := fstest.RunFaults(t, p, fstest.AtFolder(viaProxy, rec.ID), fstest.AtFolder(direct, rec.ID), []faultproxy.Kind{kind}, rate, n)
				rows = append(rows, r)
				r.Require(t)
			})
		}
	}
	fstest.ReportFaults(t, "Invenio", rows)
}

// TestStalledServerTimesOut: a server that accepts a request and then says
// nothing makes the call fail after Config.Timeout as unavailable (so that
// the filesystem keeps the data and retries), instead of hanging.
func TestStalledServerTimesOut(t *testing.T) {
	_, url := inveniotest.Start(t, inveniotest.Options{})
	p := faultproxy.Start(t, url)
	repo, err := invenio.New(context.Background(), invenio.Config{BaseURL: p.URL, Token: inveniotest.TestToken,
		CacheDir: t.TempDir(), Timeout: 300 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { repo.Close() })
	p.SetStall(time.Minute)
	p.Set(1, faultproxy.Stall)
	start := time.Now()
	_, err = repo.Mkdir(context.Background(), "root", "stalled")
	require.ErrorIs(t, err, remote.ErrUnavailable)
	require.Less(t, time.Since(start), 30*time.Second, "the stall lasts a minute; the timeout ended the wait")
	p.Set(0)
	_, err = repo.List(context.Background(), "root")
	require.NoError(t, err, "a later call works once the server answers again")
}
