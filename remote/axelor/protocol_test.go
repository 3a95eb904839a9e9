package axelor_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	dfs "github.com/dmsfs/dmsfs/fs"
	"github.com/dmsfs/dmsfs/fs/fstest"
	"github.com/dmsfs/dmsfs/remote"
	"github.com/dmsfs/dmsfs/remote/axelor"
	"github.com/dmsfs/dmsfs/remote/axelor/axelortest"
	"github.com/dmsfs/dmsfs/remote/remotetest"
)

// Acceptance 3: a small read in the middle of a large document transfers
// little more than the block it needs.
func TestRangedReadTransfersLittle(t *testing.T) {
	srv, url := newServer(t, axelortest.Options{})
	c := newClient(t, url)
	root, _ := c.Root(context.Background())
	body := remotetest.Bytes(64 << 20)
	_, err := c.Insert(context.Background(), root.ID, "big.bin", remotetest.Content(body))
	require.NoError(t, err)

	e := fstest.Mount(t, c, dfs.Options{})
	f, err := os.Open(e.Path("big.bin"))
	require.NoError(t, err)
	defer f.Close()
	before := srv.BytesServed.Load()
	buf := make([]byte, 4096)
	_, err = f.ReadAt(buf, 32<<20)
	require.NoError(t, err)
	require.Equal(t, body[32<<20:32<<20+4096], buf)
	served := srv.BytesServed.Load() - before
	t.Logf("4 KiB at 32 MiB of 64 MiB: %d bytes served", served)
	require.Less(t, served, int64(2<<20))
}

// The server answering 200 with the whole body (a proxy stripped Range)
// still gives the right bytes.
func TestDownloadWithoutRangeSupport(t *testing.T) {
	_, url := newServer(t, axelortest.Options{NoRange: true})
	c := newClient(t, url)
	root, _ := c.Root(context.Background())
	body := remotetest.Bytes(3<<20 + 5)
	doc, err := c.Insert(context.Background(), root.ID, "x.bin", remotetest.Content(body))
	require.NoError(t, err)
	rc, err := c.Open(context.Background(), doc.ID, "x.bin", 1<<20+7, 1000)
	require.NoError(t, err)
	got, err := io.ReadAll(rc)
	rc.Close()
	require.NoError(t, err)
	require.Equal(t, body[1<<20+7:1<<20+1007], got)
}

// Acceptance 4: a 50 MiB file goes up in chunks of at most 1,000,000 bytes,
// and an upload interrupted by a server failure is restarted.
func TestChunkedUploadRestartsAfterFailure(t *testing.T) {
	srv, url := newServer(t, axelortest.Options{})
	c := newClient(t, url)
	e := fstest.Mount(t, c, dfs.Options{})
	src := filepath.Join(t.TempDir(), "fifty.bin")
	body := fstest.WriteFile(t, src, 50<<20, 9)

	// The 20th chunk fails with a server error.
	srv.FailAfter("POST", "/ws/files/upload", 19, http.StatusInternalServerError, "disk hiccup")
	e.Run("cp", src, e.Path("fifty.bin"))
	require.LessOrEqual(t, srv.MaxChunk.Load(), int64(1_000_000))
	require.Greater(t, srv.Requests("POST /ws/files/upload"), 53, "the upload was restarted")
	require.GreaterOrEqual(t, srv.Requests("DELETE /ws/files/upload"), 1, "the failed upload was aborted")
	n := e.MustNode("fifty.bin")
	require.True(t, bytes.Equal(body, e.Content(n, "")), "byte-exact")
}

// Acceptance 5: an expired session during cp -r is renewed unnoticed.
func TestSessionExpiryDuringCopy(t *testing.T) {
	srv, url := newServer(t, axelortest.Options{})
	c := newClient(t, url)
	e := fstest.Mount(t, c, dfs.Options{})
	src := t.TempDir()
	for i := range 40 {
		fstest.WriteFile(t, filepath.Join(src, "d", string(rune('a'+i%26))+strings.Repeat("x", i)+".txt"), 1000+i, uint64(i))
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 5 {
			srv.ExpireSessions()
		}
	}()
	e.Run("cp", "-r", src+"/.", e.Path("tree"))
	srv.ExpireSessions()
	<-done
	e.Run("diff", "-r", src, e.Path("tree"))
	require.Greater(t, srv.Requests("POST /callback"), 1, "logged in again")
}

// Acceptance 5: a status -1 answer reaches the app as EIO, and its message
// reaches the log.
func TestStatusMinusOneIsEIOWithMessage(t *testing.T) {
	srv, url := newServer(t, axelortest.Options{})
	c := newClient(t, url)
	e := fstest.Mount(t, c, dfs.Options{})
	srv.Fail("PUT", "/ws/rest/com.axelor.dms.db.DMSFile", 1, http.StatusOK, "Das Dokument ist gesperrt")
	err := os.Mkdir(e.Path("locked"), 0o755)
	require.ErrorIs(t, err, syscall.EIO)
	require.Contains(t, e.LogText(), "Das Dokument ist gesperrt")
	require.NoError(t, os.Mkdir(e.Path("locked"), 0o755), "the next try works")
}

func TestLoginErrors(t *testing.T) {
	_, url := newServer(t, axelortest.Options{MFAUsers: map[string]bool{testUser: true}})
	_, err := axelor.New(context.Background(), axelor.Config{BaseURL: url, User: testUser, Password: testPassword})
	require.ErrorContains(t, err, "needs an interactive step (/mfa")
	_, err = axelor.New(context.Background(), axelor.Config{BaseURL: url, User: testUser, Password: "bad-secret-xyz"})
	require.ErrorIs(t, err, remote.ErrPermission)
	require.NotContains(t, err.Error(), "bad-secret-xyz", "no password in messages")
	_, err = axelor.New(context.Background(), axelor.Config{BaseURL: "ftp://x", User: "u"})
	require.ErrorContains(t, err, "not http(s)")
}

func TestAPIKey(t *testing.T) {
	_, url := newServer(t, axelortest.Options{APIKeys: map[string]string{"test-key-123": testUser}})
	c, err := axelor.New(context.Background(), axelor.Config{BaseURL: url, APIKey: "test-key-123"})
	require.NoError(t, err)
	root, _ := c.Root(context.Background())
	_, err = c.Mkdir(context.Background(), root.ID, "with key")
	require.NoError(t, err)
	bad, err := axelor.New(context.Background(), axelor.Config{BaseURL: url, APIKey: "nope"})
	require.NoError(t, err)
	_, err = bad.List(context.Background(), root.ID)
	require.ErrorIs(t, err, remote.ErrPermission)
}

// Axelor has no content history: .versions comes from the version records
// the client keeps, and they go when the document goes.
func TestVersionRecordsFollowTheDocument(t *testing.T) {
	_, url := newServer(t, axelortest.Options{})
	c := newClient(t, url)
	ctx := context.Background()
	root, _ := c.Root(ctx)
	n, err := c.Insert(ctx, root.ID, "v.txt", remotetest.Content([]byte("one")))
	require.NoError(t, err)
	n, err = c.Replace(ctx, n.ID, n.Token, "v.txt", remotetest.Content([]byte("two")))
	require.NoError(t, err)
	kids, err := c.List(ctx, root.ID)
	require.NoError(t, err)
	require.Len(t, kids, 1, "the version store is not listed")
	require.NoError(t, c.Delete(ctx, n.ID, n.Token))
	kids, err = c.List(ctx, root.ID)
	require.NoError(t, err)
	require.Empty(t, kids)
}

// Listings page through large folders (500 rows a request).
func TestListingPages(t *testing.T) {
	srv, url := newServer(t, axelortest.Options{})
	c := newClient(t, url)
	ctx := context.Background()
	root, _ := c.Root(ctx)
	dir, err := c.Mkdir(ctx, root.ID, "big")
	require.NoError(t, err)
	for i := range 1100 {
		_, err := c.Mkdir(ctx, dir.ID, fmt.Sprintf("f%04d", i))
		require.NoError(t, err)
	}
	before := srv.Requests("POST /ws/rest/com.axelor.dms.db.DMSFile/search")
	kids, err := c.List(ctx, dir.ID)
	require.NoError(t, err)
	require.Len(t, kids, 1100)
	seen := map[remote.ID]bool{}
	for _, k := range kids {
		require.False(t, seen[k.ID], "no row twice")
		seen[k.ID] = true
	}
	require.Equal(t, 1+3, srv.Requests("POST /ws/rest/com.axelor.dms.db.DMSFile/search")-before, "a stat and three pages")
}

// Malformed answers are errors, never panics or endless loops.
func TestMalformedAnswers(t *testing.T) {
	for _, tc := range []struct {
		answer  string
		listErr error // nil: List succeeds
	}{
		{`not json`, remote.ErrProtocol},
		{`{"status":0,"data":{"unexpected":"object"}}`, remote.ErrProtocol},
		{`{"status":0,"data":[{"id":"abc","fileName":7}]}`, remote.ErrProtocol},
		{`{"status":-1}`, remote.ErrUnavailable},
		{`{"status":-1,"data":{"message":"Kaputt","entityId":5}}`, remote.ErrConflict},
		{`[]`, remote.ErrProtocol},
		{`{"status":0,"total":999999,"data":[]}`, nil},
		{`{"status":0,"data":[{"id":5,"version":1,"fileName":"a","isDirectory":false,"metaFile.id":"x","metaFile.fileSize":"huge"}],"total":1}`, nil},
	} {
		t.Run(tc.answer, func(t *testing.T) {
			hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/callback" {
					w.Write([]byte(`{}`))
					return
				}
				w.Write([]byte(tc.answer))
			}))
			defer hs.Close()
			c := newClient(t, hs.URL)
			ctx := context.Background()
			var nodes []remote.Node
			var err error
			require.NotPanics(t, func() {
				nodes, err = c.List(ctx, axelor.RootID)
				c.Stat(ctx, "5")
				c.Versions(ctx, "5")
				c.Mkdir(ctx, axelor.RootID, "x")
			})
			if tc.listErr != nil {
				require.ErrorIs(t, err, tc.listErr)
				return
			}
			require.NoError(t, err)
			for _, n := range nodes {
				require.NotEmpty(t, n.ID)
				require.GreaterOrEqual(t, n.Files[0].Size, int64(0))
			}
		})
	}
}

// A save whose upload fails gets EIO at close, stays in the spool and is
// uploaded by the background retry once the server works again.
func TestFailedSaveIsKeptAndRetried(t *testing.T) {
	srv, url := newServer(t, axelortest.Options{})
	c := newClient(t, url)
	e := fstest.Mount(t, c, dfs.Options{})
	srv.Fail("POST", "/ws/files/upload", 3, http.StatusServiceUnavailable, "maintenance")
	body := remotetest.Bytes(300_000)
	err := os.WriteFile(e.Path("report.pdf"), body, 0o644)
	require.ErrorIs(t, err, syscall.EIO, "the app sees the failed save")
	q := e.FS.Status().Queue
	require.Equal(t, 1, q.Files)
	require.Equal(t, 1, q.Failing)
	require.Eventually(t, func() bool {
		n, err := e.Node("report.pdf")
		return err == nil && bytes.Equal(body, e.Content(n, ""))
	}, 20*time.Second, 100*time.Millisecond, "uploaded by the retry")
	require.Eventually(t, func() bool { return e.FS.Status().Queue.Files == 0 }, 5*time.Second, 50*time.Millisecond)
}
