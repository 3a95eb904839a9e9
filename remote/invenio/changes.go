package invenio

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/dmsfs/dmsfs/remote"
)

// Other clients' changes: one request per poll, the user's records newest
// first (GET /api/user/records?sort=updated-desc). The records updated
// after the cursor are reported with everything below them (a file added,
// replaced or removed commits the draft, which moves "updated"; which file
// it was the search does not say); the root too, since a title may have
// changed. A record gone (a draft discarded)
// changes the total, which reports the root. The cursor is
// "<newest updated>|<total>": the server's own times.

var _ remote.Changes = (*Repo)(nil)

// changesPage is how many records one poll reads; more changed since
// than fit on it pages on, up to changesPages.
const (
	changesPage  = 25
	changesPages = 8
)

func (r *Repo) Changes(ctx context.Context, cursor string, known []remote.ID) (remote.ChangeSet, error) {
	var since time.Time
	total := -1
	if cursor != "" {
		ts, n, ok := strings.Cut(cursor, "|")
		var err1, err2 error
		since, err1 = time.Parse(time.RFC3339Nano, ts)
		if total, err2 = strconv.Atoi(n); !ok || err1 != nil || err2 != nil {
			return remote.ChangeSet{}, fmt.Errorf("invenio: cursor %q: %w", cursor, remote.ErrInvalidName)
		}
	}
	q := url.Values{"size": {strconv.Itoa(changesPage)}, "sort": {"updated-desc"}, "shared_with_me": {"false"}}
	next := r.search + "?" + q.Encode()
	var out remote.ChangeSet
	newest, count := since, 0
	for page := 0; next != ""; page++ {
		var res searchResult
		if err := r.getJSON(ctx, next, &res); err != nil {
			return remote.ChangeSet{}, fmt.Errorf("invenio: changes: %w", err)
		}
		if page == 0 {
			count = res.Hits.Total
		}
		older := false
		for i := range res.Hits.Hits {
			rec := &res.Hits.Hits[i]
			t := parseTime(rec.Updated)
			if t.After(newest) {
				newest = t
			}
			if cursor == "" || !t.After(since) {
				older = true
				break
			}
			if rec.Parent.ID == "" {
				continue
			}
			id := r.stableID(ref{kind: 'r', parent: rec.Parent.ID}.id())
			out.Changed = append(out.Changed, id)
			out.Subtrees = append(out.Subtrees, id)
			r.forgetFiles(rec.Parent.ID)
		}
		if older || len(res.Hits.Hits) == 0 {
			break
		}
		if page+1 == changesPages {
			out.All = true // more changed than a poll reads: everything is suspect
			break
		}
		next = res.Links.Next
	}
	if cursor != "" && (len(out.Changed) > 0 || count != total) {
		out.Folders = append(out.Folders, rootID)
	}
	out.Cursor = newest.UTC().Format(time.RFC3339Nano) + "|" + strconv.Itoa(count)
	return out, nil
}

// forgetFiles drops the kept file list of a record another client changed.
func (r *Repo) forgetFiles(parent string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.fileLists, parent)
	delete(r.recs, parent) // its links (a new draft) may have changed too
}
