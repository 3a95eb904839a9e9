package axelor_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	dfs "github.com/dmsfs/dmsfs/fs"
	"github.com/dmsfs/dmsfs/fs/fstest"
	"github.com/dmsfs/dmsfs/remote"
	"github.com/dmsfs/dmsfs/remote/axelor"
	"github.com/dmsfs/dmsfs/remote/axelor/axelortest"
	"github.com/dmsfs/dmsfs/remote/remotetest"
)

// TestOrdinaryUser mounts the Axelor server as a user who is no admin. An
// admin made a folder shared with them for reading ("Team"), one not
// shared at all ("Private"), and one shared for writing ("Drop"). The user
// sees only what they may read; a copy or mkdir into the read-only folder
// fails at once with EACCES (not retried, nothing hangs in the upload
// queue), and a download of an unreadable file is EACCES.
func TestOrdinaryUser(t *testing.T) {
	ctx := context.Background()
	srv, url := newServer(t, axelortest.Options{Users: map[string]string{testUser: testPassword, "admin": "admin-test-password"}})
	admin, err := axelor.New(ctx, axelor.Config{BaseURL: url, User: "admin", Password: "admin-test-password"})
	require.NoError(t, err)
	mk := func(name string) remote.Node {
		n, err := admin.Mkdir(ctx, axelor.RootID, name)
		require.NoError(t, err)
		return n
	}
	team, private, drop := mk("Team"), mk("Private"), mk("Drop")
	_, err = admin.Insert(ctx, team.ID, "plan.txt", remotetest.Content([]byte("the plan\n")))
	require.NoError(t, err)
	secret, err := admin.Insert(ctx, private.ID, "secret.txt", remotetest.Content([]byte("secret\n")))
	require.NoError(t, err)
	for _, share := range []struct {
		n     remote.Node
		right string
	}{{team, "READ"}, {drop, "WRITE"}} {
		id, err := strconv.ParseInt(string(share.n.ID), 10, 64)
		require.NoError(t, err)
		require.NoError(t, srv.Share(id, testUser, share.right))
	}

	user := newClient(t, url)
	_, err = user.Stat(ctx, secret.ID)
	require.ErrorIs(t, err, remote.ErrNotFound, "an unreadable node is not there for the user (status 0, no data)")
	// A file the user listed, then moved where they may not read it: its
	// download answers 403.
	old, err := admin.Insert(ctx, team.ID, "old.txt", remotetest.Content([]byte("old\n")))
	require.NoError(t, err)
	_, err = user.List(ctx, team.ID)
	require.NoError(t, err)
	_, err = admin.Rename(ctx, old.ID, old.Token, private.ID, "old.txt")
	require.NoError(t, err)
	_, err = user.Open(ctx, old.ID, "old.txt", 0, -1)
	require.ErrorIs(t, err, remote.ErrPermission, "a download of an unreadable file: 403")

	e := fstest.Mount(t, user, dfs.Options{})
	names := strings.Fields(e.Run("ls", e.Path("")))
	require.Equal(t, []string{"Drop", "Team"}, names, "only what the user may read")
	got, err := os.ReadFile(e.Path("Team/plan.txt"))
	require.NoError(t, err)
	require.Equal(t, "the plan\n", string(got))

	src := filepath.Join(t.TempDir(), "notes.txt")
	require.NoError(t, os.WriteFile(src, []byte("mine\n"), 0o644))
	out, err := exec.Command("cp", src, e.Path("Team/notes.txt")).CombinedOutput()
	require.Error(t, err, "cp into a read-only folder")
	require.Contains(t, string(out), "Permission denied")
	require.ErrorIs(t, os.Mkdir(e.Path("Team/sub"), 0o755), syscall.EACCES)
	q := e.FS.Status().Queue
	require.Zero(t, q.Files, "nothing waits to be retried")
	require.Len(t, q.Refused, 1, "the refused copy is kept (for lost+found)")

	out, err = exec.Command("cp", src, e.Path("Drop/notes.txt")).CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.NoError(t, os.Mkdir(e.Path("Drop/sub"), 0o755))
	kids, err := admin.List(ctx, drop.ID)
	require.NoError(t, err)
	require.Len(t, kids, 2, "the writable folder got both")

	// The refused copy stays visible until it is deleted (or the unmount
	// moves it to lost+found).
	require.NoError(t, os.Remove(e.Path("Team/notes.txt")))
	require.Empty(t, e.FS.Status().Queue.Refused)
}
