package axelor_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	dfs "github.com/dmsfs/dmsfs/fs"
	"github.com/dmsfs/dmsfs/fs/fstest"
	"github.com/dmsfs/dmsfs/remote"
	"github.com/dmsfs/dmsfs/remote/axelor/axelortest"
	"github.com/dmsfs/dmsfs/remote/remotetest"
)

// holdStat passes requests to the test server and, once armed, notes
// them and holds the first search until an upload has arrived: a client
// that sends the two one after the other never gets past it (it gives
// up after a minute and says so).
type holdStat struct {
	h http.Handler

	mu       sync.Mutex // guards the fields below
	armed    bool
	searched bool
	uploaded chan struct{}
	seen     []string
	gaveUp   bool
}

// holdStatServer runs the test server behind a holdStat.
func holdStatServer(t *testing.T) (*holdStat, string) {
	t.Helper()
	srv, err := axelortest.New(t.TempDir(), axelortest.Options{Users: map[string]string{testUser: testPassword}})
	require.NoError(t, err)
	g := &holdStat{h: srv.Handler()}
	hs := httptest.NewServer(g)
	t.Cleanup(func() { hs.Close(); srv.Close() })
	return g, hs.URL
}

func (g *holdStat) arm() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.armed, g.searched, g.uploaded, g.seen, g.gaveUp = true, false, make(chan struct{}), nil, false
}

func (g *holdStat) requests() ([]string, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.seen, g.gaveUp
}

func (g *holdStat) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	var hold chan struct{}
	if g.armed {
		g.seen = append(g.seen, r.Method+" "+r.URL.Path)
		switch {
		case r.URL.Path == "/ws/files/upload" && r.Method == http.MethodPost:
			select {
			case <-g.uploaded:
			default:
				close(g.uploaded)
			}
		case strings.HasSuffix(r.URL.Path, "/search") && !g.searched:
			g.searched, hold = true, g.uploaded
		}
	}
	g.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-time.After(time.Minute):
			g.mu.Lock()
			g.gaveUp = true
			g.mu.Unlock()
		}
	}
	g.h.ServeHTTP(w, r)
}

// TestASaveIsThreeRoundTrips: replacing a document's content sends the
// version check (a search) and the upload at once, then the re-point,
// then the record that keeps the old content as a version; the
// re-point's answer describes the document, so no search follows it.
// Before: five round trips one after the other. A check that refuses
// discards the upload it did not wait for.
func TestASaveIsThreeRoundTrips(t *testing.T) {
	ctx := context.Background()
	g, url := holdStatServer(t)
	c := newClient(t, url)
	root, err := c.Root(ctx)
	require.NoError(t, err)
	n, err := c.Insert(ctx, root.ID, "a.txt", remotetest.Content([]byte("one")))
	require.NoError(t, err)

	g.arm()
	saved, err := c.Replace(ctx, n.ID, n.Token, "a.txt", remotetest.Content([]byte("two, longer")))
	require.NoError(t, err)
	seen, gaveUp := g.requests()
	require.False(t, gaveUp, "the upload went out while the version check was unanswered: %v", seen)
	rest := "/ws/rest/com.axelor.dms.db.DMSFile"
	require.ElementsMatch(t, []string{"POST " + rest + "/search", "POST /ws/files/upload"}, seen[:2], "%v", seen)
	require.Equal(t, []string{"POST " + rest + "/" + string(n.ID), "PUT " + rest}, seen[2:], "%v", seen)

	// What the answers said is what a stat says.
	stat, err := c.Stat(ctx, n.ID)
	require.NoError(t, err)
	require.Equal(t, stat.Token, saved.Token)
	require.Equal(t, stat.Files, saved.Files)
	require.Equal(t, stat.Parent, saved.Parent)
	require.Equal(t, stat.Name, saved.Name)
	rc, err := c.Open(ctx, n.ID, "a.txt", 0, -1)
	require.NoError(t, err)
	got, err := io.ReadAll(rc)
	rc.Close()
	require.NoError(t, err)
	require.Equal(t, "two, longer", string(got))
	vs, err := c.Versions(ctx, n.ID)
	require.NoError(t, err)
	require.Len(t, vs, 2, "the old content is a version: %v", vs)

	// A stale version: refused, the early upload discarded.
	g.arm()
	_, err = c.Replace(ctx, n.ID, n.Token, "a.txt", remotetest.Content([]byte("three")))
	require.ErrorIs(t, err, remote.ErrConflict)
	seen, _ = g.requests()
	require.Contains(t, seen, "POST "+rest+"/removeAll", "the upload is discarded: %v", seen)
	rc, err = c.Open(ctx, n.ID, "a.txt", 0, -1)
	require.NoError(t, err)
	got, err = io.ReadAll(rc)
	rc.Close()
	require.NoError(t, err)
	require.Equal(t, "two, longer", string(got))
}

// TestAQueuedNewFileIsTwoRoundTrips: with --write-back, the upload of a
// new file created on a cached listing sends its bytes while it lists
// the folder again to see whether another client made a document of the
// name meanwhile, then creates the document: two round trips, not three.
// When another client did, the staged bytes become that document's next
// version, and no second document of the name appears. (Without
// write-back the create itself asks the server, before there are bytes.)
func TestAQueuedNewFileIsTwoRoundTrips(t *testing.T) {
	fstest.RequireFUSE(t)
	ctx := context.Background()
	g, url := holdStatServer(t)
	c := newClient(t, url)
	e := fstest.Mount(t, c, dfs.Options{DirCacheTime: time.Hour, WriteBack: time.Hour, PollInterval: -1})
	require.Empty(t, e.Names(""))
	rest := "/ws/rest/com.axelor.dms.db.DMSFile"

	require.NoError(t, os.WriteFile(e.Path("new.txt"), []byte("mine"), 0o644))
	g.arm()
	e.Settle()
	seen, gaveUp := g.requests()
	require.False(t, gaveUp, "the bytes went out while the folder was listed: %v", seen)
	require.Len(t, seen, 3, "%v", seen)
	require.ElementsMatch(t, []string{"POST " + rest + "/search", "POST /ws/files/upload"}, seen[:2], "%v", seen)
	require.Equal(t, "PUT "+rest, seen[2])
	require.Equal(t, "mine", string(e.Content(e.MustNode("new.txt"), "new.txt")))

	// Another client makes a document of the next file's name after this
	// mount listed the folder: the staged bytes go to it as a version.
	other := newClient(t, url)
	root, err := other.Root(ctx)
	require.NoError(t, err)
	theirs, err := other.Insert(ctx, root.ID, "both.txt", remotetest.Content([]byte("theirs")))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(e.Path("both.txt"), []byte("mine, later"), 0o644))
	g.arm()
	e.Settle()
	seen, gaveUp = g.requests()
	require.False(t, gaveUp, "%v", seen)
	require.Equal(t, 1, count(seen, "POST /ws/files/upload"), "the staged bytes were used: %v", seen)
	require.NotContains(t, seen, "POST "+rest+"/removeAll", "the staged bytes were used: %v", seen)
	kids, err := other.List(ctx, root.ID)
	require.NoError(t, err)
	var names []string
	for _, k := range kids {
		names = append(names, k.Name)
	}
	require.ElementsMatch(t, []string{"new.txt", "both.txt"}, names)
	require.Equal(t, "mine, later", string(e.Content(theirs, "both.txt")))
	e.RequireVersions(theirs, 2)
}

func count(xs []string, x string) int {
	n := 0
	for _, y := range xs {
		if y == x {
			n++
		}
	}
	return n
}
