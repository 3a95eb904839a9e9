package fstest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	dfs "github.com/dmsfs/dmsfs/fs"
	"github.com/dmsfs/dmsfs/internal/faultproxy"
	"github.com/dmsfs/dmsfs/remote"
)

// FaultRow is one line of the fault matrix.
type FaultRow struct {
	Kind                          string
	Rate                          float64
	Files, Intact, Told           int // files written; intact in the repository at the end; writer told of a failure
	Spooled                       int // uploads still pending when the faults stopped
	Reads, WrongReads, ReadErrors int
	Lost, Extra                   int // not intact and the writer was not told; documents that should not be there
	RsyncRuns                     int // rsync runs until one succeeded (at most 4)
	Faults                        string
}

func (r FaultRow) String() string {
	return fmt.Sprintf("%-12s %3.0f%%  files %3d  intact %3d  writer-told %2d  rsync-runs %d  spooled %2d  reads %3d  wrong-bytes %d  read-errors %2d  lost %d  extra %d  (%s)",
		r.Kind, r.Rate*100, r.Files, r.Intact, r.Told, r.RsyncRuns, r.Spooled, r.Reads, r.WrongReads, r.ReadErrors, r.Lost, r.Extra, r.Faults)
}

// Require fails the test when a read returned wrong bytes or a write was
// lost without its writer being told.
func (r FaultRow) Require(t *testing.T) {
	require.Zero(t, r.WrongReads, "a read returned wrong bytes")
	require.Zero(t, r.Lost, "a write was lost without its writer being told")
}

// ReportFaults logs the matrix and writes it to $DMSFS_FAULT_MATRIX if set.
func ReportFaults(t *testing.T, backend string, rows []FaultRow) {
	var b strings.Builder
	for _, r := range rows {
		b.WriteString(r.String() + "\n")
	}
	t.Logf("fault matrix (%s):\n%s", backend, b.String())
	if out := os.Getenv("DMSFS_FAULT_MATRIX"); out != "" {
		os.WriteFile(out, []byte(b.String()), 0o644)
	}
}

// RunFaults writes n files with cp -r through a mount of viaProxy, saves a
// third of them again with rsync -a (temp file + rename over) and another
// third as vim does (rename to a backup, write, delete the backup), reads
// them back, while p injects kinds into rate of the requests. Then the
// faults stop, pending uploads finish, and direct (the same repository,
// not through p) is compared file by file: every file is intact, or its
// writer was told; a read never returned wrong bytes.
func RunFaults(t *testing.T, p *faultproxy.Proxy, viaProxy, direct remote.Repository, kinds []faultproxy.Kind, rate float64, n int) FaultRow {
	ctx := context.Background()
	e := Mount(t, viaProxy, dfs.Options{})

	src := t.TempDir()
	var paths []string
	for i := range n {
		size := 1000 + i*37000
		if i == n/2 {
			size = 2<<20 + 12345 // three upload chunks
		}
		p := filepath.Join([]string{"", "a", "a/b"}[i%3], fmt.Sprintf("f%02d.bin", i))
		WriteFile(t, filepath.Join(src, p), size, uint64(i+1))
		paths = append(paths, p)
	}
	require.NoError(t, os.MkdirAll(e.Path("tree"), 0o755))

	p.Set(rate, kinds...)
	row := FaultRow{Kind: kindName(kinds), Rate: rate, Files: n}
	var said strings.Builder
	run := func(name string, args ...string) bool {
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			said.Write(out)
		}
		return err == nil
	}
	run("cp", "-r", src+"/.", e.Path("tree"))
	cpSaid := said.String()
	for i := 0; i < n; i += 3 {
		WriteFile(t, filepath.Join(src, paths[i]), 5000+i*100, uint64(1000+i))
	}
	// rsync stops at the first file it cannot close (code 11), leaving the
	// rest as they were; like a user, run it again until it succeeds. Once
	// it has, every file must be intact whatever failed before, so only the
	// last run's complaints count as telling.
	synced, aborted := false, false
	for try := 0; try < 4 && !synced; try++ {
		said.Reset()
		synced = run("rsync", "-a", src+"/", e.Path("tree")+"/")
		row.RsyncRuns++
	}
	if !synced {
		// Still failing: cp's complaints stand, and a run that stopped
		// (any code but 23/24, partial transfers) told about every file.
		said.WriteString(cpSaid)
		m := regexp.MustCompile(`rsync error: .*\(code (\d+)\)`).FindAllStringSubmatch(said.String(), -1)
		for _, c := range m {
			aborted = aborted || (c[1] != "23" && c[1] != "24")
		}
	}
	// Another third is saved the way vim saves: the document is renamed
	// to a backup name, the new content written under the name, the
	// backup deleted. A step that fails names the file.
	for i := 1; i < n; i += 3 {
		WriteFile(t, filepath.Join(src, paths[i]), 7000+i*50, uint64(2000+i))
		dst := e.Path("tree/" + paths[i])
		save := exec.Command("sh", "-c", `mv "$1" "$1~" && cp "$2" "$1" && rm "$1~"`, "save", dst, filepath.Join(src, paths[i]))
		if out, err := save.CombinedOutput(); err != nil {
			said.Write(out)
		}
	}
	told := func(p string) bool { return aborted || wasTold(said.String(), p) }
	for _, p := range paths {
		got, err := os.ReadFile(e.Path("tree/" + p))
		row.Reads++
		want, _ := os.ReadFile(filepath.Join(src, p))
		switch {
		case err != nil:
			row.ReadErrors++
		case !bytes.Equal(got, want) && !told(p):
			row.WrongReads++
			t.Errorf("%s: read %d bytes that differ from the %d written", p, len(got), len(want))
		}
	}
	p.Set(0)
	row.Faults = p.Summary()
	row.Spooled = e.FS.Status().Queue.Files
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	require.NoError(t, e.FS.Sync(sctx, nil), "pending uploads finish once the faults stop")

	// The repository, read by a client that bypasses the proxy.
	e2 := &Env{T: t, Repo: direct}
	docs := e2.Tree(e2.MustNode("tree"))
	for _, p := range paths {
		want, _ := os.ReadFile(filepath.Join(src, p))
		d, ok := docs[filepath.ToSlash(p)]
		informed := told(p)
		if informed {
			row.Told++
		}
		if ok && bytes.Equal(e2.Content(d, ""), want) {
			row.Intact++
		} else if !informed {
			row.Lost++
			t.Errorf("%s: not intact in the repository and its writer was not told; the writers said:\n%s", p, said.String())
		}
		delete(docs, filepath.ToSlash(p))
	}
	row.Extra = len(docs)
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
	// An error about the tree itself (rsync failing to read the
	// destination folder) tells about every file at its top.
	if filepath.Dir(p) == "." {
		for _, s := range []string{"/tree/.\"", "/tree/.'", "/tree\"", "/tree'", "/tree:", "/tree/\"", "/tree/.:"} {
			if strings.Contains(out, s) {
				return true
			}
		}
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
