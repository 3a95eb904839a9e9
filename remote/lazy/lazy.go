// Package lazy is a repository that is opened when it can be: a mount
// started while the server cannot be reached works offline (from the
// last known tree) and opens the repository once the server answers.
package lazy

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/dmsfs/dmsfs/remote"
)

// retryEvery bounds how often opening is tried again.
const retryEvery = 2 * time.Second

// Repo opens its repository on first use after the server answers; until
// then every call fails with remote.ErrUnavailable, at once.
type Repo struct {
	open func(ctx context.Context) (remote.Repository, error)
	caps remote.Capabilities

	mu      sync.Mutex // guards inner, lastTry, lastErr
	inner   remote.Repository
	lastTry time.Time
	lastErr error
}

var (
	_ remote.Repository = (*Repo)(nil)
	_ remote.Wrapper    = (*Repo)(nil)
)

// New is a repository opened by open when it can be; caps are what it
// had when last opened.
func New(open func(ctx context.Context) (remote.Repository, error), caps remote.Capabilities, firstErr error) *Repo {
	return &Repo{open: open, caps: caps, lastTry: time.Now(), lastErr: firstErr}
}

// Unwrap is the repository once opened (nil before): the optional
// interfaces are found there.
func (r *Repo) Unwrap() remote.Repository {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.inner
}

func (r *Repo) get(ctx context.Context) (remote.Repository, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.inner != nil {
		return r.inner, nil
	}
	if time.Since(r.lastTry) < retryEvery {
		return nil, fmt.Errorf("%w: not reached yet: %v", remote.ErrUnavailable, r.lastErr)
	}
	r.lastTry = time.Now()
	inner, err := r.open(ctx)
	if err != nil {
		r.lastErr = err
		return nil, fmt.Errorf("%w: %v", remote.ErrUnavailable, err)
	}
	r.inner = inner
	return inner, nil
}

func (r *Repo) Capabilities() remote.Capabilities {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.inner != nil {
		return r.inner.Capabilities()
	}
	return r.caps
}

func (r *Repo) Root(ctx context.Context) (remote.Node, error) {
	in, err := r.get(ctx)
	if err != nil {
		return remote.Node{}, err
	}
	return in.Root(ctx)
}

func (r *Repo) Stat(ctx context.Context, id remote.ID) (remote.Node, error) {
	in, err := r.get(ctx)
	if err != nil {
		return remote.Node{}, err
	}
	return in.Stat(ctx, id)
}

func (r *Repo) List(ctx context.Context, folder remote.ID) ([]remote.Node, error) {
	in, err := r.get(ctx)
	if err != nil {
		return nil, err
	}
	return in.List(ctx, folder)
}

func (r *Repo) Open(ctx context.Context, doc remote.ID, file string, off, length int64) (io.ReadCloser, error) {
	in, err := r.get(ctx)
	if err != nil {
		return nil, err
	}
	return in.Open(ctx, doc, file, off, length)
}

func (r *Repo) Mkdir(ctx context.Context, parent remote.ID, name string) (remote.Node, error) {
	in, err := r.get(ctx)
	if err != nil {
		return remote.Node{}, err
	}
	return in.Mkdir(ctx, parent, name)
}

func (r *Repo) Insert(ctx context.Context, parent remote.ID, name string, c remote.Content) (remote.Node, error) {
	in, err := r.get(ctx)
	if err != nil {
		return remote.Node{}, err
	}
	return in.Insert(ctx, parent, name, c)
}

func (r *Repo) Replace(ctx context.Context, doc remote.ID, token, file string, c remote.Content) (remote.Node, error) {
	in, err := r.get(ctx)
	if err != nil {
		return remote.Node{}, err
	}
	return in.Replace(ctx, doc, token, file, c)
}

func (r *Repo) Append(ctx context.Context, doc remote.ID, token, file string, c remote.Content) (remote.Node, error) {
	in, err := r.get(ctx)
	if err != nil {
		return remote.Node{}, err
	}
	return in.Append(ctx, doc, token, file, c)
}

func (r *Repo) DeleteFile(ctx context.Context, doc remote.ID, token, file string) (remote.Node, error) {
	in, err := r.get(ctx)
	if err != nil {
		return remote.Node{}, err
	}
	return in.DeleteFile(ctx, doc, token, file)
}

func (r *Repo) Rename(ctx context.Context, id remote.ID, token string, newParent remote.ID, newName string) (remote.Node, error) {
	in, err := r.get(ctx)
	if err != nil {
		return remote.Node{}, err
	}
	return in.Rename(ctx, id, token, newParent, newName)
}

func (r *Repo) Delete(ctx context.Context, id remote.ID, token string) error {
	in, err := r.get(ctx)
	if err != nil {
		return err
	}
	return in.Delete(ctx, id, token)
}

func (r *Repo) Versions(ctx context.Context, doc remote.ID) ([]remote.Version, error) {
	in, err := r.get(ctx)
	if err != nil {
		return nil, err
	}
	return in.Versions(ctx, doc)
}

func (r *Repo) OpenVersion(ctx context.Context, doc remote.ID, n int, file string, off, length int64) (io.ReadCloser, error) {
	in, err := r.get(ctx)
	if err != nil {
		return nil, err
	}
	return in.OpenVersion(ctx, doc, n, file, off, length)
}
