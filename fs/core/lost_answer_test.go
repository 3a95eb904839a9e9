package core_test

import (
	"context"
	"io"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dmsfs/dmsfs/cache"
	"github.com/dmsfs/dmsfs/fs/core"
	"github.com/dmsfs/dmsfs/remote"
)

// lostInsertRepo makes the first insert and loses its answer, as a cut
// connection does.
type lostInsertRepo struct {
	remote.Repository
	lost    atomic.Bool
	inserts atomic.Int32
}

func (r *lostInsertRepo) Insert(ctx context.Context, parent remote.ID, name string, c remote.Content) (remote.Node, error) {
	r.inserts.Add(1)
	n, err := r.Repository.Insert(ctx, parent, name, c)
	if err == nil && r.lost.CompareAndSwap(false, true) {
		return remote.Node{}, remote.ErrUnavailable
	}
	return n, err
}

// createFile creates name in the root with content, as cp does, and
// returns what the close said.
func createFile(t *testing.T, fsys *core.FS, name, content string) error {
	t.Helper()
	ctx := context.Background()
	_, h, err := fsys.Root().Create(ctx, name, syscall.O_WRONLY|syscall.O_CREAT|syscall.O_EXCL, 0o644)
	require.NoError(t, err)
	return writeClose(t, h, content)
}

// writeClose writes content through h and closes it, returning what the
// close said.
func writeClose(t *testing.T, h *core.Handle, content string) error {
	t.Helper()
	ctx := context.Background()
	_, err := h.Write(ctx, []byte(content), 0)
	require.NoError(t, err)
	ferr := h.Flush(ctx)
	require.NoError(t, h.Release(ctx))
	return ferr
}

// TestALostInsertAnswerMakesOneDocument: a new file's insert reaches the
// server but its answer is lost. The retry looks for a document of the
// name first and finds the one it made: one document with one version,
// not two documents of one name.
func TestALostInsertAnswerMakesOneDocument(t *testing.T) {
	ctx := context.Background()
	repo := &lostInsertRepo{Repository: embeddedRepo(t)}
	fsys := newCore(t, repo, core.Options{QueueTick: 10 * time.Millisecond})
	require.Error(t, createFile(t, fsys, "new.txt", "the only content"), "the close is told: the server did not confirm")
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	require.NoError(t, fsys.Sync(sctx, nil))

	root, err := repo.Root(ctx)
	require.NoError(t, err)
	kids, err := repo.List(ctx, root.ID)
	require.NoError(t, err)
	require.Len(t, kids, 1, "one document: %v", kids)
	vs, err := repo.Versions(ctx, kids[0].ID)
	require.NoError(t, err)
	require.Len(t, vs, 1, "the retry found the same bytes there: no second version")
	require.EqualValues(t, 1, repo.inserts.Load(), "no second insert")
}

// TestALostCreateLeavesNoDocumentUnderANameItsFileLeft: a new file's
// create reaches the server but its answer is lost, and the file leaves
// its name before the retry: renamed (rsync's temporary file), or
// unlinked. The document the create made goes too; a document another
// client put under the name with other bytes stays.
func TestALostCreateLeavesNoDocumentUnderANameItsFileLeft(t *testing.T) {
	for _, tc := range []struct {
		name    string
		leave   func(t *testing.T, fsys *core.FS)
		outside bool // another client saves other bytes under the name meanwhile
		want    map[string]string
	}{
		{name: "renamed", leave: func(t *testing.T, fsys *core.FS) {
			require.NoError(t, fsys.Root().Rename(context.Background(), ".f01.bin.zzzkzf", fsys.Root(), "f01.bin", 0))
		}, want: map[string]string{"f01.bin": "rsync's bytes"}},
		{name: "unlinked", leave: func(t *testing.T, fsys *core.FS) {
			require.NoError(t, fsys.Root().Unlink(context.Background(), ".f01.bin.zzzkzf"))
		}, want: map[string]string{}},
		{name: "unlinked, another client's bytes there", outside: true, leave: func(t *testing.T, fsys *core.FS) {
			require.NoError(t, fsys.Root().Unlink(context.Background(), ".f01.bin.zzzkzf"))
		}, want: map[string]string{".f01.bin.zzzkzf": "another client's"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			repo := &lostInsertRepo{Repository: embeddedRepo(t)}
			fsys := newCore(t, repo, core.Options{QueueTick: 10 * time.Millisecond})
			require.Error(t, createFile(t, fsys, ".f01.bin.zzzkzf", "rsync's bytes"), "the close is told: the server did not confirm")
			if tc.outside {
				replaceTheOnlyDocument(t, repo, "another client's")
			}
			tc.leave(t, fsys)
			sctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			require.NoError(t, fsys.Sync(sctx, nil))

			require.Equal(t, tc.want, rootContents(t, repo))
		})
	}
}

// TestAFileRenamedOverALostCreateTakesItsDocument: a file is renamed
// over a new file whose create lost its answer: rsync's temporary file,
// or a document of the repository. The renamed file's content becomes
// the next version of the document that create made, as over any other
// document, instead of a second document of the name.
func TestAFileRenamedOverALostCreateTakesItsDocument(t *testing.T) {
	for _, src := range []string{".b.txt.Xa1b2C", "data.bin"} {
		t.Run(src, func(t *testing.T) {
			ctx := context.Background()
			repo := &lostInsertRepo{Repository: embeddedRepo(t)}
			repo.lost.Store(src == "data.bin") // data.bin's create keeps its answer
			fsys := newCore(t, repo, core.Options{QueueTick: 10 * time.Millisecond})
			if src == "data.bin" {
				require.NoError(t, createFile(t, fsys, src, "second"))
				repo.lost.Store(false)
			}
			require.Error(t, createFile(t, fsys, "b.txt", "first"), "the close is told: the server did not confirm")
			if src != "data.bin" {
				require.NoError(t, createFile(t, fsys, src, "second"))
			}
			require.NoError(t, fsys.Root().Rename(ctx, src, fsys.Root(), "b.txt", 0))
			sctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			require.NoError(t, fsys.Sync(sctx, nil))

			root, err := repo.Root(ctx)
			require.NoError(t, err)
			kids, err := repo.List(ctx, root.ID)
			require.NoError(t, err)
			require.Len(t, kids, 1, "one document: %v", kids)
			require.Equal(t, "b.txt", kids[0].Name)
			vs, err := repo.Versions(ctx, kids[0].ID)
			require.NoError(t, err)
			require.Len(t, vs, 2, "the lost create's bytes, then the renamed file's")
		})
	}
}

// flakyRepo loses the answer of the next Replace (Insert) once
// loseReplace (loseInsert) is set, after the change was made, and
// refuses both while down (a server gone).
type flakyRepo struct {
	remote.Repository
	loseReplace, loseInsert, down atomic.Bool
}

func (r *flakyRepo) Replace(ctx context.Context, doc remote.ID, token, file string, c remote.Content) (remote.Node, error) {
	if r.down.Load() {
		return remote.Node{}, remote.ErrUnavailable
	}
	n, err := r.Repository.Replace(ctx, doc, token, file, c)
	return lostIf(&r.loseReplace, n, err)
}

func (r *flakyRepo) Insert(ctx context.Context, parent remote.ID, name string, c remote.Content) (remote.Node, error) {
	if r.down.Load() {
		return remote.Node{}, remote.ErrUnavailable
	}
	n, err := r.Repository.Insert(ctx, parent, name, c)
	return lostIf(&r.loseInsert, n, err)
}

// lostIf is a made change's answer, lost (once) if lose is set.
func lostIf(lose *atomic.Bool, n remote.Node, err error) (remote.Node, error) {
	if err == nil && lose.CompareAndSwap(true, false) {
		return remote.Node{}, remote.ErrUnavailable
	}
	return n, err
}

// TestATruncateOfAHeldFileIsSavedAtTheLastWritersClose: a file waits
// for the retry of a save whose answer was lost. `: > f` empties it while
// another descriptor is open for writing, so its own close cannot save;
// the close of that last writer saves the empty content, as a close of
// a file the queue does not hold would.
func TestATruncateOfAHeldFileIsSavedAtTheLastWritersClose(t *testing.T) {
	ctx := context.Background()
	repo := &flakyRepo{Repository: embeddedRepo(t)}
	fsys := newCore(t, repo, core.Options{QueueTick: time.Hour})
	require.NoError(t, createFile(t, fsys, "f.txt", "first"))
	f, err := fsys.Root().Lookup(ctx, "f.txt")
	require.NoError(t, err)
	file := f.(*core.File)

	repo.loseReplace.Store(true)
	h, _, err := file.Open(ctx, syscall.O_WRONLY)
	require.NoError(t, err)
	_, err = h.Write(ctx, []byte("second"), 0)
	require.NoError(t, err)
	require.Error(t, h.Flush(ctx), "the answer was lost: the queue holds the file")
	require.NoError(t, h.Release(ctx))

	other, _, err := file.Open(ctx, syscall.O_WRONLY)
	require.NoError(t, err)
	trunc, _, err := file.Open(ctx, syscall.O_WRONLY|syscall.O_TRUNC)
	require.NoError(t, err)
	require.NoError(t, trunc.Flush(ctx))
	require.NoError(t, trunc.Release(ctx))
	require.NoError(t, other.Flush(ctx))
	require.NoError(t, other.Release(ctx))

	root, err := repo.Root(ctx)
	require.NoError(t, err)
	kids, err := repo.List(ctx, root.ID)
	require.NoError(t, err)
	require.Len(t, kids, 1)
	require.EqualValues(t, 0, kids[0].Files[0].Size, "the close of the last writer saved the truncation")
}

// TestALostCreateChangedByAnotherClientIsAConflict: a new file's create
// lost its answer, and another client saved the document it made before
// the retry. The retry keeps both: the other client's content in the
// document, the file's beside it as a conflict copy, not stacked on top
// of the other client's as its next version.
func TestALostCreateChangedByAnotherClientIsAConflict(t *testing.T) {
	ctx := context.Background()
	repo := &lostInsertRepo{Repository: embeddedRepo(t)}
	fsys := newCore(t, repo, core.Options{QueueTick: 10 * time.Millisecond})
	require.Error(t, createFile(t, fsys, "notes.txt", "mine"), "the close is told: the server did not confirm")
	replaceTheOnlyDocument(t, repo, "theirs")
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	require.NoError(t, fsys.Sync(sctx, nil))

	got := rootContents(t, repo)
	require.Len(t, got, 2, "the document and a conflict copy: %v", got)
	require.Equal(t, "theirs", got["notes.txt"])
	delete(got, "notes.txt")
	for name, content := range got {
		require.Contains(t, name, "(conflict ")
		require.Equal(t, "mine", content)
	}
}

// rootContents is the content of each document in the repository's
// root, by name.
func rootContents(t *testing.T, repo remote.Repository) map[string]string {
	t.Helper()
	ctx := context.Background()
	got := map[string]string{}
	for _, k := range rootDocs(t, repo) {
		rc, err := repo.Open(ctx, k.ID, k.Files[0].Name, 0, -1)
		require.NoError(t, err)
		b, err := io.ReadAll(rc)
		rc.Close()
		require.NoError(t, err)
		got[k.Name] = string(b)
	}
	return got
}

// rootDocs lists the repository's root.
func rootDocs(t *testing.T, repo remote.Repository) []remote.Node {
	t.Helper()
	ctx := context.Background()
	root, err := repo.Root(ctx)
	require.NoError(t, err)
	kids, err := repo.List(ctx, root.ID)
	require.NoError(t, err)
	return kids
}

// replaceTheOnlyDocument saves content into the root's only document, as
// another client does.
func replaceTheOnlyDocument(t *testing.T, repo remote.Repository, content string) {
	t.Helper()
	kids := rootDocs(t, repo)
	require.Len(t, kids, 1)
	_, err := repo.Replace(context.Background(), kids[0].ID, kids[0].Token, kids[0].Files[0].Name, remote.Content{
		ReaderAt: strings.NewReader(content), Size: int64(len(content))})
	require.NoError(t, err)
}

// saveFile writes content over the root's file name and returns what the
// close said.
func saveFile(t *testing.T, fsys *core.FS, name, content string) error {
	t.Helper()
	ctx := context.Background()
	n, err := fsys.Root().Lookup(ctx, name)
	require.NoError(t, err)
	h, _, err := n.(*core.File).Open(ctx, syscall.O_WRONLY|syscall.O_TRUNC)
	require.NoError(t, err)
	return writeClose(t, h, content)
}

// crashedCore is the core over repo with its spool in dir, uploading
// only when asked, for a test that then stops it as a crash does
// (restartAndSync).
func crashedCore(t *testing.T, repo remote.Repository, dir string) (*core.FS, *cache.Spool) {
	t.Helper()
	spool, err := cache.OpenSpool(dir)
	require.NoError(t, err)
	fsys, err := core.New(context.Background(), repo, spool, core.Options{QueueTick: time.Hour})
	require.NoError(t, err)
	return fsys, spool
}

// restartAndSync stops fsys without waiting for its queue, as a crash
// does, starts the core again over the same spool, and waits until it
// uploaded what the queue held.
func restartAndSync(t *testing.T, repo remote.Repository, dir string, fsys *core.FS, spool *cache.Spool) {
	t.Helper()
	fsys.Close()
	require.NoError(t, spool.Close())
	spool, err := cache.OpenSpool(dir)
	require.NoError(t, err)
	t.Cleanup(func() { spool.Close() })
	fsys, err = core.New(context.Background(), repo, spool, core.Options{QueueTick: 10 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(fsys.Close)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, fsys.Sync(ctx, nil))
}

// TestANewerSaveAfterALostOneIsItsNextVersionAfterACrash: a save's (or
// a new file's create's) answer was lost after the server took it; a
// newer save found the server gone, and the mount stopped before either
// was settled. The next mount over the same cache directory replays the
// newer save as the document's next version: one document, no conflict
// copy. The spool keeps the lost save's sum, so that the content the
// server holds is known as this mount's own, not another client's (a
// conflict copy of the mount's own save, before the sums were kept); a
// lost create's document is taken as the file's by its name (namesake).
func TestANewerSaveAfterALostOneIsItsNextVersionAfterACrash(t *testing.T) {
	for _, tc := range []struct {
		name     string
		lose     func(t *testing.T, fsys *core.FS, repo *flakyRepo)
		newer    string
		versions int
	}{
		{"a lost save", func(t *testing.T, fsys *core.FS, repo *flakyRepo) {
			require.NoError(t, createFile(t, fsys, "f.txt", "first"))
			repo.loseReplace.Store(true)
			require.Error(t, saveFile(t, fsys, "f.txt", "second"), "the answer was lost")
		}, "third, longer", 3},
		{"a lost create", func(t *testing.T, fsys *core.FS, repo *flakyRepo) {
			repo.loseInsert.Store(true)
			require.Error(t, createFile(t, fsys, "f.txt", "first"), "the answer was lost")
		}, "second, longer", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			repo := &flakyRepo{Repository: embeddedRepo(t)}
			dir := t.TempDir()
			fsys, spool := crashedCore(t, repo, dir)
			tc.lose(t, fsys, repo)
			repo.down.Store(true)
			require.Error(t, saveFile(t, fsys, "f.txt", tc.newer), "the server is gone")
			repo.down.Store(false)
			restartAndSync(t, repo, dir, fsys, spool)

			docs := rootDocs(t, repo)
			require.Equal(t, map[string]string{"f.txt": tc.newer}, rootContents(t, repo), "one document, no conflict copy")
			vs, err := repo.Versions(context.Background(), docs[0].ID)
			require.NoError(t, err)
			require.Len(t, vs, tc.versions, "one save, one version")
		})
	}
}

// TestATruncateOfAHeldFileSurvivesACrash: a file waits for the retry of
// a save whose answer was lost; truncate(2) by path empties part of it
// while a descriptor is open for writing, and that descriptor closes.
// The queue's retry would send the truncated content; a crash before it
// must not lose it: the release journals it (the reference model's
// restarts found the journal still holding the content before).
func TestATruncateOfAHeldFileSurvivesACrash(t *testing.T) {
	ctx := context.Background()
	repo := &flakyRepo{Repository: embeddedRepo(t)}
	dir := t.TempDir()
	fsys, spool := crashedCore(t, repo, dir)
	require.NoError(t, createFile(t, fsys, "f.txt", "first"))
	repo.loseReplace.Store(true)
	require.Error(t, saveFile(t, fsys, "f.txt", "second, longer"), "the answer was lost: the queue holds the file")
	n, err := fsys.Root().Lookup(ctx, "f.txt")
	require.NoError(t, err)
	file := n.(*core.File)
	h, _, err := file.Open(ctx, syscall.O_WRONLY)
	require.NoError(t, err)
	size := int64(6)
	_, err = file.Setattr(ctx, nil, core.SetAttr{Size: &size})
	require.NoError(t, err)
	require.NoError(t, h.Flush(ctx))
	require.NoError(t, h.Release(ctx))
	restartAndSync(t, repo, dir, fsys, spool)

	require.Equal(t, map[string]string{"f.txt": "second"}, rootContents(t, repo), "the truncation is kept")
}
