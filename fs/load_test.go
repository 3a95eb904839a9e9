package fs_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	dfs "github.com/dmsfs/dmsfs/fs"
	"github.com/dmsfs/dmsfs/fs/fstest"
	"github.com/dmsfs/dmsfs/remote/remotetest"
)

const block = 4096

// content is what writer w writes in its n-th round. Every 4 KiB block
// starts with a header naming the writer, round, block and size, and the
// rest of it derives from that, so a reader can check each block on its
// own: a read that overlaps a rewrite may legitimately mix blocks of two
// rounds, but never holds a byte no writer wrote.
func content(w, n int) []byte {
	size := 1000 + (w*7919+n*104729)%(300<<10)
	b := make([]byte, 0, size)
	for i := 0; len(b) < size; i++ {
		b = append(b, blockOf(w, n, i, size)...)
	}
	return b
}

func blockOf(w, n, i, size int) []byte {
	b := fmt.Appendf(nil, "[w=%d n=%d i=%d s=%d]", w, n, i, size)
	r := rand.New(rand.NewPCG(uint64(w)<<32|uint64(n), uint64(i)))
	for len(b) < block && i*block+len(b) < size {
		b = append(b, byte('a'+r.IntN(26)))
	}
	return b
}

// badBlock returns the first block of b holding a byte that no round of
// any writer (up to round maxN) wrote at that place, or -1. A read that
// overlaps rewrites may mix rounds — Linux does not make reads atomic
// against writes, not even within a page — but it never holds anything
// else: no bytes from another place, and no zeros in a file saved by
// rename. (A file truncated and rewritten in place under readers may show
// zeros: holes where one writer truncated while another wrote further
// on, and the kernel's zero fill when a FUSE read comes back short
// because the file was truncated meanwhile; zeros are allowed there.)
func badBlock(b []byte, writers, maxN int, holes bool) int {
	for i := 0; i*block < len(b); i++ {
		got := b[i*block : min(len(b), (i+1)*block)]
		var w, n, j, size int
		if _, err := fmt.Sscanf(string(got), "[w=%d n=%d i=%d s=%d]", &w, &n, &j, &size); err == nil && j == i {
			want := blockOf(w, n, i, size)
			if len(got) <= len(want) && bytes.Equal(got, want[:len(got)]) {
				continue
			}
		}
		if !mixed(got, i, writers, maxN, holes) {
			return i
		}
	}
	return -1
}

// mixed tells whether each byte of block i equals that byte in some round.
func mixed(got []byte, i, writers, maxN int, holes bool) bool {
	var cands [][]byte
	for w := range writers {
		for n := 1; n <= maxN; n++ {
			c := content(w, n)
			if i*block < len(c) {
				cands = append(cands, c[i*block:min(len(c), (i+1)*block)])
			}
		}
	}
	for p := range got {
		found := holes && got[p] == 0
		for _, c := range cands {
			if p < len(c) && c[p] == got[p] {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// TestLoad runs 8 writers and 8 readers at once on separate and shared
// files through one mount, for DMSFS_LOAD_DURATION (default 10 s; the
// script scripts/load.sh runs it a minute and longer), then checks every
// file through the Repository API. Readers never see bytes no writer wrote.
func TestLoad(t *testing.T) {
	d := 10 * time.Second
	if v, err := time.ParseDuration(os.Getenv("DMSFS_LOAD_DURATION")); err == nil {
		d = v
	}
	e := fstest.Mount(t, embeddedRepo(t), dfs.Options{})
	const writers, readers, shared = 8, 8, 2
	last := make([]atomic.Int64, writers) // each writer's last round on its own file
	var reads, bad, writes, rounds atomic.Int64
	stop := time.Now().Add(d)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 1; time.Now().Before(stop); n++ {
				if int64(n) > rounds.Load() {
					rounds.Store(int64(n)) // racy max, good enough: readers add one
				}
				name := fmt.Sprintf("own-%d.txt", w)
				if n%3 == 0 {
					name = fmt.Sprintf("shared-%d.txt", w%shared)
				}
				// Own files are saved as applications do, to a temp file
				// renamed over the document; shared files are rewritten in
				// place by two writers at once.
				var err error
				if n%3 != 0 {
					tmp := e.Path(name + ".new")
					if err = os.WriteFile(tmp, content(w, n), 0o644); err == nil {
						err = os.Rename(tmp, e.Path(name))
					}
				} else {
					err = os.WriteFile(e.Path(name), content(w, n), 0o644)
				}
				if err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				if n%3 != 0 {
					last[w].Store(int64(n))
				}
				writes.Add(1)
			}
		}()
	}
	for r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(uint64(r), 99))
			for time.Now().Before(stop) {
				name := fmt.Sprintf("own-%d.txt", rnd.IntN(writers))
				if rnd.IntN(2) == 0 {
					name = fmt.Sprintf("shared-%d.txt", rnd.IntN(shared))
				}
				b, err := os.ReadFile(e.Path(name))
				if os.IsNotExist(err) {
					continue
				}
				if err != nil {
					t.Errorf("reader %d: %v", r, err)
					return
				}
				reads.Add(1)
				if i := badBlock(b, writers, int(rounds.Load())+1, strings.HasPrefix(name, "shared")); i >= 0 {
					bad.Add(1)
					blk := b[i*block : min(len(b), (i+1)*block)]
					t.Errorf("reader %d: %s: %d bytes read; block %d (%d bytes) holds bytes no writer wrote: %.60q … %.60q", r, name, len(b), i, len(blk), blk, blk[max(0, len(blk)-60):])
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("%s: %d writes, %d reads, %d with bytes no writer wrote", d, writes.Load(), reads.Load(), bad.Load())
	require.Zero(t, bad.Load())

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	require.NoError(t, e.FS.Sync(ctx, nil))
	tree := e.Tree(e.MustNode(""))
	for w := range writers {
		n := tree[fmt.Sprintf("own-%d.txt", w)]
		require.Equal(t, content(w, int(last[w].Load())), e.Content(n, ""), "writer %d's last content", w)
	}
	for s := range shared {
		// Two writers that truncate and rewrite one file at once may leave
		// a mixture, as on any filesystem; the repository must hold exactly
		// what the mount shows, made only of what they wrote.
		name := fmt.Sprintf("shared-%d.txt", s)
		b := e.Content(tree[name], "")
		local, err := os.ReadFile(e.Path(name))
		require.NoError(t, err)
		require.Equal(t, local, b, "%s: the repository holds what the mount shows", name)
		require.Equal(t, -1, badBlock(b, writers, int(rounds.Load())+1, true), name)
	}
	require.Len(t, tree, writers+shared, "no stray documents")
}

// TestListLargeFolder lists a folder of 20,000 documents through the mount
// and bounds the memory that takes.
func TestListLargeFolder(t *testing.T) {
	repo := embeddedRepo(t)
	ctx := context.Background()
	root, err := repo.Root(ctx)
	require.NoError(t, err)
	dir, err := repo.Mkdir(ctx, root.ID, "big")
	require.NoError(t, err)
	const n = 20000
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < n; i += 8 {
				if _, err := repo.Insert(ctx, dir.ID, fmt.Sprintf("document %05d.txt", i), remotetest.Content([]byte{byte(i)})); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	require.NoError(t, <-errs)

	e := fstest.Mount(t, repo, dfs.Options{})
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	out, err := exec.Command("ls", "-l", e.Path("big")).Output()
	require.NoError(t, err)
	lines := strings.Count(string(out), "\n") - 1 // "total …"
	require.Equal(t, n, lines)
	runtime.ReadMemStats(&after)
	grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("ls -l of %d documents: heap %+.1f MiB (%.0f bytes per entry), peak heap %.1f MiB", n, float64(grown)/(1<<20), float64(grown)/n, float64(after.HeapInuse)/(1<<20))
	require.Less(t, grown, int64(200<<20), "listing 20,000 documents stays within 200 MiB of heap")
	b, err := os.ReadFile(e.Path("big/document 12345.txt"))
	require.NoError(t, err)
	require.Equal(t, []byte{byte(12345 % 256)}, b)
}
