package fstest

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	dfs "github.com/dmsfs/dmsfs/fs"
	"github.com/dmsfs/dmsfs/remote"
	"github.com/dmsfs/dmsfs/remote/remotetest"
)

// getfattr runs getfattr -d -m - on p and returns its name=value lines.
func getfattr(t *testing.T, p string) map[string]string {
	t.Helper()
	out, err := exec.Command("getfattr", "--absolute-names", "-d", "-m", "-", p).CombinedOutput()
	require.NoError(t, err, "%s", out)
	attrs := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			attrs[k] = strings.Trim(v, `"`)
		}
	}
	return attrs
}

// testXattrs: getfattr -d of a document lists what the Repository API says
// of it (id, version, state: pending while a write-back file waits in the
// spool, saved once sent); a write of a read-only name (a copy between
// mounts writes another object's) is taken and changes nothing. Where
// the repository keeps fields, setfattr sets one on the server (a fresh
// mount with another cache directory shows it), setfattr -x clears it, a
// field set on a file before its upload reaches the server with it, and
// rsync -aX and cp --preserve=xattr of a folder to another carry the
// fields along.
func testXattrs(t *testing.T, newRepo func(t *testing.T) remote.Repository) {
	RequireFUSE(t)
	RequireTools(t, "getfattr") // Debian: attr
	repo := newRepo(t)
	e := Mount(t, repo, dfs.Options{})
	require.NoError(t, os.MkdirAll(e.Path("x/src"), 0o755))
	p := e.Path("x/src/a.txt")
	require.NoError(t, os.WriteFile(p, []byte("indexed"), 0o644))
	n := e.MustNode("x/src/a.txt")
	attrs := getfattr(t, p)
	require.Equal(t, string(n.ID), attrs["user.dms.id"])
	require.Equal(t, n.Token, attrs["user.dms.version"])
	require.Equal(t, "saved", attrs["user.dms.state"])
	require.Equal(t, n.Type, attrs["user.dms.type"], "the type where the repository has one")
	dir := e.MustNode("x/src")
	dattrs := getfattr(t, e.Path("x/src"))
	require.Equal(t, string(dir.ID), dattrs["user.dms.id"])
	require.Equal(t, dir.Type, dattrs["user.dms.type"])
	require.Equal(t, dir.URL, dattrs["user.dms.url"])
	require.NoError(t, unix.Setxattr(p, "user.dms.id", []byte("another object's"), 0), "a copy's write of a read-only name")
	require.Equal(t, string(n.ID), getfattr(t, p)["user.dms.id"], "changes nothing")
	require.NoError(t, unix.Removexattr(p, "user.dms.checksum"))
	require.ErrorIs(t, unix.Setxattr(p, "user.other", []byte("x"), 0), syscall.ENOTSUP, "names outside user.dms. are not kept")

	// With write-back a closed file is in the spool until the queue
	// sends it: pending, then saved.
	wb := MountIn(t, repo, dfs.Options{WriteBack: time.Hour}, t.TempDir())
	require.NoError(t, os.WriteFile(wb.Path("x/later.txt"), []byte("later"), 0o644))
	require.Equal(t, "pending", getfattr(t, wb.Path("x/later.txt"))["user.dms.state"])
	wb.Settle()
	require.Equal(t, "saved", getfattr(t, wb.Path("x/later.txt"))["user.dms.state"])

	fr, ok := remote.As[remote.Fields](repo)
	if !ok {
		require.ErrorIs(t, unix.Setxattr(p, "user.dms.field.title", []byte("T"), 0), syscall.ENOTSUP)
		return
	}
	field := remotetest.FieldName(context.Background(), repo, n.ID)
	out, err := exec.Command("setfattr", "-n", "user.dms.field."+field, "-v", "Quarterly report", p).CombinedOutput()
	require.NoError(t, err, "%s", out)
	fields, err := fr.Fields(context.Background(), n.ID)
	require.NoError(t, err)
	require.Equal(t, "Quarterly report", fields[field], "on the server")
	fresh := MountIn(t, repo, dfs.Options{}, t.TempDir())
	require.Equal(t, "Quarterly report", getfattr(t, fresh.Path("x/src/a.txt"))["user.dms.field."+field], "a fresh mount")

	// A field set on a new file before its close is sent with it.
	f, err := os.Create(e.Path("x/src/b.txt"))
	require.NoError(t, err)
	_, err = f.WriteString("second")
	require.NoError(t, err)
	require.NoError(t, unix.Fsetxattr(int(f.Fd()), "user.dms.field."+field, []byte("Second"), 0))
	require.NoError(t, f.Close())
	fields, err = fr.Fields(context.Background(), e.MustNode("x/src/b.txt").ID)
	require.NoError(t, err)
	require.Equal(t, "Second", fields[field])

	// rsync -aX, cp --preserve=xattr and tar --xattrs carry the fields;
	// the read-only names they copy too change nothing and fail nothing.
	// GNU tar makes each file by mknod, sets its attributes, then writes
	// it: still one version per file.
	require.NoError(t, os.MkdirAll(e.Path("x/cp"), 0o755))
	require.NoError(t, os.MkdirAll(e.Path("x/tar"), 0o755))
	for _, copy := range [][]string{
		{"rsync", "-aX", e.Path("x/src") + "/", e.Path("x/dst") + "/"},
		{"cp", "-r", "--preserve=xattr", e.Path("x/src/a.txt"), e.Path("x/src/b.txt"), e.Path("x/cp")},
		{"sh", "-c", `tar --xattrs -C "$1" -cf - a.txt b.txt | tar --xattrs -C "$2" -xf -`, "sh", e.Path("x/src"), e.Path("x/tar")},
	} {
		out, err := exec.Command(copy[0], copy[1:]...).CombinedOutput()
		require.NoError(t, err, "%v: %s", copy, out)
	}
	e.Settle()
	for _, d := range []string{"dst", "cp", "tar"} {
		for name, want := range map[string]string{"a.txt": "Quarterly report", "b.txt": "Second"} {
			n := e.MustNode("x/" + d + "/" + name)
			fields, err := fr.Fields(context.Background(), n.ID)
			require.NoError(t, err)
			require.Equal(t, want, fields[field], "%s/%s", d, name)
			require.Equal(t, e.Content(e.MustNode("x/src/"+name), ""), e.Content(n, ""), "%s/%s", d, name)
			if e.Repo.Capabilities().Versions && !e.Repo.Capabilities().VersionsOnPublish {
				vs, err := e.Repo.Versions(context.Background(), n.ID)
				require.NoError(t, err)
				require.Len(t, vs, 1, "%s/%s: one save, one version", d, name)
			}
		}
	}

	out, err = exec.Command("setfattr", "-x", "user.dms.field."+field, p).CombinedOutput()
	require.NoError(t, err, "%s", out)
	fields, err = fr.Fields(context.Background(), n.ID)
	require.NoError(t, err)
	require.NotContains(t, fields, field)
}
