package axelor_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	dfs "github.com/dmsfs/dmsfs/fs"
	"github.com/dmsfs/dmsfs/fs/fstest"
	"github.com/dmsfs/dmsfs/internal/faultproxy"
	"github.com/dmsfs/dmsfs/remote/axelor"
	"github.com/dmsfs/dmsfs/remote/axelor/axelortest"
)

// BenchmarkStatDuringUpload measures the worst latency of stat and ls -l
// in a folder while a 300 MiB file in it uploads through a proxy that
// adds 20 ms to every request, beside the same operations with no upload
// running (scripts/upload-latency.sh prints them). DMSFS_UPLOAD_MIB sets
// the size.
func BenchmarkStatDuringUpload(b *testing.B) {
	size := 300
	fmt.Sscan(os.Getenv("DMSFS_UPLOAD_MIB"), &size)
	srv, err := axelortest.New(b.TempDir(), axelortest.Options{Users: map[string]string{testUser: testPassword}})
	require.NoError(b, err)
	hs := httptest.NewServer(srv.Handler())
	b.Cleanup(func() { hs.Close(); srv.Close() })
	p := faultproxy.Start(b, hs.URL)
	p.SetLatency(20 * time.Millisecond)
	c, err := axelor.New(context.Background(), axelor.Config{BaseURL: p.URL, User: testUser, Password: testPassword})
	require.NoError(b, err)
	e := fstest.Mount(b, c, dfs.Options{DirCacheTime: time.Second})
	dir := e.Path("work")
	require.NoError(b, os.Mkdir(dir, 0o755))
	for i := range 20 {
		require.NoError(b, os.WriteFile(filepath.Join(dir, fmt.Sprintf("small%02d.txt", i)), []byte("small"), 0o644))
	}
	// worst runs stat of a small file and ls -l of the folder until stop
	// is closed and returns the worst of each.
	worst := func(stop <-chan struct{}) (stat, ls time.Duration, n int) {
		for {
			select {
			case <-stop:
				return stat, ls, n
			default:
			}
			t0 := time.Now()
			_, err := os.Stat(filepath.Join(dir, "small07.txt"))
			require.NoError(b, err)
			t1 := time.Now()
			entries, err := os.ReadDir(dir)
			require.NoError(b, err)
			for _, de := range entries {
				_, err := de.Info() // ls -l: an lstat per entry
				require.NoError(b, err)
			}
			t2 := time.Now()
			stat, ls, n = max(stat, t1.Sub(t0)), max(ls, t2.Sub(t1)), n+1
			time.Sleep(5 * time.Millisecond)
		}
	}
	for range b.N {
		// The content is made first: a pause between the two phases
		// would let every cached listing expire, and the first stat after
		// it would pay for listing the root and the folder whatever runs.
		big := filepath.Join(b.TempDir(), "big.bin")
		fstest.WriteFile(b, big, size<<20, 1)
		out, err := os.ReadFile(big)
		require.NoError(b, err)
		idle := make(chan struct{})
		time.AfterFunc(3*time.Second, func() { close(idle) })
		idleStat, idleLs, _ := worst(idle)

		done := make(chan struct{})
		start := time.Now()
		go func() {
			defer close(done)
			// close waits for the upload
			if err := os.WriteFile(filepath.Join(dir, "big.bin"), out, 0o644); err != nil {
				b.Error(err)
			}
		}()
		upStat, upLs, n := worst(done)
		took := time.Since(start)
		fmt.Printf("upload of %d MiB through a proxy adding 20 ms per request: %.1f s\n", size, took.Seconds())
		fmt.Printf("%-28s %10s %12s %8s\n", "worst latency", "idle", "uploading", "ratio")
		fmt.Printf("%-28s %8.1fms %10.1fms %8.1f\n", "stat of another file", ms(idleStat), ms(upStat), ms(upStat)/ms(idleStat))
		fmt.Printf("%-28s %8.1fms %10.1fms %8.1f\n", "ls -l of the folder", ms(idleLs), ms(upLs), ms(upLs)/ms(idleLs))
		fmt.Printf("(%d rounds of stat + ls -l during the upload; target: under 50 ms)\n", n)
		b.ReportMetric(ms(upStat), "worst-stat-ms")
		b.ReportMetric(ms(upLs), "worst-ls-ms")
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
