package axelor_test

import (
	"context"
	"fmt"
	dfs "github.com/dmsfs/dmsfs/fs"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dmsfs/dmsfs/fs/fstest"
	"github.com/dmsfs/dmsfs/internal/faultproxy"
	"github.com/dmsfs/dmsfs/remote/axelor"
	"github.com/dmsfs/dmsfs/remote/axelor/axelortest"
)

// TestFaults writes a tree with cp -r, saves a third of it again with
// rsync -a (temp file + rename over) and reads everything back, through a
// proxy that injects one kind of fault into 10 % and 50 % of the requests.
// Then the faults stop, pending uploads finish, and the repository is
// compared file by file: every file is intact, or its writer was told; a
// read never returned wrong bytes.
func TestFaults(t *testing.T) {
	// CI runs a small tree; scripts/faults.sh sets DMSFS_FAULT_FILES for
	// the full matrix.
	files := 12
	if n, err := strconv.Atoi(os.Getenv("DMSFS_FAULT_FILES")); err == nil && n > 0 {
		files = n
	}
	var rows []fstest.FaultRow
	for _, rate := range []float64{0.1, 0.5} {
		for _, kind := range faultproxy.Kinds {
			t.Run(fmt.Sprintf("%s/%.0f%%", kind, rate*100), func(t *testing.T) {
				n := files
				if rate > 0.2 && os.Getenv("DMSFS_FAULT_FILES") == "" {
					n = files / 2 // every request is slower at 50 %
				}
				r := runFaults(t, []faultproxy.Kind{kind}, rate, n)
				rows = append(rows, r)
				r.Require(t)
			})
		}
	}
	fstest.ReportFaults(t, "Axelor", rows)
}

func runFaults(t *testing.T, kinds []faultproxy.Kind, rate float64, n int) fstest.FaultRow {
	_, url := newServer(t, axelortest.Options{})
	p := faultproxy.Start(t, url)
	p.SetStall(time.Second)
	c, err := axelor.New(context.Background(), axelor.Config{BaseURL: p.URL, User: testUser, Password: testPassword, Timeout: 700 * time.Millisecond})
	require.NoError(t, err)
	return fstest.RunFaults(t, p, c, newClient(t, url), kinds, rate, n)
}

// TestTwoMountsWriteOneDocument: two mounts (two sessions) of one
// repository save the same document one after the other, the second based
// on what it read before the first saved: the first wins, the second's
// content becomes a conflict copy, neither is dropped. Then both save a new
// file of the same name at once: both contents survive.
func TestTwoMountsWriteOneDocument(t *testing.T) {
	_, url := newServer(t, axelortest.Options{})
	a := fstest.Mount(t, newClient(t, url), dfs.Options{})
	b := fstest.Mount(t, newClient(t, url), dfs.Options{})
	require.NoError(t, os.WriteFile(a.Path("plan.txt"), []byte("v1"), 0o644))

	fb, err := os.OpenFile(b.Path("plan.txt"), os.O_RDWR, 0)
	require.NoError(t, err)
	_, err = fb.WriteAt([]byte("from B"), 0)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(a.Path("plan.txt"), []byte("from A"), 0o644))
	require.NoError(t, fb.Close())

	tree := a.Tree(a.MustNode(""))
	require.Equal(t, "from A", string(a.Content(tree["plan.txt"], "")))
	var copies []string
	for p, n := range tree {
		if strings.HasPrefix(p, "plan (conflict ") {
			copies = append(copies, p)
			require.Equal(t, "from B", string(a.Content(n, "")))
		}
	}
	require.Len(t, copies, 1, "B's content is a conflict copy: %v", tree)
	require.Contains(t, b.LogText(), "conflict copy")

	// The same new name from both mounts at once.
	done := make(chan error, 2)
	for i, e := range []*fstest.Env{a, b} {
		go func() { done <- os.WriteFile(e.Path("new.txt"), []byte(fmt.Sprintf("mount %d", i)), 0o644) }()
	}
	require.NoError(t, <-done)
	require.NoError(t, <-done)
	// Either both created before either uploaded (two documents share the
	// name), or one mount's create found the other's document on the
	// server and saved a new version of it: both contents are kept, as
	// documents or as versions.
	got := map[string]bool{}
	ctx := context.Background()
	kids, err := a.Repo.List(ctx, a.MustNode("").ID)
	require.NoError(t, err)
	for _, n := range kids {
		if !strings.HasPrefix(n.Name, "new") {
			continue
		}
		vs, err := a.Repo.Versions(ctx, n.ID)
		require.NoError(t, err)
		for _, v := range vs {
			rc, err := a.Repo.OpenVersion(ctx, n.ID, v.N, n.Files[0].Name, 0, -1)
			require.NoError(t, err)
			b, err := io.ReadAll(rc)
			rc.Close()
			require.NoError(t, err)
			got[string(b)] = true
		}
	}
	require.Equal(t, map[string]bool{"mount 0": true, "mount 1": true}, got, "both contents are in the repository")
}
