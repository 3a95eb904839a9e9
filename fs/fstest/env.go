// Package fstest runs dmsfs's filesystem behaviour tests on a real FUSE
// mount over any Repository, with real cp, rsync, diff and ls. Each backend
// runs it (see Run); without FUSE the tests skip, or fail when CI=true.
package fstest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/stretchr/testify/require"

	"github.com/dmsfs/dmsfs/cache"
	dfs "github.com/dmsfs/dmsfs/fs"
	"github.com/dmsfs/dmsfs/fs/core/reftest"
	"github.com/dmsfs/dmsfs/remote"
)

// Env is a mounted filesystem under test.
type Env struct {
	T        testing.TB
	Repo     remote.Repository
	Mnt      string
	CacheDir string
	Opts     dfs.Options
	FS       *dfs.FS
	// AllowOther mounts for every user (allow_other, default_permissions).
	AllowOther bool

	log   syncBuffer
	spool *cache.Spool
	srv   *fuse.Server
}

// syncBuffer is a bytes.Buffer safe for concurrent log writes.
type syncBuffer struct {
	mu sync.Mutex
	bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.Buffer.Write(p)
}

// RequireFUSE skips the test where FUSE cannot be used, and fails it
// instead when CI=true.
func RequireFUSE(t testing.TB) {
	t.Helper()
	why := ""
	if _, err := os.Stat("/dev/fuse"); err != nil {
		why = "no /dev/fuse"
	} else if os.Geteuid() != 0 {
		if _, err := exec.LookPath("fusermount3"); err != nil {
			why = "not root and no fusermount3"
		}
	}
	if why == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("FUSE is needed and missing on CI: %s", why)
	}
	t.Skipf("FUSE unavailable: %s", why)
}

// RequireTools skips the test where a program it runs is missing, or
// fails it when CI=true (.ci/run installs them).
func RequireTools(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is needed on CI", tool)
			}
			t.Skipf("no %s", tool)
		}
	}
}

// Mount mounts repo with opts on a fresh mount point and cache directory.
func Mount(t testing.TB, repo remote.Repository, opts dfs.Options) *Env {
	t.Helper()
	return MountIn(t, repo, opts, t.TempDir())
}

// MountShared mounts for every user (allow_other), at a mount point
// other users can reach.
func MountShared(t testing.TB, repo remote.Repository, opts dfs.Options) *Env {
	t.Helper()
	RequireFUSE(t)
	mnt := t.TempDir()
	for d := filepath.Dir(mnt); d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		require.NoError(t, os.Chmod(d, 0o755)) // t.TempDir's are 0700
	}
	e := &Env{T: t, Repo: repo, Mnt: mnt, CacheDir: t.TempDir(), Opts: opts, AllowOther: true}
	e.mount()
	t.Cleanup(e.Unmount)
	return e
}

// MountIn mounts with the cache (spool, journal) in cacheDir.
func MountIn(t testing.TB, repo remote.Repository, opts dfs.Options, cacheDir string) *Env {
	t.Helper()
	RequireFUSE(t)
	e := &Env{T: t, Repo: repo, Mnt: t.TempDir(), CacheDir: cacheDir, Opts: opts}
	e.mount()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("dmsfs log:\n%s", e.LogText())
		}
		e.Unmount()
	})
	return e
}

func (e *Env) mount() {
	t := e.T
	t.Helper()
	var err error
	e.spool, err = cache.OpenSpool(e.CacheDir)
	require.NoError(t, err)
	opts := e.Opts
	opts.Logger = slog.New(slog.NewTextHandler(&e.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.FS, err = dfs.New(context.Background(), e.Repo, e.spool, opts)
	require.NoError(t, err)
	e.srv, err = e.FS.Mount(e.Mnt, e.AllowOther)
	if err != nil && os.Getenv("CI") != "true" {
		t.Skipf("cannot mount: %v", err)
	}
	require.NoError(t, err)
	require.NoError(t, e.srv.WaitMount())
}

// LogText is what dmsfs logged so far.
func (e *Env) LogText() string {
	e.log.mu.Lock()
	defer e.log.mu.Unlock()
	return e.log.String()
}

// Settle waits until every file the test closed was saved and the upload
// queue is empty (see core.FS.Settle): what the repository then holds is
// what the mount promised.
func (e *Env) Settle() {
	e.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	require.NoError(e.T, e.FS.Settle(ctx))
}

// Unmount uploads what is pending and unmounts; calling it twice is fine.
func (e *Env) Unmount() {
	if e.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	require.NoError(e.T, e.FS.Sync(ctx, nil))
	e.unmountNoSync()
}

func (e *Env) unmountNoSync() {
	for i := 0; ; i++ {
		err := e.srv.Unmount()
		if err == nil {
			break
		}
		if i == 50 {
			e.T.Fatalf("unmount %s: %v", e.Mnt, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.FS.Close()
	e.spool.Close()
	e.srv = nil
}

// Restart unmounts without waiting for the upload queue (as a crash
// leaves it, in the spool) and mounts again with the same cache
// directory, whose mount replays it.
func (e *Env) Restart() {
	e.unmountNoSync()
	e.mount()
}

// Remount unmounts and mounts again with the same cache directory, or with
// a new one if freshCache is set.
func (e *Env) Remount(freshCache bool) {
	e.Unmount()
	if freshCache {
		e.CacheDir = e.T.TempDir()
	}
	e.mount()
}

// Path is a path inside the mount.
func (e *Env) Path(rel string) string { return filepath.Join(e.Mnt, rel) }

// Names lists a directory of the mount (readdir), sorted; nil if empty.
func (e *Env) Names(rel string) []string {
	e.T.Helper()
	entries, err := os.ReadDir(e.Path(rel))
	require.NoError(e.T, err, rel)
	var out []string
	for _, en := range entries {
		out = append(out, en.Name())
	}
	sort.Strings(out)
	return out
}

// Run runs a command and returns its combined output, failing on error.
func (e *Env) Run(name string, args ...string) string {
	e.T.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	require.NoError(e.T, err, "%s %s: %s", name, strings.Join(args, " "), out)
	return string(out)
}

// Node finds a node through the Repository API (not the mount) by its
// repository path of names separated by "/".
func (e *Env) Node(path string) (remote.Node, error) {
	return reftest.LookupRepo(context.Background(), e.Repo, path)
}

// MustNode is Node failing the test on error.
func (e *Env) MustNode(path string) remote.Node {
	e.T.Helper()
	n, err := e.Node(path)
	require.NoError(e.T, err)
	return n
}

// Content reads a document's only file through the Repository API.
func (e *Env) Content(n remote.Node, file string) []byte {
	e.T.Helper()
	if file == "" {
		require.Len(e.T, n.Files, 1)
		file = n.Files[0].Name
	}
	rc, err := e.Repo.Open(context.Background(), n.ID, file, 0, -1)
	require.NoError(e.T, err)
	defer rc.Close()
	b, err := io.ReadAll(rc)
	require.NoError(e.T, err)
	return b
}

// VersionCount is how many versions a document has.
func (e *Env) VersionCount(n remote.Node) int {
	e.T.Helper()
	vs, err := e.Repo.Versions(context.Background(), n.ID)
	require.NoError(e.T, err)
	return len(vs)
}

// RequireVersions checks how many versions a document has. Where versions
// are made by publishing (Invenio), the filesystem never publishes, so the
// history is the current state alone whatever was saved.
func (e *Env) RequireVersions(n remote.Node, want int, msgAndArgs ...any) {
	e.T.Helper()
	if e.Repo.Capabilities().VersionsOnPublish {
		want = 1
	}
	require.Equal(e.T, want, e.VersionCount(n), msgAndArgs...)
}

// InFolder makes a folder named name at the root of repo and returns repo
// seen from it: its Root is that folder. Repositories whose root holds no
// documents (Invenio's root lists records) run the suite this way, like a
// mount of a subtree.
func InFolder(t *testing.T, repo remote.Repository, name string) remote.Repository {
	t.Helper()
	ctx := context.Background()
	root, err := repo.Root(ctx)
	require.NoError(t, err)
	base, err := repo.Mkdir(ctx, root.ID, name)
	require.NoError(t, err)
	return AtFolder(repo, base.ID)
}

// AtFolder returns repo seen from the folder id: its Root is that folder.
// It forwards the optional interfaces; remote.As finds those repo has.
func AtFolder(repo remote.Repository, id remote.ID) remote.Repository {
	return &inFolder{Repository: repo, base: id}
}

type inFolder struct {
	remote.Repository
	base remote.ID
}

var (
	_ remote.Wrapper    = (*inFolder)(nil)
	_ remote.Fields     = (*inFolder)(nil)
	_ remote.FieldNamer = (*inFolder)(nil)
	_ remote.Drafts     = (*inFolder)(nil)
	_ remote.Changes    = (*inFolder)(nil)
	_ remote.Publisher  = (*inFolder)(nil)
)

func (r *inFolder) PublishPlan(ctx context.Context, id remote.ID) (remote.PublishPlan, error) {
	return r.Repository.(remote.Publisher).PublishPlan(ctx, id)
}

func (r *inFolder) Publish(ctx context.Context, id remote.ID) (remote.PublishPlan, error) {
	return r.Repository.(remote.Publisher).Publish(ctx, id)
}

func (r *inFolder) Unwrap() remote.Repository { return r.Repository }

func (r *inFolder) Fields(ctx context.Context, id remote.ID) (map[string]string, error) {
	return r.Repository.(remote.Fields).Fields(ctx, id)
}

func (r *inFolder) SetField(ctx context.Context, id remote.ID, token, name string, value *string) (remote.Node, error) {
	return r.Repository.(remote.Fields).SetField(ctx, id, token, name, value)
}

func (r *inFolder) FieldNames(ctx context.Context, id remote.ID) ([]string, error) {
	return r.Repository.(remote.FieldNamer).FieldNames(ctx, id)
}

func (r *inFolder) Editable(ctx context.Context, id remote.ID) (bool, error) {
	return r.Repository.(remote.Drafts).Editable(ctx, id)
}

func (r *inFolder) Changes(ctx context.Context, cursor string, known []remote.ID) (remote.ChangeSet, error) {
	return r.Repository.(remote.Changes).Changes(ctx, cursor, known)
}

func (r *inFolder) Root(ctx context.Context) (remote.Node, error) {
	n, err := r.Repository.Stat(ctx, r.base)
	n.Parent = ""
	return n, err
}

// Tree lists every document of a folder below root through the Repository
// API, as path → node.
func (e *Env) Tree(root remote.Node) map[string]remote.Node {
	e.T.Helper()
	out := map[string]remote.Node{}
	var walk func(n remote.Node, prefix string)
	walk = func(n remote.Node, prefix string) {
		kids, err := e.Repo.List(context.Background(), n.ID)
		require.NoError(e.T, err)
		for _, k := range kids {
			p := prefix + k.Name
			if k.Kind == remote.KindFolder {
				walk(k, p+"/")
			} else {
				out[p] = k
			}
		}
	}
	walk(root, "")
	return out
}

// WriteFile writes a file with a pseudo-random content of size bytes.
func WriteFile(t testing.TB, path string, size int, seed uint64) []byte {
	t.Helper()
	b := make([]byte, size)
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	for i := 0; i+8 <= len(b); i += 8 {
		v := r.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, b, 0o644))
	return b
}

// IsErrno tells whether err is the errno want.
func IsErrno(err error, want error) bool { return errors.Is(err, want) }
