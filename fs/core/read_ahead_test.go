package core_test

import (
	"context"
	"fmt"
	"io"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dmsfs/dmsfs/fs/core"
	"github.com/dmsfs/dmsfs/remote"
	"github.com/dmsfs/dmsfs/remote/remotetest"
)

// openLog tells each document read from the repository.
type openLog struct {
	remote.Repository
	mu     sync.Mutex
	names  map[remote.ID]string
	opened chan string
}

func (o *openLog) Open(ctx context.Context, doc remote.ID, file string, off, length int64) (io.ReadCloser, error) {
	o.mu.Lock()
	name := o.names[doc]
	o.mu.Unlock()
	o.opened <- name
	return o.Repository.Open(ctx, doc, file, off, length)
}

// Reading a folder's file fetches the next small ones by name ahead,
// PrefetchFiles of them, and not the ones before it; a file added to the
// folder is among the next ones of a later read.
func TestReadingAFileFetchesTheNextOnesAhead(t *testing.T) {
	ctx := context.Background()
	repo := embeddedRepo(t)
	root, err := repo.Root(ctx)
	require.NoError(t, err)
	log := &openLog{Repository: repo, names: map[remote.ID]string{}, opened: make(chan string, 100)}
	for i := range 20 {
		name := fmt.Sprintf("f%02d", i)
		n, err := repo.Insert(ctx, root.ID, name, remotetest.Content([]byte(name)))
		require.NoError(t, err)
		log.names[n.ID] = name
	}
	_, err = repo.Mkdir(ctx, root.ID, "f05a folder")
	require.NoError(t, err)
	var clock sync.Mutex
	now := time.Unix(1e9, 0)
	fsys := newCore(t, log, core.Options{PrefetchFiles: 3, DirCacheTime: time.Minute, Now: func() time.Time {
		clock.Lock()
		defer clock.Unlock()
		return now
	}})

	read := func(name string) {
		n, err := fsys.Root().Lookup(ctx, name)
		require.NoError(t, err)
		h, _, err := n.(*core.File).Open(ctx, syscall.O_RDONLY)
		require.NoError(t, err)
		data, err := h.Read(ctx, make([]byte, 10), 0)
		require.NoError(t, err)
		require.Equal(t, name, string(data))
		require.NoError(t, h.Release(ctx))
	}
	// opens returns the next n documents read.
	opens := func(n int) []string {
		var got []string
		for range n {
			select {
			case name := <-log.opened:
				got = append(got, name)
			case <-time.After(time.Minute):
				t.Fatalf("only %v were read", got)
			}
		}
		sort.Strings(got)
		return got
	}

	read("f05")
	require.Equal(t, []string{"f05", "f06", "f07", "f08"}, opens(4), "f05, then the next three files (not the folder)")

	n, err := repo.Insert(ctx, root.ID, "f10a", remotetest.Content([]byte("f10a")))
	require.NoError(t, err)
	log.mu.Lock()
	log.names[n.ID] = "f10a"
	log.mu.Unlock()
	clock.Lock()
	now = now.Add(2 * time.Minute) // the listing expired: the next lookup lists again
	clock.Unlock()
	read("f10")
	require.Equal(t, []string{"f10", "f10a", "f11", "f12"}, opens(4))
}
