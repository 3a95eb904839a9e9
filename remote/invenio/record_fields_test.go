package invenio_test

import (
	"context"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	dfs "github.com/dmsfs/dmsfs/fs"
	"github.com/dmsfs/dmsfs/fs/fstest"
	"github.com/dmsfs/dmsfs/remote/invenio"
	"github.com/dmsfs/dmsfs/remote/invenio/inveniotest"
)

// TestRecordMetadataFields (issue 14): a record directory's fields are the
// record's metadata. A write changes exactly that key on the draft, JSON
// where not a string, and a fresh mount shows it; what the schema does not
// take (an unknown key, a date that is none) is EINVAL with the server's
// message and leaves the metadata as it was; the title is the directory's
// name (EPERM); removexattr removes the key.
func TestRecordMetadataFields(t *testing.T) {
	repo, srv := connect(t, inveniotest.Options{}, invenio.Config{})
	e := fstest.Mount(t, repo, dfs.Options{})
	require.NoError(t, os.Mkdir(e.Path("Paper"), 0o755))
	require.NoError(t, os.WriteFile(e.Path("Paper/data.csv"), []byte("a,b\n"), 0o644))
	dir := e.Path("Paper")
	parent := strings.TrimPrefix(string(recordNamed(t, repo, "Paper").ID), "r/")

	require.NoError(t, unix.Setxattr(dir, "user.dms.field.description", []byte("Measurements of 2026"), 0))
	creators := `[{"person_or_org":{"family_name":"Doe","type":"personal"}}]`
	require.NoError(t, unix.Setxattr(dir, "user.dms.field.creators", []byte(creators), 0))
	md, ok := srv.RecordMetadata(parent)
	require.True(t, ok)
	require.Equal(t, map[string]any{"title": "Paper", "description": "Measurements of 2026",
		"creators": []any{map[string]any{"person_or_org": map[string]any{"family_name": "Doe", "type": "personal"}}}}, md,
		"exactly these keys changed")

	fresh := fstest.Mount(t, connect2(t, repo.BaseURL()), dfs.Options{})
	require.Equal(t, "Measurements of 2026", getxattr(t, fresh.Path("Paper"), "user.dms.field.description"))
	require.JSONEq(t, creators, getxattr(t, fresh.Path("Paper"), "user.dms.field.creators"))

	require.NoError(t, unix.Setxattr(dir, "user.dms.field.publication_date", []byte("2026-11-30"), 0))
	for name, bad := range map[string]string{"publication_date": "not-a-date", "colour": "red"} {
		err := unix.Setxattr(dir, "user.dms.field."+name, []byte(bad), 0)
		require.ErrorIs(t, err, syscall.EINVAL, name)
	}
	require.Contains(t, e.LogText(), "Please provide a valid date or interval.", "the server's message is logged")
	md, _ = srv.RecordMetadata(parent)
	require.Equal(t, "2026-11-30", md["publication_date"], "a refused value leaves the old one")
	require.NotContains(t, md, "colour")

	require.ErrorIs(t, unix.Setxattr(dir, "user.dms.field.title", []byte("Other"), 0), syscall.EPERM, "rename instead")
	require.NoError(t, unix.Setxattr(dir, "user.dms.field.title", []byte("Paper"), 0), "an unchanged title is no change")

	require.NoError(t, unix.Removexattr(dir, "user.dms.field.description"))
	md, _ = srv.RecordMetadata(parent)
	require.NotContains(t, md, "description")
}

// connect2 is another client of the same server, with its own cache.
func connect2(t *testing.T, baseURL string) *invenio.Repo {
	t.Helper()
	r, err := invenio.New(context.Background(), invenio.Config{BaseURL: baseURL, Token: inveniotest.TestToken, CacheDir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(func() { r.Close() })
	return r
}

func getxattr(t *testing.T, path, name string) string {
	t.Helper()
	buf := make([]byte, 4096)
	n, err := unix.Getxattr(path, name, buf)
	require.NoError(t, err, name)
	return string(buf[:n])
}
