package fs_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	dfs "github.com/dmsfs/dmsfs/fs"
	"github.com/dmsfs/dmsfs/fs/fstest"
	"github.com/dmsfs/dmsfs/remote/embedded"
)

// asUser runs a shell command as uid:gid and returns its output and error.
func asUser(uid, gid uint32, script string, args ...string) (string, error) {
	cmd := exec.Command("sh", append([]string{"-c", script, "sh"}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid}}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestSeveralUsers (issue 18): with allow_other, what a user makes is
// theirs: it shows their uid and gid, they may chmod it and another user
// may not; root may chown; links, symbolic links and pipes are EPERM.
func TestSeveralUsers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to act as other users")
	}
	r, err := embedded.Open(t.TempDir(), embedded.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { r.Close() })
	e := fstest.MountShared(t, r, dfs.Options{})
	shared := e.Path("shared")
	require.NoError(t, os.Mkdir(shared, 0o777))
	require.NoError(t, os.Chmod(shared, 0o777))

	const nobody, other = 65534, 65533
	out, err := asUser(nobody, nobody, `echo mine > "$1/by-nobody.txt" && mkdir "$1/nobody-dir"`, shared)
	require.NoError(t, err, out)
	for _, name := range []string{"by-nobody.txt", "nobody-dir"} {
		st, err := os.Stat(filepath.Join(shared, name))
		require.NoError(t, err)
		sys := st.Sys().(*syscall.Stat_t)
		require.Equal(t, uint32(nobody), sys.Uid, name)
		require.Equal(t, uint32(nobody), sys.Gid, name)
	}
	file := filepath.Join(shared, "by-nobody.txt")
	out, err = asUser(nobody, nobody, `chmod 600 "$1"`, file)
	require.NoError(t, err, "the owner may chmod: %s", out)
	st, err := os.Stat(file)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	out, err = asUser(other, other, `chmod 666 "$1"`, file)
	require.Error(t, err)
	require.Contains(t, out, "Operation not permitted", "another user may not")
	out, err = asUser(nobody, nobody, `chown 0 "$1"`, file)
	require.Error(t, err)
	require.Contains(t, out, "Operation not permitted", "only root gives files away")
	require.NoError(t, os.Chown(file, other, other), "root may")
	st, err = os.Stat(file)
	require.NoError(t, err)
	require.Equal(t, uint32(other), st.Sys().(*syscall.Stat_t).Uid)

	for _, c := range []string{`ln "$1/by-nobody.txt" "$1/hard"`, `ln -s by-nobody.txt "$1/soft"`, `mkfifo "$1/pipe"`} {
		out, err := asUser(0, 0, c, shared)
		require.Error(t, err, c)
		require.Contains(t, out, "Operation not permitted", c)
	}
	require.Contains(t, e.LogText(), "not hard links")
}
