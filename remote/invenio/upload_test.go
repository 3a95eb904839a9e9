package invenio_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	dfs "github.com/dmsfs/dmsfs/fs"
	"github.com/dmsfs/dmsfs/fs/fstest"
	"github.com/dmsfs/dmsfs/remote"
	"github.com/dmsfs/dmsfs/remote/invenio"
	"github.com/dmsfs/dmsfs/remote/invenio/inveniotest"
)

// TestEmptyFileIsSentWithContentLength: a 0-byte upload whose content is
// a file (as the spool gives it) goes out with Content-Length: 0, not
// chunked; the test server, like RadosGW, refuses a content PUT without a
// length with 411.
func TestEmptyFileIsSentWithContentLength(t *testing.T) {
	repo, _ := connect(t, inveniotest.Options{}, invenio.Config{})
	ctx := context.Background()
	rec, err := repo.Mkdir(ctx, "root", "empty")
	require.NoError(t, err)
	n, err := repo.Insert(ctx, rec.ID, "empty.txt", remote.Content{ReaderAt: bytes.NewReader(nil), Size: 0})
	require.NoError(t, err)
	require.Equal(t, "md5:d41d8cd98f00b204e9800998ecf8427e", n.Token)
}

// TestMultipartChecksumComesLater: on local storage (v13+) a multipart
// commit answers with a null checksum, and the md5 appears once the
// server's background task ran; the upload waits for it. When the task
// does not run, the upload reads the file back and checks it itself.
func TestMultipartChecksumComesLater(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	sum := md5.Sum(data)
	want := "md5:" + hex.EncodeToString(sum[:])
	for _, c := range []struct {
		name  string
		delay time.Duration
		reads int // downloads of the file's content
	}{
		{"TaskRuns", 300 * time.Millisecond, 0},
		{"TaskDown", -1, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			repo, srv := connect(t, inveniotest.Options{ChecksumDelay: c.delay},
				invenio.Config{MultipartAbove: 256 << 10, PartSize: 256 << 10, ChecksumWait: 500 * time.Millisecond})
			ctx := context.Background()
			rec, err := repo.Mkdir(ctx, "root", "big")
			require.NoError(t, err)
			n, err := repo.Insert(ctx, rec.ID, "big.bin", remote.Content{ReaderAt: bytes.NewReader(data), Size: int64(len(data))})
			require.NoError(t, err)
			require.Equal(t, want, n.Token)
			reads := srv.RequestsMatching(func(k string) bool {
				return strings.HasPrefix(k, "GET /api/records/") && strings.HasSuffix(k, "/content")
			})
			require.Equal(t, c.reads, reads, "reads of the content to check it")
		})
	}
}

// TestCopyEmptyAndLargeFiles: cp of a 0-byte and of a 100 MiB file into a
// record of the test server with local storage and v13 multipart
// transfers; md5sum through a fresh mount (another cache directory) reads
// both back intact.
func TestCopyEmptyAndLargeFiles(t *testing.T) {
	repo, _ := connect(t, inveniotest.Options{Range: true}, invenio.Config{})
	src := t.TempDir()
	big := fstest.WriteFile(t, filepath.Join(src, "big.bin"), 100<<20, 3)
	require.NoError(t, os.WriteFile(filepath.Join(src, "empty.txt"), nil, 0o644))
	e := fstest.Mount(t, repo, dfs.Options{})
	require.NoError(t, os.Mkdir(e.Path("copies"), 0o755))
	out, err := exec.Command("cp", filepath.Join(src, "empty.txt"), filepath.Join(src, "big.bin"), e.Path("copies")).CombinedOutput()
	require.NoError(t, err, "%s", out)

	fresh := fstest.MountIn(t, repo, dfs.Options{}, t.TempDir())
	out, err = exec.Command("md5sum", fresh.Path("copies/empty.txt"), fresh.Path("copies/big.bin")).CombinedOutput()
	require.NoError(t, err, "%s", out)
	sums := strings.Fields(string(out))
	bigSum := md5.Sum(big)
	require.Equal(t, "d41d8cd98f00b204e9800998ecf8427e", sums[0])
	require.Equal(t, hex.EncodeToString(bigSum[:]), sums[2])
}

// TestTwoMountsSaveOnePublishedFile: two mounts (two clients) have a
// published record's file open; the second saves it, which makes the
// record's new-version draft, then the first saves it. The first save must
// not overwrite the second: both contents stay, the first as a conflict
// copy, with a log line. Before, the first client checked its token
// against the published files and wrote into the other client's draft.
func TestTwoMountsSaveOnePublishedFile(t *testing.T) {
	srv, url := inveniotest.Start(t, inveniotest.Options{Range: true})
	client := func() *invenio.Repo {
		r, err := invenio.New(context.Background(), invenio.Config{BaseURL: url, Token: inveniotest.TestToken, CacheDir: t.TempDir()})
		require.NoError(t, err)
		t.Cleanup(func() { r.Close() })
		return r
	}
	_ = srv
	ctx := context.Background()
	setup := client()
	rec, err := setup.Mkdir(ctx, "root", "Notes")
	require.NoError(t, err)
	_, err = setup.Insert(ctx, rec.ID, "README.txt", remote.Content{ReaderAt: strings.NewReader("v1\n"), Size: 3})
	require.NoError(t, err)
	_, err = setup.Publish(ctx, rec.ID)
	require.NoError(t, err)

	one := fstest.Mount(t, client(), dfs.Options{})
	two := fstest.Mount(t, client(), dfs.Options{})
	for _, e := range []*fstest.Env{one, two} {
		got, err := os.ReadFile(e.Path("Notes/README.txt"))
		require.NoError(t, err)
		require.Equal(t, "v1\n", string(got))
	}
	f1, err := os.OpenFile(one.Path("Notes/README.txt"), os.O_RDWR, 0)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(two.Path("Notes/README.txt"), []byte("two's change\n"), 0o644))
	_, err = f1.WriteAt([]byte("v1 and one's change\n"), 0)
	require.NoError(t, err)
	require.NoError(t, f1.Close())
	one.Settle()

	check := client()
	r := recordNamed(t, check, "Notes")
	kids, err := check.List(ctx, r.ID)
	require.NoError(t, err)
	contents := map[string]string{}
	for _, k := range kids {
		rc, err := check.Open(ctx, k.ID, k.Files[0].Name, 0, -1)
		require.NoError(t, err)
		var b bytes.Buffer
		_, err = b.ReadFrom(rc)
		rc.Close()
		require.NoError(t, err)
		contents[k.Name] = b.String()
	}
	require.Equal(t, "two's change\n", contents["README.txt"], "the second mount's save stays")
	delete(contents, "README.txt")
	require.Len(t, contents, 1, "and the first's is a conflict copy: %v", contents)
	for name, c := range contents {
		require.Contains(t, name, "(conflict ")
		require.Equal(t, "v1 and one's change\n", c)
	}
	require.Contains(t, one.LogText(), "conflict copy")
}

// beforeFirst runs hook once, before the first request that match
// accepts is sent.
type beforeFirst struct {
	match func(*http.Request) bool
	hook  func()
	once  sync.Once
}

func (b *beforeFirst) RoundTrip(req *http.Request) (*http.Response, error) {
	if b.match(req) {
		b.once.Do(b.hook)
	}
	return http.DefaultTransport.RoundTrip(req)
}

// TestFileDeletedDuringRecordChange: deleting a file moves the draft's
// revision_id on (the test server does as upstream's delete_file), so
// another client's deletion between our read of the draft and our write
// makes the write's If-Match fail with 412 (for the discard, of a file it
// added a moment before: the draft is empty again). A rename (retitle) reads the
// draft again and sets the title on it; a discard of an empty draft reads
// it again and discards it if it is still empty. Before, both failed as
// conflicts.
func TestFileDeletedDuringRecordChange(t *testing.T) {
	for _, op := range []string{"rename", "discard"} {
		t.Run(op, func(t *testing.T) {
			srv, url := inveniotest.Start(t, inveniotest.Options{})
			_ = srv
			ctx := context.Background()
			other, err := invenio.New(ctx, invenio.Config{BaseURL: url, Token: inveniotest.TestToken, CacheDir: t.TempDir()})
			require.NoError(t, err)
			t.Cleanup(func() { other.Close() })
			rec, err := other.Mkdir(ctx, "root", "R")
			require.NoError(t, err)
			keep, err := other.Insert(ctx, rec.ID, "keep.txt", remote.Content{ReaderAt: strings.NewReader("k"), Size: 1})
			require.NoError(t, err)
			gone, err := other.Insert(ctx, rec.ID, "gone.txt", remote.Content{ReaderAt: strings.NewReader("g"), Size: 1})
			require.NoError(t, err)
			if op == "discard" {
				// An empty draft; the other client's file comes and goes
				// while it is discarded.
				require.NoError(t, other.Delete(ctx, keep.ID, keep.Token))
				require.NoError(t, other.Delete(ctx, gone.ID, gone.Token))
			}
			method := map[string]string{"rename": http.MethodPut, "discard": http.MethodDelete}[op]
			hooked := false
			tr := &beforeFirst{
				match: func(req *http.Request) bool {
					return req.Method == method && strings.HasSuffix(req.URL.Path, "/draft")
				},
				hook: func() {
					hooked = true
					if op == "discard" {
						gone, err = other.Insert(ctx, rec.ID, "brief.txt", remote.Content{ReaderAt: strings.NewReader("b"), Size: 1})
						require.NoError(t, err)
					}
					require.NoError(t, other.Delete(ctx, gone.ID, gone.Token))
				},
			}
			repo, err := invenio.New(ctx, invenio.Config{BaseURL: url, Token: inveniotest.TestToken, CacheDir: t.TempDir(), Transport: tr})
			require.NoError(t, err)
			t.Cleanup(func() { repo.Close() })
			r := recordNamed(t, repo, "R")
			switch op {
			case "rename":
				_, err = repo.Rename(ctx, r.ID, r.Token, "root", "R renamed")
				require.NoError(t, err)
				recordNamed(t, other, "R renamed")
			case "discard":
				require.NoError(t, repo.Delete(ctx, r.ID, r.Token))
				_, err = repo.Stat(ctx, r.ID)
				require.ErrorIs(t, err, remote.ErrNotFound, "the draft is discarded")
			}
			require.True(t, hooked, "the other client deleted its file in between")
		})
	}
}

// TestTouchOpensNoVersion: on a published record, a touch of a file (its
// mtime set, its bytes unchanged) is kept locally and sent nowhere: a
// metadata change of a published file would open a new version.
func TestTouchOpensNoVersion(t *testing.T) {
	repo, _ := connect(t, inveniotest.Options{}, invenio.Config{})
	ctx := context.Background()
	e := fstest.Mount(t, repo, dfs.Options{})
	require.NoError(t, os.Mkdir(e.Path("Notes"), 0o755))
	require.NoError(t, os.WriteFile(e.Path("Notes/a.txt"), []byte("a"), 0o644))
	rec := recordNamed(t, repo, "Notes")
	_, err := repo.Publish(ctx, rec.ID)
	require.NoError(t, err)
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	require.NoError(t, os.Chtimes(e.Path("Notes/a.txt"), old, old))
	st, err := os.Stat(e.Path("Notes/a.txt"))
	require.NoError(t, err)
	require.True(t, st.ModTime().Equal(old), "the mount shows the mtime")
	plan, err := repo.PublishPlan(ctx, rec.ID)
	require.NoError(t, err)
	require.True(t, plan.NoDraft, "no new version was opened: %+v", plan)
}
