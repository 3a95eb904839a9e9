// Package backoff is the one retry delay of dmsfs: capped exponential
// growth with jitter, used by every backend's client and by the upload
// queue, and a sleep that ends with its context.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Policy is a capped exponential backoff.
type Policy struct {
	// Base is the delay after the first failure; each further failure
	// doubles it, up to Max.
	Base, Max time.Duration
	// Jitter spreads each delay over [d/2, d] so that many clients that
	// failed together do not retry together.
	Jitter bool
}

// Delay is the wait after attempt failed attempts (attempt ≥ 1; 0 and
// below count as 1).
func (p Policy) Delay(attempt int) time.Duration {
	d := p.Base
	for i := 1; i < attempt && d < p.Max; i++ {
		d *= 2
	}
	if p.Max > 0 {
		d = min(d, p.Max)
	}
	if p.Jitter && d > 1 {
		d = d/2 + rand.N(d/2+1)
	}
	return d
}

// Sleep waits d or until ctx ends, whichever is first, and returns ctx's
// error in the second case.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
