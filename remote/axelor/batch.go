package axelor

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/dmsfs/dmsfs/remote"
)

// A document is two requests in series: the bytes, then the DMSFile
// (§4.6). When many are copied in at once (write-back uploads, 32 at a
// time), their uploads end together, and their creates go as one save
// request: the generic save takes a list, {"records":[…]} (§4.8; the web
// client moves nodes that way, and a record without id is created, as
// with "data" in §4.5). One round trip and one server transaction
// instead of one each.
//
// A create waits for company only while inserts that began uploading
// before it, or up to batchWait after, are still at it (uploads that
// begin together end about together; later ones are a round trip
// behind), and batchWait at most: a lone copy (cp without write-back)
// never waits.
const (
	batchWait = 5 * time.Millisecond
	batchMax  = 64
)

// newDocs gathers the creates of inserts whose uploads end together.
type newDocs struct {
	c    *Client
	wait time.Duration // batchWait; tests set it longer

	mu sync.Mutex // guards the fields below
	// next numbers the inserts.
	next uint64
	// uploading are the inserts uploading their bytes: when each began.
	uploading map[uint64]time.Time
	// waiting are the creates not sent yet, and horizon how late an
	// upload may have begun for them to wait for it.
	waiting []*newDoc
	horizon time.Time
	// timer sends waiting once the oldest waited wait (nil when empty).
	timer *time.Timer
}

// newDoc is one create and, once done is closed, its answer.
type newDoc struct {
	data map[string]any
	meta int64 // the MetaFile data points at
	row  map[string]any
	err  error
	done chan struct{}
}

// begin numbers an insert that starts uploading its bytes.
func (b *newDocs) begin() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.next++
	if b.uploading == nil {
		b.uploading = map[uint64]time.Time{}
	}
	b.uploading[b.next] = time.Now()
	return b.next
}

// abandon ends insert n, whose upload failed: it creates nothing.
func (b *newDocs) abandon(n uint64) {
	b.mu.Lock()
	delete(b.uploading, n)
	batch := b.due()
	b.mu.Unlock()
	if batch != nil {
		go b.send(context.Background(), batch)
	}
}

// create saves insert n's new DMSFile, alone or with others, and returns
// its row of the answer.
func (b *newDocs) create(ctx context.Context, n uint64, data map[string]any, meta int64) (map[string]any, error) {
	d := &newDoc{data: data, meta: meta, done: make(chan struct{})}
	b.mu.Lock()
	if began, ok := b.uploading[n]; ok && began.Add(b.wait).After(b.horizon) {
		b.horizon = began.Add(b.wait)
	}
	delete(b.uploading, n)
	b.waiting = append(b.waiting, d)
	batch := b.due()
	if batch == nil && b.timer == nil {
		b.timer = time.AfterFunc(b.wait, b.flush)
	}
	b.mu.Unlock()
	if batch != nil {
		b.send(ctx, batch)
	}
	// Not cancelled with ctx: the create may be on its way in a batch,
	// and its answer tells whether the document exists.
	<-d.done
	return d.row, d.err
}

// due takes the waiting creates when no upload they wait for is still
// going (mu held).
func (b *newDocs) due() []*newDoc {
	if len(b.waiting) == 0 {
		return nil
	}
	if len(b.waiting) < batchMax {
		for _, began := range b.uploading {
			if !began.After(b.horizon) {
				return nil
			}
		}
	}
	batch := b.waiting
	b.waiting, b.horizon = nil, time.Time{}
	if b.timer != nil {
		b.timer.Stop()
		b.timer = nil
	}
	return batch
}

// flush sends what waits once the oldest waited long enough.
func (b *newDocs) flush() {
	b.mu.Lock()
	batch := b.waiting
	b.waiting, b.horizon, b.timer = nil, time.Time{}, nil
	b.mu.Unlock()
	if batch != nil {
		b.send(context.Background(), batch)
	}
}

// send saves a batch and hands each create its row. The server saves a
// list in one transaction: a refusal of one record (a folder without
// write permission, a name it rejects) keeps all of them out, so each
// is then sent again alone, to get its own answer.
func (b *newDocs) send(ctx context.Context, batch []*newDoc) {
	ctx = context.WithoutCancel(ctx)
	if len(batch) == 1 {
		d := batch[0]
		d.row, d.err = b.c.createRow(ctx, d.data)
		close(d.done)
		return
	}
	recs := make([]map[string]any, len(batch))
	for i, d := range batch {
		recs[i] = d.data
	}
	rows, _, err := b.c.call(ctx, http.MethodPost, restPath, map[string]any{"records": recs}, false)
	if err == nil && len(rows) != len(batch) {
		err = fmt.Errorf("axelor: a save of %d records answered %d: %w", len(batch), len(rows), remote.ErrProtocol)
	}
	for i := 0; err == nil && i < len(rows); i++ {
		if !sameMeta(rows[i], batch[i].meta) {
			err = fmt.Errorf("axelor: a save of %d records answered them out of order: %w", len(batch), remote.ErrProtocol)
		}
	}
	var refused *statusError
	if errors.As(err, &refused) {
		var wg sync.WaitGroup
		for _, d := range batch {
			wg.Go(func() {
				d.row, d.err = b.c.createRow(ctx, d.data)
				close(d.done)
			})
		}
		wg.Wait()
		return
	}
	for i, d := range batch {
		if err != nil {
			d.err = err // the answer was lost: each looks for its document
		} else {
			d.row = rows[i] // the answer lists the records in order
		}
		close(d.done)
	}
}

// sameMeta tells whether an answer's row is of the record sent: it
// points at the MetaFile meta (a row without the reference passes).
func sameMeta(row map[string]any, meta int64) bool {
	got, ok := row["metaFile"].(map[string]any)
	return !ok || num(got["id"]) == meta
}

// createRow saves one new DMSFile and returns the row of the answer.
func (c *Client) createRow(ctx context.Context, data map[string]any) (map[string]any, error) {
	rows, _, err := c.call(ctx, http.MethodPut, restPath, map[string]any{"data": data}, false)
	if err == nil && len(rows) != 1 {
		err = fmt.Errorf("axelor: create answered %d records: %w", len(rows), remote.ErrProtocol)
	}
	if err != nil {
		return nil, err
	}
	return rows[0], nil
}
