// Package pointintime shows a repository as it was at a time, read-only
// (dmsfs mount --at): each document at the version current then, from its
// version history; documents whose history starts later are absent.
// Folders are shown as they are now (no repository here keeps a history
// of folders), and documents deleted since are absent (their histories
// went with them).
package pointintime

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/dmsfs/dmsfs/remote"
)

// Repo is a repository seen at a time.
type Repo struct {
	inner remote.Repository
	at    time.Time

	mu sync.Mutex
	// versions are documents' histories by id, with the token they were
	// read at (a newer token may have added versions, none before at).
	versions map[remote.ID]history
}

type history struct {
	token string
	vs    []remote.Version
}

// Repo is no remote.Wrapper: the optional interfaces (fields, drafts,
// changes) are today's, and the past has none of them.
var _ remote.Repository = (*Repo)(nil)

// At shows r as it was at t. It needs the repository's version history.
func At(r remote.Repository, t time.Time) (*Repo, error) {
	if !r.Capabilities().Versions {
		return nil, fmt.Errorf("this repository keeps no versions, so it cannot be shown as it was: %w", remote.ErrUnsupported)
	}
	return &Repo{inner: r, at: t, versions: map[remote.ID]history{}}, nil
}

func (r *Repo) Capabilities() remote.Capabilities {
	c := r.inner.Capabilities()
	c.ReadOnly, c.ListsFields = true, false
	return c
}

// version is the version of doc current at r.at; false when the document
// did not exist yet.
func (r *Repo) version(ctx context.Context, n remote.Node) (remote.Version, bool, error) {
	r.mu.Lock()
	h, ok := r.versions[n.ID]
	r.mu.Unlock()
	if !ok || h.token != n.Token {
		vs, err := r.inner.Versions(ctx, n.ID)
		if err != nil {
			return remote.Version{}, false, err
		}
		h = history{token: n.Token, vs: vs}
		r.mu.Lock()
		r.versions[n.ID] = h
		r.mu.Unlock()
	}
	var cur remote.Version
	found := false
	for _, v := range h.vs {
		if !v.Time.After(r.at) {
			cur, found = v, true
		}
	}
	return cur, found, nil
}

// then is node n as it was, false when it did not exist.
func (r *Repo) then(ctx context.Context, n remote.Node) (remote.Node, bool, error) {
	if n.Kind != remote.KindDocument {
		return n, true, nil
	}
	v, ok, err := r.version(ctx, n)
	if err != nil || !ok {
		return remote.Node{}, false, err
	}
	n.Files = v.Files
	n.ModTime = v.Time
	n.Fields = nil
	if len(v.Files) == 1 {
		n.Name = v.Files[0].Name
	}
	return n, true, nil
}

func (r *Repo) Root(ctx context.Context) (remote.Node, error) { return r.inner.Root(ctx) }

func (r *Repo) Stat(ctx context.Context, id remote.ID) (remote.Node, error) {
	n, err := r.inner.Stat(ctx, id)
	if err != nil {
		return remote.Node{}, err
	}
	n, ok, err := r.then(ctx, n)
	if err == nil && !ok {
		err = fmt.Errorf("%s did not exist at %s: %w", id, r.at.Format(time.RFC3339), remote.ErrNotFound)
	}
	return n, err
}

func (r *Repo) List(ctx context.Context, folder remote.ID) ([]remote.Node, error) {
	kids, err := r.inner.List(ctx, folder)
	if err != nil {
		return nil, err
	}
	out := kids[:0]
	for _, k := range kids {
		n, ok, err := r.then(ctx, k)
		if err != nil {
			return nil, fmt.Errorf("history of %s: %w", k.Name, err)
		}
		if ok {
			out = append(out, n)
		}
	}
	return out, nil
}

func (r *Repo) Open(ctx context.Context, doc remote.ID, file string, off, length int64) (io.ReadCloser, error) {
	n, err := r.inner.Stat(ctx, doc)
	if err != nil {
		return nil, err
	}
	v, ok, err := r.version(ctx, n)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%s did not exist at %s: %w", doc, r.at.Format(time.RFC3339), remote.ErrNotFound)
	}
	return r.inner.OpenVersion(ctx, doc, v.N, file, off, length)
}

// Versions are those up to the time shown.
func (r *Repo) Versions(ctx context.Context, doc remote.ID) ([]remote.Version, error) {
	vs, err := r.inner.Versions(ctx, doc)
	if err != nil {
		return nil, err
	}
	var out []remote.Version
	for _, v := range vs {
		if !v.Time.After(r.at) {
			out = append(out, v)
		}
	}
	return out, nil
}

func (r *Repo) OpenVersion(ctx context.Context, doc remote.ID, n int, file string, off, length int64) (io.ReadCloser, error) {
	return r.inner.OpenVersion(ctx, doc, n, file, off, length)
}

var errPast = fmt.Errorf("the past is read-only: %w", remote.ErrReadOnly)

func (r *Repo) Mkdir(context.Context, remote.ID, string) (remote.Node, error) {
	return remote.Node{}, errPast
}

func (r *Repo) Insert(context.Context, remote.ID, string, remote.Content) (remote.Node, error) {
	return remote.Node{}, errPast
}

func (r *Repo) Replace(context.Context, remote.ID, string, string, remote.Content) (remote.Node, error) {
	return remote.Node{}, errPast
}

func (r *Repo) Append(context.Context, remote.ID, string, string, remote.Content) (remote.Node, error) {
	return remote.Node{}, errPast
}

func (r *Repo) DeleteFile(context.Context, remote.ID, string, string) (remote.Node, error) {
	return remote.Node{}, errPast
}

func (r *Repo) Rename(context.Context, remote.ID, string, remote.ID, string) (remote.Node, error) {
	return remote.Node{}, errPast
}

func (r *Repo) Delete(context.Context, remote.ID, string) error { return errPast }
