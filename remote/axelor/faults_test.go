package axelor_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	dfs "github.com/dmsfs/dmsfs/fs"
	"github.com/dmsfs/dmsfs/fs/fstest"
	"github.com/dmsfs/dmsfs/internal/faultproxy"
	"github.com/dmsfs/dmsfs/remote/axelor"
	"github.com/dmsfs/dmsfs/remote/axelor/axelortest"
)

// faultRow is one line of the fault matrix.
type faultRow struct {
	kind                       string
	rate                       float64
	files, intact, told        int // files written; intact in the repository at the end; writer told of a failure
	spooled                    int // uploads still pending when the faults stopped
	reads, wrongReads, readErr int
	lost, extra                int // not intact and the writer was not told; documents that should not be there
	faults                     string
}

func (r faultRow) String() string {
	return fmt.Sprintf("%-12s %3.0f%%  files %3d  intact %3d  writer-told %2d  spooled %2d  reads %3d  wrong-bytes %d  read-errors %2d  lost %d  extra %d  (%s)",
		r.kind, r.rate*100, r.files, r.intact, r.told, r.spooled, r.reads, r.wrongReads, r.readErr, r.lost, r.extra, r.faults)
}

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
	var rows []faultRow
	for _, rate := range []float64{0.1, 0.5} {
		for _, kind := range faultproxy.Kinds {
			t.Run(fmt.Sprintf("%s/%.0f%%", kind, rate*100), func(t *testing.T) {
				n := files
				if rate > 0.2 && os.Getenv("DMSFS_FAULT_FILES") == "" {
					n = files / 2 // every request is slower at 50 %
				}
				r := runFaults(t, []faultproxy.Kind{kind}, rate, n)
				rows = append(rows, r)
				require.Zero(t, r.wrongReads, "a read returned wrong bytes")
				require.Zero(t, r.lost, "a write was lost without its writer being told")
			})
		}
	}
	var b strings.Builder
	for _, r := range rows {
		b.WriteString(r.String() + "\n")
	}
	t.Logf("fault matrix (Axelor):\n%s", b.String())
	if out := os.Getenv("DMSFS_FAULT_MATRIX"); out != "" {
		os.WriteFile(out, []byte(b.String()), 0o644)
	}
}

func runFaults(t *testing.T, kinds []faultproxy.Kind, rate float64, n int) faultRow {
	_, url := newServer(t, axelortest.Options{})
	p := faultproxy.Start(t, url)
	p.SetStall(time.Second)
	ctx := context.Background()
	c, err := axelor.New(ctx, axelor.Config{BaseURL: p.URL, User: testUser, Password: testPassword, Timeout: 700 * time.Millisecond})
	require.NoError(t, err)
	e := fstest.Mount(t, c, dfs.Options{})

	src := t.TempDir()
	var paths []string
	for i := range n {
		size := 1000 + i*37000
		if i == n/2 {
			size = 2<<20 + 12345 // three upload chunks
		}
		p := filepath.Join([]string{"", "a", "a/b"}[i%3], fmt.Sprintf("f%02d.bin", i))
		fstest.WriteFile(t, filepath.Join(src, p), size, uint64(i+1))
		paths = append(paths, p)
	}
	require.NoError(t, os.MkdirAll(e.Path("tree"), 0o755))

	p.Set(rate, kinds...)
	var told strings.Builder
	run := func(name string, args ...string) {
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			told.Write(out)
		}
	}
	run("cp", "-r", src+"/.", e.Path("tree"))
	for i := 0; i < n; i += 3 {
		fstest.WriteFile(t, filepath.Join(src, paths[i]), 5000+i*100, uint64(1000+i))
	}
	run("rsync", "-a", src+"/", e.Path("tree")+"/")
	row := faultRow{kind: kindName(kinds), rate: rate, files: n}
	for _, p := range paths {
		got, err := os.ReadFile(e.Path("tree/" + p))
		row.reads++
		want, _ := os.ReadFile(filepath.Join(src, p))
		switch {
		case err != nil:
			row.readErr++
		case !bytes.Equal(got, want) && !wasTold(told.String(), p):
			row.wrongReads++
			t.Errorf("%s: read %d bytes that differ from the %d written", p, len(got), len(want))
		}
	}
	p.Set(0)
	row.faults = p.Summary()
	row.spooled = e.FS.Status().Queue.Files
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	require.NoError(t, e.FS.Sync(sctx, nil), "pending uploads finish once the faults stop")

	// The repository, read by a client that bypasses the proxy.
	direct := newClient(t, url)
	e2 := &fstest.Env{T: t, Repo: direct}
	docs := e2.Tree(e2.MustNode("tree"))
	for _, p := range paths {
		want, _ := os.ReadFile(filepath.Join(src, p))
		d, ok := docs[filepath.ToSlash(p)]
		told := wasTold(told.String(), p)
		if told {
			row.told++
		}
		if ok && bytes.Equal(e2.Content(d, ""), want) {
			row.intact++
		} else if !told {
			row.lost++
			t.Errorf("%s: not intact in the repository and its writer was not told", p)
		}
		delete(docs, filepath.ToSlash(p))
	}
	row.extra = len(docs)
	for name := range docs {
		t.Logf("extra document: %s", name)
	}
	return row
}

func kindName(ks []faultproxy.Kind) string {
	var s []string
	for _, k := range ks {
		s = append(s, string(k))
	}
	return strings.Join(s, "+")
}

// wasTold tells whether cp's or rsync's error output names the file, one
// of its folders, or rsync's temporary file for it (".name.XXXXXX").
func wasTold(out, p string) bool {
	if strings.Contains(out, "/"+filepath.Join(filepath.Dir(p), "."+filepath.Base(p)+".")) {
		return true
	}
	for ; p != "." && p != ""; p = filepath.Dir(p) {
		for _, end := range []string{"'", "\"", ":"} {
			if strings.Contains(out, "/"+p+end) || strings.HasPrefix(out, p+end) || strings.Contains(out, "\""+p+end) {
				return true
			}
		}
	}
	return false
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
	got := map[string]bool{}
	kids, err := a.Repo.List(context.Background(), a.MustNode("").ID)
	require.NoError(t, err)
	for _, n := range kids { // two documents may share the name
		if strings.HasPrefix(n.Name, "new") {
			got[string(a.Content(n, ""))] = true
		}
	}
	require.Equal(t, map[string]bool{"mount 0": true, "mount 1": true}, got, "both contents are in the repository")
}
