package invenio_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	dfs "github.com/dmsfs/dmsfs/fs"
	"github.com/dmsfs/dmsfs/fs/fstest"
	"github.com/dmsfs/dmsfs/remote"
	"github.com/dmsfs/dmsfs/remote/invenio"
	"github.com/dmsfs/dmsfs/remote/invenio/inveniotest"
	"github.com/dmsfs/dmsfs/remote/remotetest"
)

// api GETs a JSON document from the server as a plain HTTP client would.
func api(t *testing.T, url string, out any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+inveniotest.TestToken)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, url)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(out))
}

// publishedFile reads a file of a published record straight from the API.
func publishedFile(t *testing.T, base, record, key string) []byte {
	t.Helper()
	resp, err := http.Get(base + "/api/records/" + record + "/files/" + key + "/content")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return b
}

func recordNamed(t *testing.T, r remote.Repository, name string) remote.Node {
	t.Helper()
	kids, err := r.List(context.Background(), "root")
	require.NoError(t, err)
	for _, k := range kids {
		if k.Name == name {
			return k
		}
	}
	t.Fatalf("no record %q", name)
	return remote.Node{}
}

// Acceptance: writing into a published record leaves the published files
// alone until publish; then there is one more version and .versions/ shows
// the previous one byte-exact.
func TestPublishedRecordChangesOnlyOnPublish(t *testing.T) {
	repo, _ := connect(t, inveniotest.Options{S3: true}, invenio.Config{})
	e := fstest.Mount(t, repo, dfs.Options{})
	err := os.WriteFile(e.Path("loose.txt"), []byte("x"), 0o644)
	require.ErrorIs(t, err, syscall.EACCES, "files go into records, refused at once at the root")
	require.NoError(t, os.Mkdir(e.Path("Field data 2026"), 0o755))
	v1 := []byte("site,value\nA,1\n")
	require.NoError(t, os.WriteFile(e.Path("Field data 2026/data.csv"), v1, 0o644))
	rec := recordNamed(t, repo, "Field data 2026")
	ctx := context.Background()
	page, err := exec.Command("getfattr", "--only-values", "-n", "user.dms.url", e.Path("Field data 2026")).Output()
	require.NoError(t, err)
	require.Regexp(t, `^http://[^/]+/uploads/[0-9a-z-]+$`, string(page), "a draft's page in the web UI")

	plan, err := repo.PublishPlan(ctx, rec.ID)
	require.NoError(t, err)
	require.Equal(t, []string{"data.csv"}, plan.Added)
	first, err := repo.Publish(ctx, rec.ID)
	require.NoError(t, err)
	require.Equal(t, 1, first.Version)

	v2 := []byte("site,value\nA,1\nB,2\n")
	require.NoError(t, os.WriteFile(e.Path("Field data 2026/data.csv"), v2, 0o644))
	require.NoError(t, os.WriteFile(e.Path("Field data 2026/notes.txt"), []byte("new"), 0o644))
	got, err := os.ReadFile(e.Path("Field data 2026/data.csv"))
	require.NoError(t, err)
	require.Equal(t, v2, got, "the mount shows the draft")
	url := repo.BaseURL()
	require.Equal(t, v1, publishedFile(t, url, first.Record, "data.csv"), "the published version is untouched")

	plan, err = repo.PublishPlan(ctx, rec.ID)
	require.NoError(t, err)
	require.Equal(t, 2, plan.Version)
	require.Equal(t, []string{"notes.txt"}, plan.Added)
	require.Equal(t, []string{"data.csv"}, plan.Changed)
	second, err := repo.Publish(ctx, rec.ID)
	require.NoError(t, err)
	require.NotEqual(t, first.Record, second.Record, "a new version is a new record id")
	require.Equal(t, v1, publishedFile(t, url, first.Record, "data.csv"))
	require.Equal(t, v2, publishedFile(t, url, second.Record, "data.csv"))

	var versions struct {
		Hits struct{ Total int } `json:"hits"`
	}
	api(t, url+"/api/records/"+second.Record+"/versions", &versions)
	require.Equal(t, 2, versions.Hits.Total)

	names := strings.Fields(e.Run("ls", e.Path("Field data 2026/.versions/data.csv")))
	require.Len(t, names, 1)
	require.Regexp(t, `_v1\.csv$`, names[0])
	old, err := os.ReadFile(e.Path("Field data 2026/.versions/data.csv/" + names[0]))
	require.NoError(t, err)
	require.Equal(t, v1, old)

	again, err := repo.Publish(ctx, rec.ID)
	require.NoError(t, err)
	require.True(t, again.NoDraft, "nothing left to publish")
}

// Acceptance: a 300 MiB file goes up as a multipart transfer where the
// server offers one and as one upload where it does not; both byte-exact
// with the right md5.
func TestLargeUpload(t *testing.T) {
	src := filepath.Join(t.TempDir(), "big.bin")
	body := fstest.WriteFile(t, src, 300<<20, 7)
	sum := md5.Sum(body)
	want := "md5:" + hex.EncodeToString(sum[:])
	body = nil //nolint:ineffassign // let the 300 MiB go before the uploads
	for _, c := range []struct {
		name  string
		opts  inveniotest.Options
		parts int
	}{
		{"MultipartLocal", inveniotest.Options{}, 10},
		{"MultipartS3", inveniotest.Options{S3: true}, 10},
		{"SingleBeforeV13", inveniotest.Options{NoMultipart: true}, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			repo, srv := connect(t, c.opts, invenio.Config{})
			ctx := context.Background()
			rec, err := repo.Mkdir(ctx, "root", "big")
			require.NoError(t, err)
			f, err := os.Open(src)
			require.NoError(t, err)
			defer f.Close()
			n, err := repo.Insert(ctx, rec.ID, "big.bin", remote.Content{ReaderAt: f, Size: 300 << 20})
			require.NoError(t, err)
			require.Equal(t, want, n.Token)

			parts := srv.RequestsMatching(func(k string) bool {
				return strings.HasPrefix(k, "PUT /api/records/") && strings.Contains(k, "/content/") ||
					strings.HasPrefix(k, "storage PUT /part/")
			})
			require.Equal(t, c.parts, parts, "parts of 32 MiB")
			single := srv.RequestsMatching(func(k string) bool {
				return strings.HasPrefix(k, "PUT /api/records/") && strings.HasSuffix(k, "/content")
			})
			require.Equal(t, 1-min(c.parts, 1), single, "one content PUT without multipart")
			plan, err := repo.PublishPlan(ctx, rec.ID)
			require.NoError(t, err)

			// The server's own checksum (once any background md5 is done).
			var entry struct{ Checksum string }
			require.Eventually(t, func() bool {
				var list struct {
					Entries []struct{ Key, Checksum string }
				}
				api(t, repo.BaseURL()+"/api/records/"+plan.Record+"/draft/files", &list)
				for _, e := range list.Entries {
					if e.Key == "big.bin" {
						entry.Checksum = e.Checksum
					}
				}
				return entry.Checksum == want
			}, 5*time.Second, 50*time.Millisecond, "server checksum %q", entry.Checksum)

			rc, err := repo.Open(ctx, n.ID, "big.bin", 0, -1)
			require.NoError(t, err)
			h := md5.New()
			_, err = io.Copy(h, rc)
			rc.Close()
			require.NoError(t, err)
			require.Equal(t, want, "md5:"+hex.EncodeToString(h.Sum(nil)))
		})
	}
}

// Acceptance: a 429 storm during cp -r slows the copy down but loses
// nothing.
func TestRateLimitStormDuringCopy(t *testing.T) {
	repo, srv := connect(t, inveniotest.Options{}, invenio.Config{})
	e := fstest.Mount(t, repo, dfs.Options{})
	require.NoError(t, os.Mkdir(e.Path("storm"), 0o755))
	src := t.TempDir()
	for i := range 40 {
		fstest.WriteFile(t, filepath.Join(src, []string{"a", "b/c"}[i%2], "f"+strings.Repeat("x", i%5)+string(rune('A'+i))+".bin"), 1000+i*997, uint64(i))
	}
	srv.SetRateLimit(15, time.Second)
	start := time.Now()
	e.Run("cp", "-r", src+"/.", e.Path("storm"))
	took := time.Since(start)
	srv.SetRateLimit(0, 0)
	e.Run("diff", "-r", src, e.Path("storm"))
	require.Greater(t, srv.Throttled(), 0, "the server refused requests with 429")
	t.Logf("cp -r of 40 files under 15 requests/s: %v, %d answers were 429", took, srv.Throttled())
	e.Remount(true)
	e.Run("diff", "-r", src, e.Path("storm"))
}

// Invenio answers a failed content upload with 200 and "errors", having
// dropped the file: the client starts the upload over.
func TestUploadFailureWith200(t *testing.T) {
	repo, srv := connect(t, inveniotest.Options{}, invenio.Config{})
	ctx := context.Background()
	rec, err := repo.Mkdir(ctx, "root", "r")
	require.NoError(t, err)
	srv.Fail(http.MethodPut, "/api/records/", 1, http.StatusOK, "")
	n, err := repo.Insert(ctx, rec.ID, "a.txt", remote.Content{ReaderAt: strings.NewReader("hello"), Size: 5})
	require.NoError(t, err)
	require.Equal(t, 2, srv.RequestsMatching(func(k string) bool {
		return strings.HasPrefix(k, "POST /api/records/") && strings.HasSuffix(k, "/draft/files")
	}))
	rc, err := repo.Open(ctx, n.ID, "a.txt", 0, -1)
	require.NoError(t, err)
	b, _ := io.ReadAll(rc)
	rc.Close()
	require.Equal(t, "hello", string(b))

	// Failing every time ends in an error, with no pending file left.
	srv.Fail(http.MethodPut, "/api/records/", 3, http.StatusOK, "")
	_, err = repo.Insert(ctx, rec.ID, "b.txt", remote.Content{ReaderAt: strings.NewReader("x"), Size: 1})
	require.ErrorContains(t, err, "File upload transfer failed")
	kids, err := repo.List(ctx, rec.ID)
	require.NoError(t, err)
	require.Len(t, kids, 1)
}

// A signed storage URL that expired before it was used is asked for again.
func TestExpiredStorageURL(t *testing.T) {
	repo, srv := connect(t, inveniotest.Options{S3: true}, invenio.Config{})
	ctx := context.Background()
	rec, err := repo.Mkdir(ctx, "root", "r")
	require.NoError(t, err)
	data := remotetestBytes(3 << 20)
	n, err := repo.Insert(ctx, rec.ID, "x.bin", remote.Content{ReaderAt: bytesReader(data), Size: int64(len(data))})
	require.NoError(t, err)
	srv.ExpireNext(1)
	rc, err := repo.Open(ctx, n.ID, "x.bin", 1<<20, 4096)
	require.NoError(t, err)
	b, _ := io.ReadAll(rc)
	rc.Close()
	require.Equal(t, data[1<<20:1<<20+4096], b)
	require.Equal(t, 2, srv.Requests("storage GET /blob/"), "one refused, one served")
	require.Empty(t, srv.TokenLeaks())
}

func TestTokenRejected(t *testing.T) {
	_, url := inveniotest.Start(t, inveniotest.Options{})
	_, err := invenio.New(context.Background(), invenio.Config{BaseURL: url, Token: "bad-token-123"})
	require.ErrorIs(t, err, remote.ErrPermission)
	require.ErrorContains(t, err, "rejected the token")
	require.NotContains(t, err.Error(), "bad-token-123", "the token is not repeated")
}

// A record rename changes the draft's title with If-Match; a stale token is
// a conflict.
func TestRecordRenameAndConflict(t *testing.T) {
	repo, _ := connect(t, inveniotest.Options{}, invenio.Config{})
	ctx := context.Background()
	rec, err := repo.Mkdir(ctx, "root", "Draft title")
	require.NoError(t, err)
	r2, err := repo.Rename(ctx, rec.ID, rec.Token, "root", "Better title")
	require.NoError(t, err)
	require.Equal(t, "Better title", recordNamed(t, repo, "Better title").Name)
	_, err = repo.Rename(ctx, rec.ID, rec.Token, "root", "Stale")
	require.ErrorIs(t, err, remote.ErrConflict)
	require.ErrorIs(t, repo.Delete(ctx, rec.ID, rec.Token), remote.ErrConflict)
	require.NoError(t, repo.Delete(ctx, rec.ID, r2.Token), "an empty draft can be discarded")
	kids, err := repo.List(ctx, "root")
	require.NoError(t, err)
	require.Empty(t, kids)
}

// Published records are never deleted from the mount.
func TestPublishedRecordIsNotDeleted(t *testing.T) {
	repo, _ := connect(t, inveniotest.Options{}, invenio.Config{})
	ctx := context.Background()
	rec, err := repo.Mkdir(ctx, "root", "Kept")
	require.NoError(t, err)
	n, err := repo.Insert(ctx, rec.ID, "a.txt", remote.Content{ReaderAt: strings.NewReader("a"), Size: 1})
	require.NoError(t, err)
	_, err = repo.Publish(ctx, rec.ID)
	require.NoError(t, err)
	require.NoError(t, repo.Delete(ctx, n.ID, n.Token), "removing a file goes to a new-version draft")
	require.ErrorIs(t, repo.Delete(ctx, rec.ID, ""), remote.ErrPermission)
	kids, err := repo.List(ctx, rec.ID)
	require.NoError(t, err)
	require.Empty(t, kids, "the draft shows the removal")
	plan, err := repo.PublishPlan(ctx, rec.ID)
	require.NoError(t, err)
	require.Equal(t, []string{"a.txt"}, plan.Removed)
}

func remotetestBytes(n int) []byte { return remotetest.Bytes(n) }

func bytesReader(b []byte) io.ReaderAt { return bytes.NewReader(b) }
