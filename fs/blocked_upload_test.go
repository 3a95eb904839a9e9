package fs_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	dfs "github.com/dmsfs/dmsfs/fs"
	"github.com/dmsfs/dmsfs/fs/fstest"
	"github.com/dmsfs/dmsfs/remote"
	"github.com/dmsfs/dmsfs/remote/remotetest"
)

// blockingRepo holds every upload of a file named "big.bin" until the test
// releases it, and says when one started.
type blockingRepo struct {
	remote.Repository
	started chan struct{}
	release chan struct{}
}

func (r *blockingRepo) block(name string) {
	if name == "big.bin" {
		r.started <- struct{}{}
		<-r.release
	}
}

func (r *blockingRepo) Insert(ctx context.Context, parent remote.ID, name string, c remote.Content) (remote.Node, error) {
	r.block(name)
	return r.Repository.Insert(ctx, parent, name, c)
}

func (r *blockingRepo) Replace(ctx context.Context, doc remote.ID, token, file string, c remote.Content) (remote.Node, error) {
	r.block(file)
	return r.Repository.Replace(ctx, doc, token, file, c)
}

// TestBlockedUploadFreezesNothing: while a file's upload is held by the
// repository, stat, ls -l and open+read of other files in the same folder
// and in other folders, and stat of the uploading file itself, complete
// (before, the file's lock was held across the upload and directory
// operations waited for it).
func TestBlockedUploadFreezesNothing(t *testing.T) {
	base := embeddedRepo(t)
	ctx := context.Background()
	root, err := base.Root(ctx)
	require.NoError(t, err)
	dir, err := base.Mkdir(ctx, root.ID, "work")
	require.NoError(t, err)
	other, err := base.Mkdir(ctx, root.ID, "other")
	require.NoError(t, err)
	for _, parent := range []remote.ID{dir.ID, other.ID} {
		_, err := base.Insert(ctx, parent, "small.txt", remotetest.Content([]byte("small")))
		require.NoError(t, err)
	}
	repo := &blockingRepo{Repository: base, started: make(chan struct{}), release: make(chan struct{})}
	e := fstest.Mount(t, repo, dfs.Options{})

	big := make([]byte, 8<<20)
	closed := make(chan error, 1)
	go func() { closed <- os.WriteFile(e.Path("work/big.bin"), big, 0o644) }()
	<-repo.started // the close is uploading now, held by the repository

	done := make(chan error, 1)
	go func() {
		done <- func() error {
			for _, p := range []string{"work/small.txt", "other/small.txt", "work/big.bin", "work", "other"} {
				if _, err := os.Stat(e.Path(p)); err != nil {
					return err
				}
			}
			if out, err := exec.Command("ls", "-l", e.Path("work"), e.Path("other")).CombinedOutput(); err != nil {
				return err
			} else if len(out) == 0 {
				return os.ErrNotExist
			}
			for _, p := range []string{"work/small.txt", "other/small.txt"} {
				b, err := os.ReadFile(e.Path(p))
				if err != nil {
					return err
				}
				if string(b) != "small" {
					return os.ErrInvalid
				}
			}
			return os.WriteFile(e.Path("other/new.txt"), []byte("new"), 0o644)
		}()
	}()
	select {
	case err := <-done:
		require.NoError(t, err, "the other operations work while the upload is held")
	case <-time.After(time.Minute):
		close(repo.release)
		t.Fatal("stat, ls -l or open+read waited for another file's upload")
	}
	select {
	case err := <-closed:
		t.Fatalf("the close returned (%v) before its upload was released", err)
	default:
	}
	close(repo.release)
	require.NoError(t, <-closed)
	e.Settle()
	n := e.MustNode("work/big.bin")
	require.Equal(t, int64(len(big)), n.Files[0].Size)
	b, err := os.ReadFile(filepath.Join(e.Mnt, "work", "big.bin"))
	require.NoError(t, err)
	require.Len(t, b, len(big))
}
