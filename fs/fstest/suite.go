package fstest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	dfs "github.com/dmsfs/dmsfs/fs"
	"github.com/dmsfs/dmsfs/fs/core/reftest"
	"github.com/dmsfs/dmsfs/remote"
	"github.com/dmsfs/dmsfs/remote/pointintime"
	"github.com/dmsfs/dmsfs/remote/remotetest"
)

// Run runs the filesystem suite against the repositories newRepo returns.
// Each test gets a fresh repository and mount.
func Run(t *testing.T, newRepo func(t *testing.T) remote.Repository) {
	tests := []struct {
		name string
		fn   func(t *testing.T, newRepo func(t *testing.T) remote.Repository)
	}{
		{"CopyTree", testCopyTree},
		{"RsyncTwice", testRsyncTwice},
		{"SaveByRenameOver", testSaveByRenameOver},
		{"LockFilesStayLocal", testLockFilesStayLocal},
		{"VimSave", testVimSave},
		{"LibreOfficeSave", testLibreOfficeSave},
		{"AppendTruncateOverwrite", testAppendTruncateOverwrite},
		{"MultiFileDocument", testMultiFile},
		{"VersionsDir", testVersionsDir},
		{"NamespaceOps", testNamespaceOps},
		{"RemoveTreeAsUnlinksFallDue", testRemoveTreeAsUnlinksFallDue},
		{"StrangeServerNames", testStrangeServerNames},
		{"ConflictCopy", testConflictCopy},
		{"WriteBackSurvivesCrash", testWriteBackSurvivesCrash},
		{"ListingCacheExpires", testListingCacheExpires},
		{"ReadOnlyMount", testReadOnlyMount},
		{"ProgramsSave", testProgramsSave},
		{"StaleListingCreate", testStaleListingCreate},
		{"StaleListingCreateWriteBack", testStaleListingCreateWriteBack},
		{"RsyncFreshCache", testRsyncFreshCache},
		{"ReferenceModel", testReferenceModel},
		{"Xattrs", testXattrs},
		{"Mknod", testMknod},
		{"OtherClientsChanges", testOtherClientsChanges},
		{"PointInTime", testPointInTime},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newRepo) })
	}
}

// makeTree writes n files under dir: nested folders, names with spaces and
// non-ASCII letters, sizes from 0 bytes to maxSize. It returns the paths.
func makeTree(t *testing.T, dir string, n int, maxSize int) []string {
	t.Helper()
	folders := []string{"", "a", "a/b c", "a/b c/Ünïcödé", "docs", "docs/2026 Q1", "日本語", "x/y/z/deep"}
	var paths []string
	for i := range n {
		size := (i * 7919) % 65536
		switch {
		case i%100 == 0:
			size = 0
		case i%50 == 7:
			size = 1<<20 + i*1000 // a few medium files
		case i == n/2:
			size = maxSize
		}
		name := fmt.Sprintf("file %03d – ß.bin", i)
		if i%3 == 0 {
			name = fmt.Sprintf("plain%03d.txt", i)
		}
		p := filepath.Join(folders[i%len(folders)], name)
		WriteFile(t, filepath.Join(dir, p), size, uint64(i+1))
		paths = append(paths, p)
	}
	return paths
}

func testCopyTree(t *testing.T, newRepo func(t *testing.T) remote.Repository) {
	e := Mount(t, newRepo(t), dfs.Options{})
	src := t.TempDir()
	paths := makeTree(t, src, 500, 64<<20)
	e.Run("cp", "-r", src+"/.", e.Path("tree"))
	e.Run("diff", "-r", src, e.Path("tree"))

	// Through the Repository API: every file is a document, byte-exact.
	docs := e.Tree(e.MustNode("tree"))
	require.Len(t, docs, len(paths))
	for _, p := range []string{paths[0], paths[250], paths[499]} {
		want, err := os.ReadFile(filepath.Join(src, p))
		require.NoError(t, err)
		require.Equal(t, want, e.Content(docs[filepath.ToSlash(p)], ""), p)
	}

	e.Remount(false)
	e.Run("diff", "-r", src, e.Path("tree"))
	e.Remount(true) // nothing depended on the cache
	e.Run("diff", "-r", src, e.Path("tree"))
}

func testRsyncTwice(t *testing.T, newRepo func(t *testing.T) remote.Repository) {
	e := Mount(t, newRepo(t), dfs.Options{})
	src := t.TempDir()
	paths := makeTree(t, src, 120, 3<<20)
	e.Run("rsync", "-a", src+"/", e.Path("x")+"/")
	out := e.Run("rsync", "-a", "--itemize-changes", src+"/", e.Path("x")+"/")
	require.Empty(t, out, "a second rsync transfers nothing")

	root := e.MustNode("x")
	before := e.Tree(root)
	require.Len(t, before, len(paths), "exactly the files, no rsync temp documents")

	changed := []string{paths[1], paths[10], paths[50]}
	for i, p := range changed {
		WriteFile(t, filepath.Join(src, p), 1000+i, uint64(1000+i))
	}
	e.Run("rsync", "-a", src+"/", e.Path("x")+"/")
	require.Empty(t, e.Run("rsync", "-a", "--itemize-changes", src+"/", e.Path("x")+"/"))
	after := e.Tree(root)
	require.Len(t, after, len(paths))
	for p, n := range after {
		require.Equal(t, before[p].ID, n.ID, "%s keeps its document", p)
		want := 1
		for _, c := range changed {
			if filepath.ToSlash(c) == p {
				want = 2
			}
		}
		e.RequireVersions(n, want, p)
	}
	for _, p := range changed {
		want, _ := os.ReadFile(filepath.Join(src, p))
		require.Equal(t, want, e.Content(after[filepath.ToSlash(p)], ""))
	}

	// And back from the mount to local disk.
	dst := t.TempDir()
	e.Run("rsync", "-a", e.Path("x")+"/", dst+"/")
	e.Run("diff", "-r", src, dst)
	require.Empty(t, e.Run("rsync", "-a", "--itemize-changes", e.Path("x")+"/", dst+"/"))
	// Still stable after a remount (local times are kept).
	e.Remount(false)
	require.Empty(t, e.Run("rsync", "-a", "--itemize-changes", src+"/", e.Path("x")+"/"))
}

func testSaveByRenameOver(t *testing.T, newRepo func(t *testing.T) remote.Repository) {
	e := Mount(t, newRepo(t), dfs.Options{})
	require.NoError(t, os.WriteFile(e.Path("doc.txt"), []byte("old bytes"), 0o644))
	orig := e.MustNode("doc.txt")

	onPublish := e.Repo.Capabilities().VersionsOnPublish
	for i, tmp := range []string{"doc.txt.new", "lu4711.tmp", ".doc.txt.Xy12Zq"} {
		entries, err := os.ReadDir(e.Path(".versions/doc.txt"))
		require.NoError(t, err)
		if onPublish {
			require.Empty(t, entries, "saves are not published, so they are no versions")
		} else {
			require.Len(t, entries, i, "the history so far, at once after each save")
		}
		body := []byte(fmt.Sprintf("new bytes %d", i))
		require.NoError(t, os.WriteFile(e.Path(tmp), body, 0o644))
		require.NoError(t, os.Rename(e.Path(tmp), e.Path("doc.txt")))
		got, err := os.ReadFile(e.Path("doc.txt"))
		require.NoError(t, err)
		require.Equal(t, body, got)
		n := e.MustNode("doc.txt")
		require.Equal(t, orig.ID, n.ID, "the document keeps its id")
		e.RequireVersions(n, i+2, "one new version per save")
		require.Equal(t, body, e.Content(n, ""))
		_, err = e.Node(tmp)
		require.ErrorIs(t, err, remote.ErrNotFound, "no temp document is left")
	}
	if onPublish {
		return
	}
	entries, err := os.ReadDir(e.Path(".versions/doc.txt"))
	require.NoError(t, err)
	require.Len(t, entries, 3)
	old, err := os.ReadFile(e.Path(".versions/doc.txt/" + entries[0].Name()))
	require.NoError(t, err)
	require.Equal(t, []byte("old bytes"), old)
	require.Regexp(t, `^\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ_v1\.txt$`, entries[0].Name())
}

func testLockFilesStayLocal(t *testing.T, newRepo func(t *testing.T) remote.Repository) {
	e := Mount(t, newRepo(t), dfs.Options{})
	require.NoError(t, os.WriteFile(e.Path("letter.odt"), []byte("letter"), 0o644))
	lock := ".~lock.letter.odt#"
	f, err := os.OpenFile(e.Path(lock), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	require.NoError(t, err)
	_, err = f.WriteString("user,host,2026\n")
	require.NoError(t, err)
	require.NoError(t, f.Close())

	names := e.Run("ls", "-a", e.Mnt)
	require.Contains(t, names, lock, "visible in the mount")
	got, err := os.ReadFile(e.Path(lock))
	require.NoError(t, err)
	require.Equal(t, "user,host,2026\n", string(got))
	_, err = e.Node(lock)
	require.ErrorIs(t, err, remote.ErrNotFound, "never a document")

	e.Remount(true)
	_, err = os.Stat(e.Path(lock))
	require.ErrorIs(t, err, os.ErrNotExist)
	_, err = e.Node(lock)
	require.ErrorIs(t, err, remote.ErrNotFound)
	require.Equal(t, 1, e.VersionCount(e.MustNode("letter.odt")))
}

func testVimSave(t *testing.T, newRepo func(t *testing.T) remote.Repository) {
	e := Mount(t, newRepo(t), dfs.Options{})
	require.NoError(t, os.WriteFile(e.Path("notes.txt"), []byte("line 1\n"), 0o644))
	orig := e.MustNode("notes.txt")

	// What vim does on :w with 'writebackup' and 'backupcopy=auto'.
	swp := e.Path(".notes.txt.swp")
	require.NoError(t, os.WriteFile(swp, []byte("swap"), 0o600))
	probe := e.Path("4913")
	f, err := os.OpenFile(probe, os.O_CREATE|os.O_EXCL|os.O_WRONLY|syscall.O_NOFOLLOW, 0o644)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	require.NoError(t, os.Remove(probe))
	require.NoError(t, os.Rename(e.Path("notes.txt"), e.Path("notes.txt~")))
	require.NoError(t, os.WriteFile(e.Path("notes.txt"), []byte("line 1\nline 2\n"), 0o644))
	backup, err := os.ReadFile(e.Path("notes.txt~"))
	require.NoError(t, err)
	require.Equal(t, "line 1\n", string(backup), "the backup keeps the old content")
	require.NoError(t, os.Remove(e.Path("notes.txt~")))
	require.NoError(t, os.Remove(swp))

	n := e.MustNode("notes.txt")
	require.Equal(t, orig.ID, n.ID)
	e.RequireVersions(n, 2)
	require.Equal(t, "line 1\nline 2\n", string(e.Content(n, "")))
	docs := e.Tree(e.MustNode(""))
	require.Len(t, docs, 1, "no swap, probe or backup documents: %v", docs)
	got, err := os.ReadFile(e.Path("notes.txt"))
	require.NoError(t, err)
	require.Equal(t, "line 1\nline 2\n", string(got))
}

func testLibreOfficeSave(t *testing.T, newRepo func(t *testing.T) remote.Repository) {
	e := Mount(t, newRepo(t), dfs.Options{})
	require.NoError(t, os.WriteFile(e.Path("letter.odt"), []byte("version one"), 0o644))
	orig := e.MustNode("letter.odt")

	for save := 1; save <= 2; save++ {
		// Open and keep the document open read-write, without writing.
		held, err := os.OpenFile(e.Path("letter.odt"), os.O_RDWR, 0)
		require.NoError(t, err)
		lock, err := os.OpenFile(e.Path(".~lock.letter.odt#"), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		require.NoError(t, err)
		lock.WriteString("lock")
		lock.Close()
		tmp := e.Path(fmt.Sprintf("lu%dabc.tmp", save))
		tf, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o600)
		require.NoError(t, err)
		body := []byte(fmt.Sprintf("version %d, saved by the office app", save+1))
		_, err = tf.Write(body)
		require.NoError(t, err)
		require.NoError(t, tf.Close())
		require.NoError(t, os.Rename(tmp, e.Path("letter.odt")))
		require.NoError(t, os.Chown(e.Path("letter.odt"), -1, os.Getgid()))
		require.NoError(t, os.Chmod(e.Path("letter.odt"), 0o644))
		again, err := os.OpenFile(e.Path("letter.odt"), os.O_RDWR, 0)
		require.NoError(t, err)
		require.NoError(t, again.Close())
		require.NoError(t, os.Remove(e.Path(".~lock.letter.odt#")))
		require.NoError(t, held.Close()) // wrote nothing: uploads nothing

		n := e.MustNode("letter.odt")
		require.Equal(t, orig.ID, n.ID)
		e.RequireVersions(n, save+1, "exactly one version per save")
		require.Equal(t, body, e.Content(n, ""))
		st, err := os.Stat(e.Path("letter.odt"))
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o644), st.Mode().Perm())
	}
	require.Len(t, e.Tree(e.MustNode("")), 1)
}

func testAppendTruncateOverwrite(t *testing.T, newRepo func(t *testing.T) remote.Repository) {
	e := Mount(t, newRepo(t), dfs.Options{})
	p := e.Path("data.bin")
	base := bytes.Repeat([]byte("0123456789"), 100000) // 1 MB
	require.NoError(t, os.WriteFile(p, base, 0o644))
	n := e.MustNode("data.bin")

	check := func(want []byte, versions int) {
		t.Helper()
		got, err := os.ReadFile(p)
		require.NoError(t, err)
		require.True(t, bytes.Equal(want, got), "mount content")
		cur := e.MustNode("data.bin")
		require.Equal(t, n.ID, cur.ID)
		require.True(t, bytes.Equal(want, e.Content(cur, "")), "repository content")
		e.RequireVersions(cur, versions)
	}

	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = f.Write([]byte("APPENDED"))
	require.NoError(t, err)
	require.NoError(t, f.Close())
	want := append(append([]byte(nil), base...), "APPENDED"...)
	check(want, 2)

	require.NoError(t, os.Truncate(p, 12345))
	want = want[:12345]
	check(want, 3)

	f, err = os.OpenFile(p, os.O_RDWR, 0)
	require.NoError(t, err)
	_, err = f.WriteAt([]byte("MIDDLE"), 6000)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	copy(want[6000:], "MIDDLE")
	check(want, 4)

	// Extending with a hole, and shrinking through an open descriptor.
	f, err = os.OpenFile(p, os.O_RDWR, 0)
	require.NoError(t, err)
	_, err = f.WriteAt([]byte("END"), 20000)
	require.NoError(t, err)
	require.NoError(t, f.Truncate(20003))
	require.NoError(t, f.Close())
	want = append(want, make([]byte, 20000-len(want))...)
	want = append(want, "END"...)
	check(want, 5)

	// A read-write open that writes nothing makes no version.
	f, err = os.OpenFile(p, os.O_RDWR, 0)
	require.NoError(t, err)
	buf := make([]byte, 10)
	_, err = f.Read(buf)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	check(want, 5)
}

func testMultiFile(t *testing.T, newRepo func(t *testing.T) remote.Repository) {
	repo := newRepo(t)
	if !repo.Capabilities().MultiFile {
		t.Skip("the repository has no multi-file documents")
	}
	ctx := context.Background()
	root, err := repo.Root(ctx)
	require.NoError(t, err)
	doc, err := repo.Insert(ctx, root.ID, "invoice.pdf", remotetest.Content([]byte("pdf")))
	require.NoError(t, err)
	doc, err = repo.Append(ctx, doc.ID, doc.Token, "scan.png", remotetest.Content([]byte("png")))
	require.NoError(t, err)
	e := Mount(t, repo, dfs.Options{})

	st, err := os.Stat(e.Path("invoice.pdf"))
	require.NoError(t, err)
	require.True(t, st.IsDir(), "a document with several files is a directory")
	require.Equal(t, "invoice.pdf\nscan.png\n", e.Run("ls", e.Path("invoice.pdf")))

	require.NoError(t, os.WriteFile(e.Path("invoice.pdf/notes.txt"), []byte("notes"), 0o644))
	n, err := repo.Stat(ctx, doc.ID)
	require.NoError(t, err)
	require.Len(t, n.Files, 3, "a new file is appended to the document")
	e.RequireVersions(n, 3)
	require.Equal(t, []byte("notes"), e.Content(n, "notes.txt"))

	require.NoError(t, os.WriteFile(e.Path("invoice.pdf/scan.png"), []byte("PNG v2"), 0o644))
	n2, err := repo.Stat(ctx, doc.ID)
	require.NoError(t, err)
	require.Len(t, n2.Files, 3)
	require.Equal(t, []byte("PNG v2"), e.Content(n2, "scan.png"))
	for _, name := range []string{"invoice.pdf", "notes.txt"} {
		a, _ := n.File(name)
		b, _ := n2.File(name)
		require.Equal(t, a.ContentID, b.ContentID, "only the overwritten file changes")
	}
	e.RequireVersions(n2, 4)
	vs, err := os.ReadDir(e.Path("invoice.pdf/.versions/scan.png"))
	require.NoError(t, err)
	require.Len(t, vs, 1)
	old, err := os.ReadFile(e.Path("invoice.pdf/.versions/scan.png/" + vs[0].Name()))
	require.NoError(t, err)
	require.Equal(t, "png", string(old))

	// Removing a file of the document is a new version without it.
	require.NoError(t, os.Remove(e.Path("invoice.pdf/notes.txt")))
	n3, err := repo.Stat(ctx, doc.ID)
	require.NoError(t, err)
	require.Len(t, n3.Files, 2)
}

func testVersionsDir(t *testing.T, newRepo func(t *testing.T) remote.Repository) {
	repo := newRepo(t)
	if !repo.Capabilities().Versions {
		t.Skip("the repository keeps no versions")
	}
	if repo.Capabilities().VersionsOnPublish {
		t.Skip("versions are made by publishing; the backend's own tests cover .versions/")
	}
	e := Mount(t, repo, dfs.Options{})
	require.NoError(t, os.MkdirAll(e.Path("sub"), 0o755))
	require.NoError(t, os.WriteFile(e.Path("sub/a.txt"), []byte("one"), 0o644))
	require.NoError(t, os.WriteFile(e.Path("sub/a.txt"), []byte("two"), 0o644))

	require.NotContains(t, e.Run("ls", "-a", e.Path("sub")), ".versions")
	require.NotContains(t, e.Run("find", e.Mnt), ".versions")
	dst := t.TempDir()
	e.Run("rsync", "-a", e.Mnt+"/", dst+"/")
	_, err := os.Stat(filepath.Join(dst, "sub/.versions"))
	require.ErrorIs(t, err, os.ErrNotExist, "rsync does not copy .versions")

	require.Equal(t, "a.txt\n", e.Run("ls", e.Path("sub/.versions")), "a file written through the mount has a history at once")
	names := strings.Fields(e.Run("ls", e.Path("sub/.versions/a.txt")))
	require.Len(t, names, 1)
	vp := e.Path("sub/.versions/a.txt/" + names[0])
	got, err := os.ReadFile(vp)
	require.NoError(t, err)
	require.Equal(t, "one", string(got))

	_, err = os.OpenFile(vp, os.O_WRONLY, 0)
	require.ErrorIs(t, err, syscall.EROFS)
	require.ErrorIs(t, os.Remove(vp), syscall.EROFS)
	require.ErrorIs(t, os.WriteFile(e.Path("sub/.versions/a.txt/new"), nil, 0o644), syscall.EROFS)
	require.ErrorIs(t, os.Chmod(vp, 0o777), syscall.EROFS)

	// Copying an old version back restores it as a new version.
	e.Run("cp", vp, e.Path("sub/a.txt"))
	n := e.MustNode("sub/a.txt")
	require.Equal(t, "one", string(e.Content(n, "")))
	e.RequireVersions(n, 3)

	e.Opts.ShowVersions = true
	e.Remount(false)
	require.Contains(t, e.Run("ls", "-a", e.Path("sub")), ".versions")
}

func testNamespaceOps(t *testing.T, newRepo func(t *testing.T) remote.Repository) {
	e := Mount(t, newRepo(t), dfs.Options{})
	require.NoError(t, os.MkdirAll(e.Path("a/b"), 0o755))
	require.NoError(t, os.WriteFile(e.Path("a/b/f.txt"), []byte("f"), 0o644))
	require.ErrorIs(t, os.Remove(e.Path("a/b")), syscall.ENOTEMPTY)
	require.ErrorIs(t, os.Mkdir(e.Path("a/b"), 0o755), os.ErrExist)
	_, err := os.OpenFile(e.Path("a/b/f.txt"), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	require.ErrorIs(t, err, os.ErrExist)

	f := e.MustNode("a/b/f.txt")
	require.NoError(t, os.Rename(e.Path("a/b/f.txt"), e.Path("a/g.txt")))
	g := e.MustNode("a/g.txt")
	require.Equal(t, f.ID, g.ID, "a move keeps the document")
	e.RequireVersions(g, 1)
	require.NoError(t, os.Rename(e.Path("a/b"), e.Path("c")))
	_, err = e.Node("c")
	require.NoError(t, err)
	require.NoError(t, os.Remove(e.Path("c")))
	_, err = e.Node("c")
	require.ErrorIs(t, err, remote.ErrNotFound)
	require.NoError(t, os.Remove(e.Path("a/g.txt")))
	e.Settle() // an unlinked document stays on the server for UnlinkGrace
	_, err = e.Node("a/g.txt")
	require.ErrorIs(t, err, remote.ErrNotFound)
	require.NoError(t, os.Remove(e.Path("a")))
	require.Empty(t, e.Tree(e.MustNode("")))

	// A new empty file is a document too; a hard link is refused cleanly.
	require.NoError(t, os.WriteFile(e.Path("empty"), nil, 0o644))
	e.Settle() // a close that wrote nothing saves at release
	require.Empty(t, e.Content(e.MustNode("empty"), ""))
	require.Error(t, os.Link(e.Path("empty"), e.Path("link")))
	st, err := os.Stat(e.Path("empty"))
	require.NoError(t, err)
	require.Zero(t, st.Size())
}

// testRemoveTreeAsUnlinksFallDue: rm -rf of a folder of documents. Each
// unlink leaves its document on the server for the grace, and the rmdir
// deletes those at once, while the grace of the first falls due: the
// queue's delete and the rmdir's met on one document, and Axelor's
// answer to the second (a stale version: "Record was updated or deleted
// by another transaction") failed the rmdir with EIO.
func testRemoveTreeAsUnlinksFallDue(t *testing.T, newRepo func(t *testing.T) remote.Repository) {
	e := Mount(t, newRepo(t), dfs.Options{UnlinkGrace: 30 * time.Millisecond})
	paths := makeTree(t, e.Path("tree"), 60, 100)
	e.Settle()
	for range 2 {
		e.Run("rm", "-rf", e.Path("tree"))
		_, err := e.Node("tree")
		require.ErrorIs(t, err, remote.ErrNotFound, "the folder is gone")
		require.NoError(t, os.MkdirAll(e.Path("tree"), 0o755))
		for _, p := range paths[:20] {
			require.NoError(t, os.WriteFile(e.Path("tree/"+filepath.Base(p)), []byte(p), 0o644))
		}
	}
	require.NotContains(t, e.LogText(), "operation failed")
}

func testStrangeServerNames(t *testing.T, newRepo func(t *testing.T) remote.Repository) {
	repo := newRepo(t)
	ctx := context.Background()
	root, err := repo.Root(ctx)
	require.NoError(t, err)
	wantDups := 2
	for i, name := range []string{"a/b.txt", "..", "50% off.pdf", "dup.txt", "dup.txt"} {
		_, err := repo.Insert(ctx, root.ID, name, remotetest.Content([]byte(name)))
		if i == 4 && errors.Is(err, remote.ErrExist) {
			wantDups = 0 // names are unique in this repository (Invenio keys)
			continue
		}
		require.NoError(t, err)
	}
	e := Mount(t, repo, dfs.Options{})
	entries, err := os.ReadDir(e.Mnt)
	require.NoError(t, err)
	var names []string
	for _, de := range entries {
		names = append(names, de.Name())
	}
	sort.Strings(names)
	require.Len(t, names, 3+max(wantDups, 1))
	require.Contains(t, names, "a%2Fb.txt")
	require.Contains(t, names, "%2E%2E")
	require.Contains(t, names, "50% off.pdf")
	dups := 0
	for _, n := range names {
		if strings.HasPrefix(n, "dup (") && strings.HasSuffix(n, ").txt") {
			dups++
			got, err := os.ReadFile(e.Path(n))
			require.NoError(t, err)
			require.Equal(t, "dup.txt", string(got))
		}
	}
	require.Equal(t, wantDups, dups)
	if wantDups == 0 {
		require.Contains(t, names, "dup.txt")
	}
	got, err := os.ReadFile(e.Path("a%2Fb.txt"))
	require.NoError(t, err)
	require.Equal(t, "a/b.txt", string(got))

	// A name typed with an escape reaches the server unescaped.
	require.NoError(t, os.WriteFile(e.Path("x%2Fy"), []byte("xy"), 0o644))
	_, err = e.Node("x/y")
	require.Error(t, err) // there is no folder x…
	kids, err := repo.List(ctx, root.ID)
	require.NoError(t, err)
	found := false
	for _, k := range kids {
		found = found || k.Name == "x/y"
	}
	require.True(t, found, "the document is named x/y on the server")
}

func testConflictCopy(t *testing.T, newRepo func(t *testing.T) remote.Repository) {
	e := Mount(t, newRepo(t), dfs.Options{})
	require.NoError(t, os.WriteFile(e.Path("shared.txt"), []byte("base"), 0o644))
	f, err := os.OpenFile(e.Path("shared.txt"), os.O_RDWR, 0)
	require.NoError(t, err)
	_, err = f.WriteAt([]byte("MINE"), 0)
	require.NoError(t, err)

	// Someone else saves the document meanwhile.
	n := e.MustNode("shared.txt")
	_, err = e.Repo.Replace(context.Background(), n.ID, n.Token, n.Files[0].Name, remotetest.Content([]byte("theirs")))
	require.NoError(t, err)
	require.NoError(t, f.Close())

	require.Equal(t, "theirs", string(e.Content(e.MustNode("shared.txt"), "")), "never silently overwritten")
	var copyName string
	for p := range e.Tree(e.MustNode("")) {
		if strings.HasPrefix(p, "shared (conflict ") && strings.HasSuffix(p, ").txt") {
			copyName = p
		}
	}
	require.NotEmpty(t, copyName, "the local content is saved as a conflict copy")
	require.Equal(t, "MINE", string(e.Content(e.MustNode(copyName), "")))
	require.Contains(t, e.LogText(), "conflict copy")
	got, err := os.ReadFile(e.Path("shared.txt"))
	require.NoError(t, err)
	require.Equal(t, "theirs", string(got))
}

func testWriteBackSurvivesCrash(t *testing.T, newRepo func(t *testing.T) remote.Repository) {
	repo := newRepo(t)
	e := Mount(t, repo, dfs.Options{WriteBack: 3600e9})
	body := WriteFile(t, e.Path("later.bin"), 3<<20, 42)
	_, err := e.Node("later.bin")
	require.ErrorIs(t, err, remote.ErrNotFound, "with write-back the upload waits")
	require.Equal(t, 1, e.FS.Status().Queue.Files)

	// Stop without uploading, as a killed process would.
	e.unmountNoSync()
	_, err = e.Node("later.bin")
	require.ErrorIs(t, err, remote.ErrNotFound)

	e.Opts.WriteBack = 0
	e.mount() // the journal is replayed
	require.Equal(t, body, e.Content(e.MustNode("later.bin"), ""))
	got, err := os.ReadFile(e.Path("later.bin"))
	require.NoError(t, err)
	require.Equal(t, body, got)
}

func testListingCacheExpires(t *testing.T, newRepo func(t *testing.T) remote.Repository) {
	clk := reftest.NewClock(time.Now())
	e := Mount(t, newRepo(t), dfs.Options{DirCacheTime: time.Hour, Now: clk.Now})
	require.NoError(t, os.WriteFile(e.Path("mine.txt"), []byte("m"), 0o644))
	require.Equal(t, "mine.txt\n", e.Run("ls", e.Mnt))

	root := e.MustNode("")
	_, err := e.Repo.Insert(context.Background(), root.ID, "theirs.txt", remotetest.Content([]byte("t")))
	require.NoError(t, err)
	require.Equal(t, "mine.txt\n", e.Run("ls", e.Mnt), "the listing is trusted for --dir-cache-time")
	clk.Advance(59 * time.Minute)
	require.Equal(t, "mine.txt\n", e.Run("ls", e.Mnt))
	clk.Advance(2 * time.Minute)
	require.Equal(t, "mine.txt\ntheirs.txt\n", e.Run("ls", e.Mnt), "and asked again after it")

	// The mount's own changes show at once, whatever the cache time.
	require.NoError(t, os.Mkdir(e.Path("new"), 0o755))
	require.NoError(t, os.Rename(e.Path("theirs.txt"), e.Path("new/theirs.txt")))
	require.Equal(t, "mine.txt\nnew\n", e.Run("ls", e.Mnt))
	require.Equal(t, "theirs.txt\n", e.Run("ls", e.Path("new")))
}

func testReadOnlyMount(t *testing.T, newRepo func(t *testing.T) remote.Repository) {
	repo := newRepo(t)
	root, err := repo.Root(context.Background())
	require.NoError(t, err)
	_, err = repo.Insert(context.Background(), root.ID, "r.txt", remotetest.Content([]byte("read me")))
	require.NoError(t, err)
	e := Mount(t, repo, dfs.Options{ReadOnly: true})
	got, err := os.ReadFile(e.Path("r.txt"))
	require.NoError(t, err)
	require.Equal(t, "read me", string(got))
	require.ErrorIs(t, os.WriteFile(e.Path("r.txt"), []byte("x"), 0o644), syscall.EROFS)
	require.ErrorIs(t, os.WriteFile(e.Path("new.txt"), []byte("x"), 0o644), syscall.EROFS)
	require.ErrorIs(t, os.Mkdir(e.Path("d"), 0o755), syscall.EROFS)
	require.ErrorIs(t, os.Remove(e.Path("r.txt")), syscall.EROFS)
	require.ErrorIs(t, os.Rename(e.Path("r.txt"), e.Path("s.txt")), syscall.EROFS)
	require.Equal(t, 1, e.VersionCount(e.MustNode("r.txt")))
}

// testOtherClientsChanges (issue 16): what another mount saves, creates,
// renames and deletes shows in this one's ls -l, stat and cat after one
// poll round, though the kernel had the old entries, attributes and pages
// cached; a folder's new contents too.
func testOtherClientsChanges(t *testing.T, newRepo func(t *testing.T) remote.Repository) {
	repo := newRepo(t)
	if _, ok := remote.As[remote.Changes](repo); !ok {
		t.Skip("the repository cannot tell changes")
	}
	ctx := context.Background()
	a := Mount(t, repo, dfs.Options{})
	b := Mount(t, repo, dfs.Options{PollInterval: time.Hour}) // rounds run by hand
	require.NoError(t, os.MkdirAll(a.Path("x"), 0o755))
	require.NoError(t, os.WriteFile(a.Path("x/a.txt"), []byte("one"), 0o644))
	require.NoError(t, os.WriteFile(a.Path("x/gone.txt"), []byte("to delete"), 0o644))
	require.NoError(t, os.WriteFile(a.Path("x/old-name.txt"), []byte("renamed"), 0o644))
	a.Settle()
	poll := func() {
		t.Helper()
		require.NoError(t, b.FS.PollChanges(ctx))
	}
	poll()
	got, err := os.ReadFile(b.Path("x/a.txt")) // now in the kernel's caches
	require.NoError(t, err)
	require.Equal(t, "one", string(got))
	_, err = os.Stat(b.Path("x/gone.txt"))
	require.NoError(t, err)
	_, err = os.Stat(b.Path("x/old-name.txt"))
	require.NoError(t, err)
	_, err = os.Stat(b.Path("x/new.txt"))
	require.ErrorIs(t, err, os.ErrNotExist)
	rounds := b.FS.PollRounds()

	require.NoError(t, os.WriteFile(a.Path("x/a.txt"), []byte("second version"), 0o644))
	require.NoError(t, os.WriteFile(a.Path("x/new.txt"), []byte("new"), 0o644))
	require.NoError(t, os.Rename(a.Path("x/old-name.txt"), a.Path("x/new-name.txt")))
	require.NoError(t, os.Remove(a.Path("x/gone.txt")))
	require.NoError(t, os.MkdirAll(a.Path("x/sub"), 0o755))
	require.NoError(t, os.WriteFile(a.Path("x/sub/deep.txt"), []byte("deep"), 0o644))
	a.Settle()
	require.NoError(t, a.FS.Sync(ctx, nil))
	// The unlinked document goes after its grace; wait for it by the API.
	require.Eventually(t, func() bool { _, err := a.Node("x/gone.txt"); return err != nil }, time.Minute, 20*time.Millisecond)
	poll()
	require.Equal(t, rounds+1, b.FS.PollRounds())

	st, err := os.Stat(b.Path("x/a.txt"))
	require.NoError(t, err)
	require.Equal(t, int64(len("second version")), st.Size(), "the kernel's attributes were dropped")
	got, err = os.ReadFile(b.Path("x/a.txt"))
	require.NoError(t, err)
	require.Equal(t, "second version", string(got), "the kernel's pages were dropped")
	names := b.Run("ls", b.Path("x"))
	require.Equal(t, "a.txt\nnew-name.txt\nnew.txt\nsub\n", names)
	for _, p := range []string{"x/gone.txt", "x/old-name.txt"} {
		_, err = os.Stat(b.Path(p))
		require.ErrorIs(t, err, os.ErrNotExist, p)
	}
	got, err = os.ReadFile(b.Path("x/sub/deep.txt"))
	require.NoError(t, err)
	require.Equal(t, "deep", string(got))
}

// testPointInTime (issue 16): a mount --at a time between two versions
// shows each document's bytes of that time (as the version API has them),
// not the documents made later, and is read-only.
func testPointInTime(t *testing.T, newRepo func(t *testing.T) remote.Repository) {
	repo := newRepo(t)
	if !repo.Capabilities().Versions {
		t.Skip("the repository keeps no versions")
	}
	ctx := context.Background()
	e := Mount(t, repo, dfs.Options{})
	require.NoError(t, os.MkdirAll(e.Path("x"), 0o755))
	require.NoError(t, os.WriteFile(e.Path("x/doc.txt"), []byte("as it was"), 0o644))
	e.Settle()
	first := e.MustNode("x/doc.txt")
	if repo.Capabilities().VersionsOnPublish {
		pub, ok := remote.As[remote.Publisher](repo)
		require.True(t, ok)
		_, err := pub.Publish(ctx, first.ID)
		require.NoError(t, err)
	}
	last := func(path string) time.Time {
		t.Helper()
		vs, err := repo.Versions(ctx, e.MustNode(path).ID)
		require.NoError(t, err)
		return vs[len(vs)-1].Time
	}
	t1 := last("x/doc.txt")
	// Let the repository's clock pass t1 (enaio keeps whole seconds):
	// save another file until its version is later, an event each time.
	for i := 0; ; i++ {
		require.NoError(t, os.WriteFile(e.Path("x/clock.txt"), []byte(fmt.Sprint(i)), 0o644))
		e.Settle()
		if last("x/clock.txt").After(t1) {
			break
		}
	}
	require.NoError(t, os.WriteFile(e.Path("x/doc.txt"), []byte("as it is now"), 0o644))
	e.Settle()
	t2 := last("x/doc.txt")
	require.True(t, t2.After(t1))
	require.NoError(t, os.WriteFile(e.Path("x/later.txt"), []byte("made later"), 0o644))
	e.Settle()
	now, err := os.ReadFile(e.Path("x/doc.txt"))
	require.NoError(t, err)

	past, err := pointintime.At(repo, t1.Add(t2.Sub(t1)/2))
	require.NoError(t, err)
	p := Mount(t, past, dfs.Options{})
	got, err := os.ReadFile(p.Path("x/doc.txt"))
	require.NoError(t, err)
	require.Equal(t, "as it was", string(got), "the bytes of that time")
	require.NotEqual(t, string(now), string(got))
	_, err = os.Stat(p.Path("x/later.txt"))
	require.ErrorIs(t, err, os.ErrNotExist, "made later")
	require.ErrorIs(t, os.WriteFile(p.Path("x/doc.txt"), []byte("no"), 0o644), syscall.EROFS)
	require.ErrorIs(t, os.WriteFile(p.Path("x/new.txt"), []byte("no"), 0o644), syscall.EROFS)
}
