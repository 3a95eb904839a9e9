package enaio_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	dfs "github.com/dmsfs/dmsfs/fs"
	"github.com/dmsfs/dmsfs/fs/fstest"
	"github.com/dmsfs/dmsfs/remote"
	"github.com/dmsfs/dmsfs/remote/enaio"
	"github.com/dmsfs/dmsfs/remote/enaio/enaiotest"
	"github.com/dmsfs/dmsfs/remote/enaio/rpc"
	"github.com/dmsfs/dmsfs/remote/remotetest"
)

func read(t *testing.T, r remote.Repository, id remote.ID, file string) []byte {
	t.Helper()
	rc, err := r.Open(context.Background(), id, file, 0, -1)
	require.NoError(t, err)
	defer rc.Close()
	b, err := io.ReadAll(rc)
	require.NoError(t, err)
	return b
}

// TestConnectionDropsDuringCopy: the server drops every 7th job's
// connection — before the job runs, after it ran but before the answer, and
// halfway through the answer, in turn — while cp -r writes a tree through
// the mount. The client reconnects, logs in again, repeats reads, and for
// writes looks whether the job ran before sending it again: every file
// arrives exactly once, byte-exact.
func TestConnectionDropsDuringCopy(t *testing.T) {
	srv := enaiotest.Start(t, enaiotest.Options{})
	repo := connect(t, srv, enaio.Config{})
	sub := inFolder(t, repo, "drops")
	e := fstest.Mount(t, sub, dfs.Options{})

	src := t.TempDir()
	var paths []string
	for i := range 60 {
		p := filepath.Join([]string{"", "a", "a/b", "c"}[i%4], fmt.Sprintf("f%02d.bin", i))
		fstest.WriteFile(t, filepath.Join(src, p), 1000+i*4099, uint64(i+1))
		paths = append(paths, p)
	}
	logins := srv.Logins()
	srv.DropEvery(7)
	e.Run("cp", "-r", src+"/.", e.Path("tree"))
	e.Run("diff", "-r", src, e.Path("tree"))
	srv.DropEvery(0)
	t.Logf("%d connections dropped, %d logins after the first", srv.Drops(), srv.Logins()-logins)
	require.Greater(t, srv.Drops(), 10)
	require.Greater(t, srv.Logins()-logins, 10, "every dropped connection is a new login")

	// Through the API, with a new client: each file is one document.
	other := connect(t, srv, enaio.Config{})
	docs := e.Tree(e.MustNode("tree"))
	require.Len(t, docs, len(paths), "no document twice, none missing")
	for _, p := range paths {
		want, err := os.ReadFile(filepath.Join(src, p))
		require.NoError(t, err)
		d := docs[filepath.ToSlash(p)]
		require.Equal(t, want, read(t, other, d.ID, d.Files[0].Name), p)
	}
	e.Remount(true)
	e.Run("diff", "-r", src, e.Path("tree"))
}

// TestCorruptedAnswers: an answer whose digest does not match is never
// used. A read is repeated and returns the right bytes; a write is looked
// up and not done twice; when every answer is corrupted the error says so.
func TestCorruptedAnswers(t *testing.T) {
	srv := enaiotest.Start(t, enaiotest.Options{})
	repo := connect(t, srv, enaio.Config{})
	sub := inFolder(t, repo, "digest")
	ctx := context.Background()
	root, err := sub.Root(ctx)
	require.NoError(t, err)
	body := remotetest.Bytes(300 << 10)

	srv.CorruptDigests(1)
	n, err := sub.Insert(ctx, root.ID, "a.bin", remotetest.Content(body))
	require.NoError(t, err)
	kids, err := sub.List(ctx, root.ID)
	require.NoError(t, err)
	require.Len(t, kids, 1, "the insert whose answer was corrupted is not repeated")

	// Reading with a fresh client: once as it is, once with one corrupted
	// answer.
	plain, corrupted := connect(t, srv, enaio.Config{}), connect(t, srv, enaio.Config{})
	before := srv.Jobs("")
	require.Equal(t, body, read(t, plain, n.ID, "a.bin"))
	jobs := srv.Jobs("") - before
	before = srv.Jobs("")
	srv.CorruptDigests(1)
	require.Equal(t, body, read(t, corrupted, n.ID, "a.bin"))
	// The connection that carried it is not trusted any more: a new one,
	// a new login, the job again.
	require.Greater(t, srv.Jobs("")-before, jobs, "the corrupted answer was asked for again")

	third := connect(t, srv, enaio.Config{})
	srv.CorruptDigests(1000)
	_, err = third.Stat(ctx, n.ID)
	srv.CorruptDigests(0)
	require.ErrorIs(t, err, remote.ErrUnavailable)
	require.ErrorIs(t, err, rpc.ErrDigest)
	require.Contains(t, err.Error(), "corrupted on the way")
}

func TestLoginRefused(t *testing.T) {
	srv := enaiotest.Start(t, enaiotest.Options{})
	_, err := enaio.New(context.Background(), enaio.Config{Addr: srv.Addr(), User: enaiotest.TestUser, Password: "wrong-password-123", CacheDir: t.TempDir()})
	require.ErrorIs(t, err, rpc.ErrLogin)
	require.Contains(t, err.Error(), "Kennwort ist falsch")
	require.NotContains(t, err.Error(), "wrong-password-123")

	// A TLS server whose certificate is not trusted is refused by default.
	tlsSrv := enaiotest.Start(t, enaiotest.Options{TLS: true})
	_, err = enaio.New(context.Background(), enaio.Config{Addr: tlsSrv.Addr(), TLS: true, User: enaiotest.TestUser, Password: enaiotest.TestPassword, CacheDir: t.TempDir()})
	require.ErrorContains(t, err, "not trusted")
}

// TestDocumentsOfOtherClients: the sample DMS holds documents made without
// dmsfs's file table; they show as <title>.<ext> or, with several files,
// as a directory of "<title> (n).<ext>", and their saved versions appear
// under .versions/.
func TestDocumentsOfOtherClients(t *testing.T) {
	srv := enaiotest.Start(t, enaiotest.Options{})
	repo := connect(t, srv, enaio.Config{})
	e := fstest.Mount(t, repo, dfs.Options{})
	require.Equal(t, "Akten\nPersonal\n", e.Run("ls", e.Path("")))
	require.Equal(t, "Lieferschein\nRechnungen\n", e.Run("ls", e.Path("Akten/Beispielakte")))
	require.Equal(t, "Lieferschein (1).tif\nLieferschein (2).tif\n", e.Run("ls", e.Path("Akten/Beispielakte/Lieferschein")))
	b, err := os.ReadFile(e.Path("Akten/Beispielakte/Lieferschein/Lieferschein (2).tif"))
	require.NoError(t, err)
	require.True(t, bytes.Equal(enaiotest.SamplePage(2), b), "page 2 is the sample page")
	vs, err := os.ReadDir(e.Path("Akten/Beispielakte/Lieferschein/.versions/Lieferschein (1).tif"))
	require.NoError(t, err)
	require.Len(t, vs, 1)
	b, err = os.ReadFile(e.Path("Akten/Beispielakte/Lieferschein/.versions/Lieferschein (1).tif/" + vs[0].Name()))
	require.NoError(t, err)
	require.True(t, bytes.Equal(enaiotest.SamplePage(3), b), "the first scan of page 1")
	b, err = os.ReadFile(e.Path("Akten/Beispielakte/Rechnungen/Rechnung 2024-001.pdf"))
	require.NoError(t, err)
	require.True(t, bytes.HasPrefix(b, []byte("%PDF-1.4")))

	// Files cannot go at the top or into a cabinet: documents live in folders.
	require.ErrorIs(t, os.WriteFile(e.Path("Akten/loose.txt"), []byte("x"), 0o644), syscall.EACCES)
	require.Error(t, os.Mkdir(e.Path("new cabinet"), 0o755))
	// A folder object in a cabinet, a register in it, a document in that.
	require.NoError(t, os.MkdirAll(e.Path("Personal/Neu, Nina/Verträge"), 0o755))
	require.NoError(t, os.WriteFile(e.Path("Personal/Neu, Nina/Verträge/v.txt"), []byte("Vertrag"), 0o644))
	// Moving between cabinets is EXDEV, so mv copies and deletes.
	e.Run("mv", e.Path("Personal/Neu, Nina/Verträge/v.txt"), e.Path("Akten/Beispielakte/v.txt"))
	b, err = os.ReadFile(e.Path("Akten/Beispielakte/v.txt"))
	require.NoError(t, err)
	require.Equal(t, "Vertrag", string(b))
	require.Equal(t, "", e.Run("ls", e.Path("Personal/Neu, Nina/Verträge")))
}

// TestSubtreeRoot mounts one folder by its path.
func TestSubtreeRoot(t *testing.T) {
	srv := enaiotest.Start(t, enaiotest.Options{})
	repo := connect(t, srv, enaio.Config{Root: "/Akten/Beispielakte/Rechnungen"})
	ctx := context.Background()
	root, err := repo.Root(ctx)
	require.NoError(t, err)
	require.Equal(t, "Rechnungen", root.Name)
	kids, err := repo.List(ctx, root.ID)
	require.NoError(t, err)
	require.Len(t, kids, 1)
	require.Equal(t, "Rechnung 2024-001.pdf", kids[0].Name)
	_, err = enaio.New(ctx, enaio.Config{Addr: srv.Addr(), User: enaiotest.TestUser, Password: enaiotest.TestPassword, Root: "/Akten/nope", CacheDir: t.TempDir()})
	require.ErrorIs(t, err, remote.ErrNotFound)
}

// TestServerKeepsItsData: a restarted server on the same directory has the
// same objects, files and history.
func TestServerKeepsItsData(t *testing.T) {
	dir := t.TempDir()
	start := func() *enaiotest.Server {
		ln, err := netListen()
		require.NoError(t, err)
		s, err := enaiotest.New(dir, ln, enaiotest.Options{Users: map[string]string{enaiotest.TestUser: enaiotest.TestPassword}})
		require.NoError(t, err)
		return s
	}
	s := start()
	ctx := context.Background()
	repo, err := enaio.New(ctx, enaio.Config{Addr: s.Addr(), User: enaiotest.TestUser, Password: enaiotest.TestPassword, CacheDir: t.TempDir()})
	require.NoError(t, err)
	sub := fstestAt(t, repo)
	root, _ := sub.Root(ctx)
	n, err := sub.Insert(ctx, root.ID, "keep.txt", remotetest.Content([]byte("one")))
	require.NoError(t, err)
	_, err = sub.Replace(ctx, n.ID, n.Token, "keep.txt", remotetest.Content([]byte("two")))
	require.NoError(t, err)
	repo.Close()
	require.NoError(t, s.Close())

	s = start()
	defer s.Close()
	repo, err = enaio.New(ctx, enaio.Config{Addr: s.Addr(), User: enaiotest.TestUser, Password: enaiotest.TestPassword, CacheDir: t.TempDir()})
	require.NoError(t, err)
	defer repo.Close()
	require.Equal(t, []byte("two"), read(t, repo, n.ID, "keep.txt"))
	vs, err := repo.Versions(ctx, n.ID)
	require.NoError(t, err)
	require.Len(t, vs, 2)
	rc, err := repo.OpenVersion(ctx, n.ID, 1, "keep.txt", 0, -1)
	require.NoError(t, err)
	b, _ := io.ReadAll(rc)
	rc.Close()
	require.Equal(t, "one", string(b))
}

func fstestAt(t *testing.T, r *enaio.Repo) remote.Repository { return inFolder(t, r, "keep") }

// TestManyObjectsArePaged: listings page through GetResultList.
func TestManyObjectsArePaged(t *testing.T) {
	srv := enaiotest.Start(t, enaiotest.Options{MaxPage: 7})
	repo := connect(t, srv, enaio.Config{})
	sub := inFolder(t, repo, "paging")
	ctx := context.Background()
	root, _ := sub.Root(ctx)
	var want []string
	for i := range 30 {
		name := fmt.Sprintf("d%02d.txt", i)
		_, err := sub.Insert(ctx, root.ID, name, remotetest.Content([]byte(name)))
		require.NoError(t, err)
		want = append(want, name)
	}
	kids, err := sub.List(ctx, root.ID)
	require.NoError(t, err)
	var got []string
	for _, k := range kids {
		got = append(got, k.Name)
	}
	sort.Strings(got)
	require.Equal(t, want, got)
	require.True(t, strings.HasPrefix(root.Name, "paging"))
}

func netListen() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }
