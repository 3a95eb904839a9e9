package axelor

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dmsfs/dmsfs/remote"
	"github.com/dmsfs/dmsfs/remote/axelor/axelortest"
	"github.com/dmsfs/dmsfs/remote/remotetest"
)

// batchServer is the test server behind a handler that holds uploads
// until `together` of them came (so that they end together) and counts
// the DMSFile saves.
type batchServer struct {
	saves    atomic.Int64
	searches atomic.Int64 // a lost answer's recovery looks
	mu       sync.Mutex
	arrived  int
	together int
	release  chan struct{}
}

func newBatchClient(t *testing.T, together int) (*Client, *batchServer) {
	t.Helper()
	srv, err := axelortest.New(t.TempDir(), axelortest.Options{Users: map[string]string{"jdoe": "test-only-password"}})
	require.NoError(t, err)
	b := &batchServer{together: together, release: make(chan struct{})}
	inner := srv.Handler()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/ws/files/upload":
			b.mu.Lock()
			b.arrived++
			if b.arrived == b.together {
				close(b.release)
			}
			b.mu.Unlock()
			<-b.release
		case r.URL.Path == restPath && (r.Method == http.MethodPut || r.Method == http.MethodPost):
			b.saves.Add(1)
		case r.URL.Path == restPath+"/search":
			b.searches.Add(1)
		}
		inner.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { hs.Close(); srv.Close() })
	c, err := New(context.Background(), Config{BaseURL: hs.URL, User: "jdoe", Password: "test-only-password"})
	require.NoError(t, err)
	c.docs.wait = time.Minute // only the end of the others' uploads sends
	return c, b
}

// insertAll inserts "f<i>.bin" into parents[i] concurrently, with
// 100+i random bytes.
func insertAll(c *Client, parents []remote.ID) ([]remote.Node, [][]byte, []error) {
	nodes, errs := make([]remote.Node, len(parents)), make([]error, len(parents))
	data := make([][]byte, len(parents))
	var wg sync.WaitGroup
	for i, p := range parents {
		data[i] = remotetest.Bytes(100 + i)
		wg.Go(func() {
			nodes[i], errs[i] = c.Insert(context.Background(), p, fmt.Sprintf("f%d.bin", i), remotetest.Content(data[i]))
		})
	}
	wg.Wait()
	return nodes, data, errs
}

// The creates of uploads that end together go as one save of a list.
func TestCreatesOfUploadsEndingTogetherShareOneSave(t *testing.T) {
	const n = 6
	c, b := newBatchClient(t, n)
	parents := make([]remote.ID, n)
	for i := range parents {
		parents[i] = RootID
	}
	nodes, data, errs := insertAll(c, parents)
	for i := range n {
		require.NoError(t, errs[i])
		require.Equal(t, fmt.Sprintf("f%d.bin", i), nodes[i].Name)
		require.Equal(t, int64(100+i), nodes[i].Files[0].Size, "each got its own row of the answer")
	}
	require.EqualValues(t, 1, b.saves.Load(), "one save for %d documents", n)
	require.Zero(t, b.searches.Load(), "the answer was understood: nothing looked for")
	kids, err := c.List(context.Background(), RootID)
	require.NoError(t, err)
	require.Len(t, kids, n)
	for _, k := range kids {
		rc, err := c.Open(context.Background(), k.ID, k.Files[0].Name, 0, -1)
		require.NoError(t, err)
		got, err := io.ReadAll(rc)
		rc.Close()
		require.NoError(t, err)
		var i int
		fmt.Sscanf(k.Name, "f%d.bin", &i)
		require.Equal(t, data[i], got, "%s holds its own bytes", k.Name)
	}
}

// A record the server refuses keeps the whole list out; each is then
// saved alone, and only the refused one fails.
func TestRefusedRecordFailsOnlyItsOwnCreate(t *testing.T) {
	const n = 4
	c, b := newBatchClient(t, 1) // the setup's upload goes at once
	doc, err := c.Insert(context.Background(), RootID, "a document", remotetest.Content([]byte("x")))
	require.NoError(t, err)
	b.mu.Lock()
	b.arrived, b.together, b.release = 0, n, make(chan struct{})
	b.mu.Unlock()
	b.saves.Store(0)

	parents := []remote.ID{RootID, doc.ID, RootID, RootID} // a document is no folder
	_, _, errs := insertAll(c, parents)
	for i, e := range errs {
		if parents[i] == doc.ID {
			require.ErrorIs(t, e, remote.ErrNotFolder)
			continue
		}
		require.NoError(t, e, "create %d", i)
	}
	// The refused list, each alone, and the save that discards the
	// refused one's MetaFile (§4.10).
	require.EqualValues(t, 1+n+1, b.saves.Load())
	kids, err := c.List(context.Background(), RootID)
	require.NoError(t, err)
	require.Len(t, kids, n) // "a document" and the three
}

// A create with nobody else uploading goes at once, whatever the wait.
func TestLoneCreateDoesNotWait(t *testing.T) {
	c, b := newBatchClient(t, 1)
	done := make(chan error, 1)
	go func() {
		_, err := c.Insert(context.Background(), RootID, "alone.txt", remotetest.Content([]byte("hi")))
		done <- err
	}()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("a lone create waited for company")
	}
	require.EqualValues(t, 1, b.saves.Load())
}
