package core

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dmsfs/dmsfs/remote"
)

// Working offline (SEMANTICS.md, "Offline"). Every repository call goes
// through tracked. A call that fails with ErrUnavailable (the backend
// retried already) has the repository probed at once; if the probe fails
// too, the mount is offline: calls fail at once with ErrUnavailable
// instead of waiting for timeouts, listings are served from the last known
// state whatever their age, saves are kept in the spool and queued, and
// reads of content the mount holds work. A probe every probeInterval sees
// the repository back; then the queue retries at once.

// probeInterval is how often an offline mount asks whether the repository
// is back, and probeTimeout how long one probe may take.
const (
	probeInterval = 2 * time.Second
	probeTimeout  = 5 * time.Second
)

// availability is whether the repository answers. Fields are guarded by
// mu (a leaf lock) but the counters.
type availability struct {
	mu      sync.Mutex
	since   time.Time // offline since; zero: online
	probing bool
	// misses counts reads that found the repository unreachable and the
	// content not held here.
	misses atomic.Uint64
}

// Offline tells since when the repository has been unreachable (zero:
// it is reachable).
func (f *FS) Offline() time.Time {
	f.avail.mu.Lock()
	defer f.avail.mu.Unlock()
	return f.avail.since
}

// check fails a call at once while offline.
func (f *FS) check() error {
	if since := f.Offline(); !since.IsZero() {
		return fmt.Errorf("%w: the repository is unreachable (offline since %s)", remote.ErrUnavailable, since.Format(time.RFC3339))
	}
	return nil
}

// note takes a call's outcome: an answer of any kind means online; an
// unreachable repository is probed.
func (f *FS) note(ctx context.Context, err error) {
	switch {
	case err == nil || !errors.Is(err, remote.ErrUnavailable):
		if err != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
			return // cut short: says nothing
		}
		f.online()
	default:
		go f.probe()
	}
}

// probe asks the repository whether it answers, once at a time, and goes
// offline when it does not.
func (f *FS) probe() {
	f.avail.mu.Lock()
	if f.avail.probing {
		f.avail.mu.Unlock()
		return
	}
	f.avail.probing = true
	f.avail.mu.Unlock()
	// A listing of the root: some repositories answer a Stat of it
	// without asking the server.
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	_, err := f.inner.List(ctx, f.root.id)
	cancel()
	f.avail.mu.Lock()
	f.avail.probing = false
	wasOffline := !f.avail.since.IsZero()
	if errors.Is(err, remote.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
		if !wasOffline {
			f.avail.since = f.now()
			f.log.Warn("the repository is unreachable: working offline (listings as last known, saves kept in the spool, uncached reads fail)", "err", err)
		}
		f.avail.mu.Unlock()
		return
	}
	f.avail.mu.Unlock()
	f.online()
}

// online ends offline work: the queue uploads what it kept at once.
func (f *FS) online() {
	f.avail.mu.Lock()
	since := f.avail.since
	f.avail.since = time.Time{}
	f.avail.mu.Unlock()
	if since.IsZero() {
		return
	}
	f.log.Info("the repository answers again: uploading what was kept", "offline_for", f.now().Sub(since).Round(time.Second), "pending", f.queue.Status().Files)
	f.queue.RetryNow()
}

// watchAvailability probes every probeInterval while offline, until stop.
func (f *FS) watchAvailability(stop <-chan struct{}) {
	t := time.NewTicker(probeInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			if !f.Offline().IsZero() {
				f.probe()
			}
		}
	}
}

// tracked is the repository as the core calls it: availability noted,
// calls failed at once while offline. The optional interfaces are looked
// up through it (remote.As) and go to the repository directly.
type tracked struct {
	remote.Repository
	fsys *FS
}

var _ remote.Wrapper = (*tracked)(nil)

func (t *tracked) Unwrap() remote.Repository { return t.Repository }

// edit notes a change of doc's content at its start, and returns what
// notes its end (see edits).
func (t *tracked) edit(doc remote.ID) func() {
	t.fsys.edits.changed(doc)
	return func() { t.fsys.edits.changed(doc) }
}

func call[T any](t *tracked, ctx context.Context, fn func() (T, error)) (T, error) {
	if err := t.fsys.check(); err != nil {
		var zero T
		return zero, err
	}
	v, err := fn()
	t.fsys.note(ctx, err)
	return v, err
}

func (t *tracked) Root(ctx context.Context) (remote.Node, error) {
	return call(t, ctx, func() (remote.Node, error) { return t.Repository.Root(ctx) })
}

func (t *tracked) Stat(ctx context.Context, id remote.ID) (remote.Node, error) {
	return call(t, ctx, func() (remote.Node, error) {
		return timed(t, func() (remote.Node, error) { return t.Repository.Stat(ctx, id) })
	})
}

func (t *tracked) List(ctx context.Context, folder remote.ID) ([]remote.Node, error) {
	return call(t, ctx, func() ([]remote.Node, error) {
		return timed(t, func() ([]remote.Node, error) { return t.Repository.List(ctx, folder) })
	})
}

// timed tells the block cache how long an answer took (it reads near
// repositories in blocks, far ones in streams), by the core's clock: a
// test clock that does not move times no answer, so a test's embedded
// repository, answering in microseconds, does not turn its reads near.
func timed[T any](t *tracked, fn func() (T, error)) (T, error) {
	start := t.fsys.now()
	v, err := fn()
	if err == nil {
		t.fsys.blocks.NoteAnswer(t.fsys.now().Sub(start))
	}
	return v, err
}

func (t *tracked) Open(ctx context.Context, doc remote.ID, file string, off, length int64) (io.ReadCloser, error) {
	rc, err := call(t, ctx, func() (io.ReadCloser, error) { return t.Repository.Open(ctx, doc, file, off, length) })
	if errors.Is(err, remote.ErrUnavailable) {
		t.fsys.avail.misses.Add(1)
	}
	return rc, err
}

func (t *tracked) OpenVersion(ctx context.Context, doc remote.ID, n int, file string, off, length int64) (io.ReadCloser, error) {
	rc, err := call(t, ctx, func() (io.ReadCloser, error) { return t.Repository.OpenVersion(ctx, doc, n, file, off, length) })
	if errors.Is(err, remote.ErrUnavailable) {
		t.fsys.avail.misses.Add(1)
	}
	return rc, err
}

func (t *tracked) Versions(ctx context.Context, doc remote.ID) ([]remote.Version, error) {
	return call(t, ctx, func() ([]remote.Version, error) { return t.Repository.Versions(ctx, doc) })
}

func (t *tracked) Mkdir(ctx context.Context, parent remote.ID, name string) (remote.Node, error) {
	return call(t, ctx, func() (remote.Node, error) { return t.Repository.Mkdir(ctx, parent, name) })
}

func (t *tracked) Insert(ctx context.Context, parent remote.ID, name string, c remote.Content) (remote.Node, error) {
	return call(t, ctx, func() (remote.Node, error) { return t.Repository.Insert(ctx, parent, name, c) })
}

func (t *tracked) Replace(ctx context.Context, doc remote.ID, token, file string, c remote.Content) (remote.Node, error) {
	defer t.edit(doc)()
	return call(t, ctx, func() (remote.Node, error) { return t.Repository.Replace(ctx, doc, token, file, c) })
}

func (t *tracked) Append(ctx context.Context, doc remote.ID, token, file string, c remote.Content) (remote.Node, error) {
	defer t.edit(doc)()
	return call(t, ctx, func() (remote.Node, error) { return t.Repository.Append(ctx, doc, token, file, c) })
}

func (t *tracked) DeleteFile(ctx context.Context, doc remote.ID, token, file string) (remote.Node, error) {
	defer t.edit(doc)()
	return call(t, ctx, func() (remote.Node, error) { return t.Repository.DeleteFile(ctx, doc, token, file) })
}

func (t *tracked) Rename(ctx context.Context, id remote.ID, token string, newParent remote.ID, newName string) (remote.Node, error) {
	return call(t, ctx, func() (remote.Node, error) { return t.Repository.Rename(ctx, id, token, newParent, newName) })
}

func (t *tracked) Delete(ctx context.Context, id remote.ID, token string) error {
	_, err := call(t, ctx, func() (struct{}, error) { return struct{}{}, t.Repository.Delete(ctx, id, token) })
	return err
}
