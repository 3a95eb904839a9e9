package core_test

import (
	"context"
	"io"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dmsfs/dmsfs/fs/core"
	"github.com/dmsfs/dmsfs/remote"
	"github.com/dmsfs/dmsfs/remote/remotetest"
)

// gatedRepo holds the first read of one document until release is
// closed: a prefetch that the scheduler runs late.
type gatedRepo struct {
	remote.Repository
	doc     remote.ID
	once    sync.Once
	held    chan struct{} // closed when the read is held
	release chan struct{}
	read    chan struct{} // closed when the held read's body is closed
}

func (g *gatedRepo) Open(ctx context.Context, doc remote.ID, file string, off, length int64) (io.ReadCloser, error) {
	gated := false
	if doc == g.doc {
		g.once.Do(func() { gated = true })
	}
	if !gated {
		return g.Repository.Open(ctx, doc, file, off, length)
	}
	close(g.held)
	<-g.release
	rc, err := g.Repository.Open(ctx, doc, file, off, length)
	if err != nil {
		close(g.read)
		return nil, err
	}
	return closeNotifier{rc, g.read}, nil
}

type closeNotifier struct {
	io.ReadCloser
	done chan struct{}
}

func (c closeNotifier) Close() error {
	err := c.ReadCloser.Close()
	close(c.done)
	return err
}

// TestLatePrefetchAfterSave: reading a.txt fetches b.txt ahead; that
// fetch runs only after b.txt was saved with new content, so it reads the
// new bytes where it was set up to read the old. Cached under the old
// content's name, they showed when b.txt got its old content back (the
// reference model found it: seed 1796160337714596998 read "u" for "p").
func TestLatePrefetchAfterSave(t *testing.T) {
	fsys, gated := abCore(t)
	read, save := rootFiles(t, fsys)

	require.Equal(t, "first", read("a.txt"))
	<-gated.held // b.txt's prefetch, set up for "p", waits
	save("b.txt", "ukl")
	close(gated.release)
	<-gated.read       // it read "u" of "ukl", the first byte of what it wanted
	save("b.txt", "p") // the old content again: the same content ID
	require.Equal(t, "p", read("b.txt"))
}

// TestPrefetchAfterASaveByRename: a save by rename (a temp file renamed
// over the file) shows the file from the folder's local overlay, and the
// listing's entry for the name stays as it was. Reading a file before it
// then fetched it ahead from a new node made of that entry: the old
// content's name, the new content's bytes (cut to the old size). They
// showed when the file got its old content back (the reference model
// found it: seed 1796192928820731793 read "s" for "a").
func TestPrefetchAfterASaveByRename(t *testing.T) {
	ctx := context.Background()
	fsys, gated := abCore(t)
	dir := fsys.Root()
	read, save := rootFiles(t, fsys)

	_, err := dir.Lookup(ctx, "b.txt") // listed: the entry shows "p"
	require.NoError(t, err)
	_, h, err := dir.Create(ctx, "b.txt.new", syscall.O_RDWR|syscall.O_CREAT|syscall.O_EXCL, 0o644)
	require.NoError(t, err)
	_, err = h.Write(ctx, []byte("ukl"), 0)
	require.NoError(t, err)
	require.NoError(t, h.Flush(ctx))
	require.NoError(t, h.Release(ctx))
	require.NoError(t, dir.Rename(ctx, "b.txt.new", dir, "b.txt", 0))
	require.NoError(t, fsys.Settle(ctx))

	require.Equal(t, "first", read("a.txt")) // fetches b.txt ahead
	select {
	case <-gated.held:
	case <-time.After(time.Minute):
		t.Fatal("b.txt was not fetched ahead")
	}
	close(gated.release)
	<-gated.read
	save("b.txt", "p") // the old content again: the same content ID
	require.Equal(t, "p", read("b.txt"))
}

// abCore is the core over a repository holding a.txt ("first") and
// b.txt ("p"), the first read of b.txt held by gated.
func abCore(t *testing.T) (*core.FS, *gatedRepo) {
	ctx := context.Background()
	repo := embeddedRepo(t)
	root, err := repo.Root(ctx)
	require.NoError(t, err)
	_, err = repo.Insert(ctx, root.ID, "a.txt", remotetest.Content([]byte("first")))
	require.NoError(t, err)
	b, err := repo.Insert(ctx, root.ID, "b.txt", remotetest.Content([]byte("p")))
	require.NoError(t, err)
	gated := &gatedRepo{Repository: repo, doc: b.ID, held: make(chan struct{}), release: make(chan struct{}), read: make(chan struct{})}
	return newCore(t, gated, core.Options{}), gated
}

// rootFiles reads a file of fsys's root from its start, and saves one
// (open O_TRUNC, write, close).
func rootFiles(t *testing.T, fsys *core.FS) (read func(name string) string, save func(name, content string)) {
	ctx := context.Background()
	file := func(name string) *core.File {
		n, err := fsys.Root().Lookup(ctx, name)
		require.NoError(t, err)
		return n.(*core.File)
	}
	read = func(name string) string {
		h, _, err := file(name).Open(ctx, syscall.O_RDONLY)
		require.NoError(t, err)
		data, err := h.Read(ctx, make([]byte, 100), 0)
		require.NoError(t, err)
		require.NoError(t, h.Release(ctx))
		return string(data)
	}
	save = func(name, content string) {
		h, _, err := file(name).Open(ctx, syscall.O_RDWR|syscall.O_TRUNC)
		require.NoError(t, err)
		_, err = h.Write(ctx, []byte(content), 0)
		require.NoError(t, err)
		require.NoError(t, h.Flush(ctx))
		require.NoError(t, h.Release(ctx))
	}
	return read, save
}
