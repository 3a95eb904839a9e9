package metrics

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"time"

	"github.com/dmsfs/dmsfs/remote"
)

// Repo wraps a repository: every call is counted by operation and
// outcome, timed, and logged at debug level (-v) with the object it
// concerns, how long it took and how it ended; content read and sent is
// counted in bytes. Secrets never reach it: calls carry ids, names and
// tokens, not credentials.
type Repo struct {
	inner   remote.Repository
	backend string
	m       *Metrics
	log     *slog.Logger
}

var (
	_ remote.Repository = (*Repo)(nil)
	_ remote.Wrapper    = (*Repo)(nil)
	_ remote.Fields     = (*Repo)(nil)
	_ remote.Drafts     = (*Repo)(nil)
	_ remote.FieldNamer = (*Repo)(nil)
	_ remote.Publisher  = (*Repo)(nil)
	_ remote.Changes    = (*Repo)(nil)
)

// Wrap instruments r as backend ("axelor", "invenio", "enaio", "embedded").
func (m *Metrics) Wrap(r remote.Repository, backend string, log *slog.Logger) *Repo {
	return &Repo{inner: r, backend: backend, m: m, log: log}
}

// Unwrap is the repository wrapped; remote.As looks for optional
// interfaces there.
func (r *Repo) Unwrap() remote.Repository { return r.inner }

// outcome names an error's kind for the outcome label.
func outcome(err error) string {
	kinds := []struct {
		err  error
		name string
	}{
		{remote.ErrNotFound, "not_found"}, {remote.ErrExist, "exists"}, {remote.ErrConflict, "conflict"},
		{remote.ErrUnavailable, "unavailable"}, {remote.ErrPermission, "permission"}, {remote.ErrRefused, "refused"},
		{remote.ErrUnsupported, "unsupported"}, {remote.ErrInvalidName, "invalid"}, {remote.ErrProtocol, "protocol"},
		{context.Canceled, "canceled"}, {context.DeadlineExceeded, "timeout"},
	}
	if err == nil {
		return "ok"
	}
	for _, k := range kinds {
		if errors.Is(err, k.err) {
			return k.name
		}
	}
	return "error"
}

// done records one call of op on what (an id, a name), started at start.
func (r *Repo) done(ctx context.Context, op, what string, start time.Time, err error) {
	d := time.Since(start)
	out := outcome(err)
	r.m.requests.WithLabelValues(r.backend, op, out).Inc()
	r.m.latency.WithLabelValues(r.backend, op).Observe(d.Seconds())
	if r.log.Enabled(ctx, slog.LevelDebug) {
		attrs := []any{"backend", r.backend, "op", op, "object", what, "duration", d.Round(time.Microsecond), "outcome", out}
		if err != nil {
			attrs = append(attrs, "err", err)
		}
		r.log.Debug("remote", attrs...)
	}
}

func (r *Repo) Capabilities() remote.Capabilities { return r.inner.Capabilities() }

func (r *Repo) Root(ctx context.Context) (remote.Node, error) {
	start := time.Now()
	n, err := r.inner.Root(ctx)
	r.done(ctx, "Root", "", start, err)
	return n, err
}

func (r *Repo) Stat(ctx context.Context, id remote.ID) (remote.Node, error) {
	start := time.Now()
	n, err := r.inner.Stat(ctx, id)
	r.done(ctx, "Stat", string(id), start, err)
	return n, err
}

func (r *Repo) List(ctx context.Context, folder remote.ID) ([]remote.Node, error) {
	start := time.Now()
	ns, err := r.inner.List(ctx, folder)
	r.done(ctx, "List", string(folder), start, err)
	return ns, err
}

func (r *Repo) Open(ctx context.Context, doc remote.ID, file string, off, length int64) (io.ReadCloser, error) {
	start := time.Now()
	rc, err := r.inner.Open(ctx, doc, file, off, length)
	r.done(ctx, "Open", string(doc)+"/"+file, start, err)
	if err != nil {
		return nil, err
	}
	return &countingReader{rc: rc, n: r.m.bytes.WithLabelValues(r.backend, "down")}, nil
}

func (r *Repo) Mkdir(ctx context.Context, parent remote.ID, name string) (remote.Node, error) {
	start := time.Now()
	n, err := r.inner.Mkdir(ctx, parent, name)
	r.done(ctx, "Mkdir", string(parent)+"/"+name, start, err)
	return n, err
}

func (r *Repo) Insert(ctx context.Context, parent remote.ID, name string, c remote.Content) (remote.Node, error) {
	start := time.Now()
	n, err := r.inner.Insert(ctx, parent, name, r.up(c))
	r.done(ctx, "Insert", string(parent)+"/"+name, start, err)
	return n, err
}

func (r *Repo) Replace(ctx context.Context, doc remote.ID, token, file string, c remote.Content) (remote.Node, error) {
	start := time.Now()
	n, err := r.inner.Replace(ctx, doc, token, file, r.up(c))
	r.done(ctx, "Replace", string(doc)+"/"+file, start, err)
	return n, err
}

func (r *Repo) Append(ctx context.Context, doc remote.ID, token, file string, c remote.Content) (remote.Node, error) {
	start := time.Now()
	n, err := r.inner.Append(ctx, doc, token, file, r.up(c))
	r.done(ctx, "Append", string(doc)+"/"+file, start, err)
	return n, err
}

func (r *Repo) DeleteFile(ctx context.Context, doc remote.ID, token, file string) (remote.Node, error) {
	start := time.Now()
	n, err := r.inner.DeleteFile(ctx, doc, token, file)
	r.done(ctx, "DeleteFile", string(doc)+"/"+file, start, err)
	return n, err
}

func (r *Repo) Rename(ctx context.Context, id remote.ID, token string, newParent remote.ID, newName string) (remote.Node, error) {
	start := time.Now()
	n, err := r.inner.Rename(ctx, id, token, newParent, newName)
	r.done(ctx, "Rename", string(id)+" → "+string(newParent)+"/"+newName, start, err)
	return n, err
}

func (r *Repo) Delete(ctx context.Context, id remote.ID, token string) error {
	start := time.Now()
	err := r.inner.Delete(ctx, id, token)
	r.done(ctx, "Delete", string(id), start, err)
	return err
}

func (r *Repo) Versions(ctx context.Context, doc remote.ID) ([]remote.Version, error) {
	start := time.Now()
	vs, err := r.inner.Versions(ctx, doc)
	r.done(ctx, "Versions", string(doc), start, err)
	return vs, err
}

func (r *Repo) OpenVersion(ctx context.Context, doc remote.ID, n int, file string, off, length int64) (io.ReadCloser, error) {
	start := time.Now()
	rc, err := r.inner.OpenVersion(ctx, doc, n, file, off, length)
	r.done(ctx, "OpenVersion", string(doc)+"/"+file, start, err)
	if err != nil {
		return nil, err
	}
	return &countingReader{rc: rc, n: r.m.bytes.WithLabelValues(r.backend, "down")}, nil
}

// The optional interfaces: remote.As finds them only where the wrapped
// repository has them, so these are called only then.

// must is the wrapped repository's optional interface T (looked up
// through wrappers of its own).
func must[T any](r remote.Repository) T {
	t, _ := remote.As[T](r)
	return t
}

func (r *Repo) Fields(ctx context.Context, id remote.ID) (map[string]string, error) {
	start := time.Now()
	fs, err := must[remote.Fields](r.inner).Fields(ctx, id)
	r.done(ctx, "Fields", string(id), start, err)
	return fs, err
}

func (r *Repo) SetField(ctx context.Context, id remote.ID, token, name string, value *string) (remote.Node, error) {
	start := time.Now()
	n, err := must[remote.Fields](r.inner).SetField(ctx, id, token, name, value)
	r.done(ctx, "SetField", string(id)+" "+name, start, err)
	return n, err
}

func (r *Repo) Editable(ctx context.Context, id remote.ID) (bool, error) {
	start := time.Now()
	ok, err := must[remote.Drafts](r.inner).Editable(ctx, id)
	r.done(ctx, "Editable", string(id), start, err)
	return ok, err
}

func (r *Repo) FieldNames(ctx context.Context, id remote.ID) ([]string, error) {
	start := time.Now()
	ns, err := must[remote.FieldNamer](r.inner).FieldNames(ctx, id)
	r.done(ctx, "FieldNames", string(id), start, err)
	return ns, err
}

func (r *Repo) PublishPlan(ctx context.Context, id remote.ID) (remote.PublishPlan, error) {
	start := time.Now()
	p, err := must[remote.Publisher](r.inner).PublishPlan(ctx, id)
	r.done(ctx, "PublishPlan", string(id), start, err)
	return p, err
}

func (r *Repo) Publish(ctx context.Context, id remote.ID) (remote.PublishPlan, error) {
	start := time.Now()
	p, err := must[remote.Publisher](r.inner).Publish(ctx, id)
	r.done(ctx, "Publish", string(id), start, err)
	return p, err
}

func (r *Repo) Stage(ctx context.Context, name string, c remote.Content) (remote.Staged, error) {
	start := time.Now()
	st, err := must[remote.Stager](r.inner).Stage(ctx, name, r.up(c))
	r.done(ctx, "Stage", name, start, err)
	return st, err
}

func (r *Repo) Changes(ctx context.Context, cursor string, known []remote.ID) (remote.ChangeSet, error) {
	start := time.Now()
	cs, err := must[remote.Changes](r.inner).Changes(ctx, cursor, known)
	r.done(ctx, "Changes", cursor, start, err)
	return cs, err
}

// up counts the bytes a backend reads of an upload's content (retries and
// parts included: what went over the wire, or was about to).
func (r *Repo) up(c remote.Content) remote.Content {
	return remote.Content{ReaderAt: &countingReaderAt{r: c.ReaderAt, n: r.m.bytes.WithLabelValues(r.backend, "up")}, Size: c.Size, Staged: c.Staged}
}

type adder interface{ Add(float64) }

type countingReader struct {
	rc io.ReadCloser
	n  adder
}

func (c *countingReader) Read(p []byte) (int, error) {
	k, err := c.rc.Read(p)
	c.n.Add(float64(k))
	return k, err
}

func (c *countingReader) Close() error { return c.rc.Close() }

type countingReaderAt struct {
	r io.ReaderAt
	n adder
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	k, err := c.r.ReadAt(p, off)
	c.n.Add(float64(k))
	return k, err
}
