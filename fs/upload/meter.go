package upload

import (
	"io"
	"sync/atomic"
)

// Meter counts the bytes a repository reads of an upload's content, for
// progress. A read at offset 0 starts a new pass (a checksum before the
// transfer, a retry), so Sent is how far the latest pass got.
type Meter struct {
	r    io.ReaderAt
	size int64
	sent atomic.Int64
}

// NewMeter meters reads of r, which holds size bytes.
func NewMeter(r io.ReaderAt, size int64) *Meter { return &Meter{r: r, size: size} }

func (m *Meter) ReadAt(p []byte, off int64) (int, error) {
	if off == 0 {
		m.sent.Store(0)
	}
	n, err := m.r.ReadAt(p, off)
	m.sent.Add(int64(n))
	return n, err
}

// Sent is how many bytes the latest pass read, at most the size.
func (m *Meter) Sent() int64 { return min(m.sent.Load(), m.size) }

// Progresser is an Item that tells how far its upload under way got. It
// is asked under the queue's lock, so it takes none.
type Progresser interface {
	Sent() int64
}
