package fstest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	dfs "github.com/dmsfs/dmsfs/fs"
	"github.com/dmsfs/dmsfs/remote"
	"github.com/dmsfs/dmsfs/remote/remotetest"
)

// A program's ordinary save, run by a shell with $F the file in the mount
// and $SRC a local file holding "new\n". want is the file's content after it,
// given "v1\n" before (or nothing, for a new file).
type program struct {
	name    string
	script  string
	want    func(before string) string
	needOld bool // reads the file first: only for an existing one
}

func replaced(string) string { return "new\n" }

var programs = []program{
	{"bash redirect", `bash -c 'printf "new\n" > "$F"'`, replaced, false},
	{"dash redirect", `dash -c 'printf "new\n" > "$F"'`, replaced, false},
	{"bash append", `bash -c 'printf "more\n" >> "$F"'`, func(b string) string { return b + "more\n" }, false},
	{"cat redirect", `cat "$SRC" > "$F"`, replaced, false},
	{"tee", `printf "new\n" | tee "$F" > /dev/null`, replaced, false},
	{"sed -i", `sed -i 's/v1/v2/' "$F"`, func(string) string { return "v2\n" }, true},
	{"dd", `dd if="$SRC" of="$F" status=none`, replaced, false},
	{"install", `install -m 644 "$SRC" "$F"`, replaced, false},
	{"python3", `python3 -c 'import os; f = open(os.environ["F"], "w"); f.write("new\n"); f.close()'`, replaced, false},
	{"cp", `cp "$SRC" "$F"`, replaced, false},
	{"truncate then write", `python3 -c 'import os; f = open(os.environ["F"], "r+"); f.truncate(0); f.write("new\n"); f.close()'`, replaced, true},
	{"colon redirect", `: > "$F"`, func(string) string { return "" }, false},
}

// testProgramsSave runs real programs' saves and checks through the
// Repository API that each is exactly one new version of the same
// document with the final bytes, never an empty intermediate version, and
// that a new file is one document with one version.
func testProgramsSave(t *testing.T, newRepo func(t *testing.T) remote.Repository) {
	repo := newRepo(t)
	ctx := context.Background()
	root, err := repo.Root(ctx)
	require.NoError(t, err)
	for i := range programs {
		_, err := repo.Insert(ctx, root.ID, programFile("old", i), remotetest.Content([]byte("v1\n")))
		require.NoError(t, err)
	}
	e := Mount(t, repo, dfs.Options{})
	src := filepath.Join(t.TempDir(), "src")
	require.NoError(t, os.WriteFile(src, []byte("new\n"), 0o644))
	for i, p := range programs {
		for _, existing := range []bool{true, false} {
			if !existing && p.needOld {
				continue
			}
			name := programFile("new", i)
			before := ""
			if existing {
				name, before = programFile("old", i), "v1\n"
			}
			// Not cmd.Dir = the mount: the child would chdir into it
			// between fork and exec, while this process (the FUSE server)
			// holds the fork lock.
			cmd := exec.Command("sh", "-c", p.script)
			cmd.Env = append(os.Environ(), "F="+e.Path(name), "SRC="+src)
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, "%s: %s", p.name, out)
			want := p.want(before)
			got, err := os.ReadFile(e.Path(name))
			require.NoError(t, err)
			require.Equal(t, want, string(got), "%s: the mount shows the saved bytes", p.name)

			e.Settle()
			var docs []remote.Node
			for _, n := range e.Tree(e.MustNode("")) {
				if n.Name == name || strings.HasPrefix(n.Name, strings.TrimSuffix(name, ".txt")) {
					docs = append(docs, n)
				}
			}
			require.Len(t, docs, 1, "%s (%s): one document", p.name, name)
			require.Equal(t, want, string(e.Content(docs[0], "")), "%s: the repository has the final bytes", p.name)
			versions := 1
			if existing {
				versions = 2
			}
			e.RequireVersions(docs[0], versions, "%s (%s): one version per save", p.name, name)
			if repo.Capabilities().VersionsOnPublish {
				continue
			}
			vs, err := repo.Versions(ctx, docs[0].ID)
			require.NoError(t, err)
			for _, v := range vs[:len(vs)-1] {
				require.NotZero(t, v.Files[0].Size, "%s (%s): no empty intermediate version", p.name, name)
			}
		}
	}
}

func programFile(kind string, i int) string {
	return kind + "-" + strings.ReplaceAll(programs[i].name, " ", "_") + ".txt"
}

// testStaleListingCreate: another client creates a file in a folder whose
// listing this mount has cached; a shell redirect to that name writes a
// new version of that document instead of a second document of the same
// name, and an O_EXCL create is refused with EEXIST.
func testStaleListingCreate(t *testing.T, newRepo func(t *testing.T) remote.Repository) {
	e, d := staleListing(t, newRepo(t), dfs.Options{})
	e.Run("bash", "-c", "echo y > "+e.Path("d/x.txt"))
	_, err := os.OpenFile(e.Path("d/y.txt"), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	require.ErrorIs(t, err, os.ErrExist)

	e.Settle()
	docs := e.Tree(d)
	require.Len(t, docs, 3, "no duplicate documents: %v", docs)
	require.Equal(t, "y\n", string(e.Content(docs["x.txt"], "")))
	e.RequireVersions(docs["x.txt"], 2)
	require.Equal(t, "from elsewhere\n", string(e.Content(docs["y.txt"], "")))
	e.RequireVersions(docs["y.txt"], 1)
}

// staleListing mounts repo, caches the listing of a folder d holding
// other.txt, then has another client add x.txt and y.txt to it.
func staleListing(t *testing.T, repo remote.Repository, opts dfs.Options) (*Env, remote.Node) {
	e := Mount(t, repo, opts)
	require.NoError(t, os.Mkdir(e.Path("d"), 0o755))
	require.NoError(t, os.WriteFile(e.Path("d/other.txt"), []byte("o"), 0o644))
	e.Settle()
	require.Len(t, e.Names("d"), 1) // the listing of d is cached now
	d := e.MustNode("d")
	for _, name := range []string{"x.txt", "y.txt"} {
		_, err := repo.Insert(context.Background(), d.ID, name, remotetest.Content([]byte("from elsewhere\n")))
		require.NoError(t, err)
	}
	return e, d
}

// testStaleListingCreateWriteBack: with write-back a create trusts the
// cached listing (cp of many files returns at spool speed) and the upload
// looks for the name instead: a document another client made meanwhile
// gets the new content as its next version, never a namesake beside it.
// Even an O_EXCL create succeeds then, as it would have a moment earlier.
func testStaleListingCreateWriteBack(t *testing.T, newRepo func(t *testing.T) remote.Repository) {
	e, d := staleListing(t, newRepo(t), dfs.Options{WriteBack: time.Hour})
	e.Run("bash", "-c", "echo y > "+e.Path("d/x.txt"))
	fh, err := os.OpenFile(e.Path("d/y.txt"), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	require.NoError(t, err, "the cached listing has no y.txt")
	_, err = fh.WriteString("mine\n")
	require.NoError(t, err)
	require.NoError(t, fh.Close())
	require.NoError(t, os.WriteFile(e.Path("d/z.txt"), []byte("new\n"), 0o644))

	e.Settle()
	docs := e.Tree(d)
	require.Len(t, docs, 4, "no namesakes: %v", docs)
	for name, want := range map[string]string{"x.txt": "y\n", "y.txt": "mine\n"} {
		require.Equal(t, want, string(e.Content(docs[name], "")), name)
		e.RequireVersions(docs[name], 2) // the other client's first, then ours
	}
	require.Equal(t, "new\n", string(e.Content(docs["z.txt"], "")))
	require.Len(t, e.Names("d"), 4, "the mount shows each name once")
}

// testRsyncFreshCache: rsync -a of an unchanged tree through a mount with
// a new cache directory (another machine, a reinstall) cannot match the
// times and sends every file again; identical bytes make no version.
func testRsyncFreshCache(t *testing.T, newRepo func(t *testing.T) remote.Repository) {
	e := Mount(t, newRepo(t), dfs.Options{})
	src := t.TempDir()
	paths := makeTree(t, src, 40, 2<<20)
	// Old mtimes, as a tree being backed up has: the upload's time would
	// differ from them.
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, p := range paths {
		require.NoError(t, os.Chtimes(filepath.Join(src, p), old, old))
	}
	e.Run("rsync", "-a", src+"/", e.Path("x")+"/")
	before := e.Tree(e.MustNode("x"))
	require.Len(t, before, len(paths))

	e.Remount(true)
	out := e.Run("rsync", "-a", "--itemize-changes", src+"/", e.Path("x")+"/")
	if e.Repo.Capabilities().ListsFields {
		// The repository keeps the mtimes rsync set: with a new cache
		// directory nothing is sent again (directories' own times are
		// kept locally only, and may be set again).
		for _, line := range strings.Split(out, "\n") {
			require.False(t, strings.HasPrefix(line, ">f"), "a file sent again through a fresh cache: %s", line)
		}
	}
	e.Settle()
	after := e.Tree(e.MustNode("x"))
	require.Len(t, after, len(paths))
	for p, n := range after {
		require.Equal(t, before[p].ID, n.ID, "%s keeps its document", p)
		e.RequireVersions(n, 1, "%s: the same bytes again make no version", p)
	}
	e.Run("diff", "-r", src, e.Path("x"))
}

// testMknod: mknod makes regular files only (EPERM for pipes and devices).
// A file made so and then written is one save; one left empty becomes an
// empty document shortly after.
func testMknod(t *testing.T, newRepo func(t *testing.T) remote.Repository) {
	e := Mount(t, newRepo(t), dfs.Options{})
	require.NoError(t, os.MkdirAll(e.Path("x"), 0o755))
	require.ErrorIs(t, unix.Mknod(e.Path("x/pipe"), unix.S_IFIFO|0o644, 0), unix.EPERM)

	require.NoError(t, unix.Mknod(e.Path("x/filled.txt"), unix.S_IFREG|0o644, 0))
	require.NoError(t, os.WriteFile(e.Path("x/filled.txt"), []byte("content after mknod"), 0o644))
	require.NoError(t, unix.Mknod(e.Path("x/empty.txt"), unix.S_IFREG|0o600, 0))
	st, err := os.Stat(e.Path("x/empty.txt"))
	require.NoError(t, err)
	require.True(t, st.Mode().IsRegular())
	e.Settle()

	filled := e.MustNode("x/filled.txt")
	require.Equal(t, []byte("content after mknod"), e.Content(filled, ""))
	if e.Repo.Capabilities().Versions && !e.Repo.Capabilities().VersionsOnPublish {
		vs, err := e.Repo.Versions(context.Background(), filled.ID)
		require.NoError(t, err)
		require.Len(t, vs, 1, "mknod and a write are one save")
	}
	require.Empty(t, e.Content(e.MustNode("x/empty.txt"), ""))
}
