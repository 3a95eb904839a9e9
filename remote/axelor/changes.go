package axelor

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/dmsfs/dmsfs/remote"
)

// Other clients' changes: one REST search for the DMS files made or
// changed after the cursor (createdOn, updatedOn, or their MetaFile's
// updatedOn, which a new description moves), whose parents are the
// folders to list again. Deletions leave no row to find; the documents
// the mount has cached are looked up by id (one search per 500) and
// those missing are reported. The cursor is the newest time the server
// gave, so the clocks of server and client never meet; a change committed
// in the same millisecond as the cursor but after the search could be
// missed until the listing expires.

var _ remote.Changes = (*Client)(nil)

// changeFields are what a poll needs of each changed row.
var changeFields = []string{"createdOn", "updatedOn", "metaFile.updatedOn", "parent.id"}

const changedDomain = "(self.createdOn > :dmsfsSince OR self.updatedOn > :dmsfsSince OR self.metaFile.updatedOn > :dmsfsSince)"

// javaLocal formats a time as a LocalDateTime parameter.
func javaLocal(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000") }

func (c *Client) Changes(ctx context.Context, cursor string, known []remote.ID) (remote.ChangeSet, error) {
	if cursor == "" {
		return c.startCursor(ctx)
	}
	since, err := time.Parse("2006-01-02T15:04:05.000000", cursor)
	if err != nil {
		return remote.ChangeSet{}, fmt.Errorf("axelor: cursor %q: %w", cursor, remote.ErrInvalidName)
	}
	rows, err := c.searchFields(ctx, changeFields, changedDomain, map[string]any{"dmsfsSince": cursor}, []string{"id"})
	if err != nil {
		return remote.ChangeSet{}, fmt.Errorf("axelor: changes since %s: %w", cursor, err)
	}
	out := remote.ChangeSet{}
	newest := since
	folders := map[remote.ID]bool{}
	for _, row := range rows {
		id := remote.ID(str(row["id"]))
		out.Changed = append(out.Changed, id)
		parent := RootID
		if p := str(row["parent.id"]); p != "" {
			parent = remote.ID(p)
		}
		if !folders[parent] {
			folders[parent] = true
			out.Folders = append(out.Folders, parent)
		}
		for _, k := range []string{"createdOn", "updatedOn", "metaFile.updatedOn"} {
			if t := parseTime(row[k]); t.After(newest) {
				newest = t
			}
		}
	}
	gone, err := c.missing(ctx, known)
	if err != nil {
		return remote.ChangeSet{}, err
	}
	out.Changed = append(out.Changed, gone...)
	out.Cursor = javaLocal(newest)
	return out, nil
}

// startCursor is the newest time the server has given any row.
func (c *Client) startCursor(ctx context.Context) (remote.ChangeSet, error) {
	newest := time.Unix(0, 0)
	for _, order := range []string{"-updatedOn", "-createdOn"} {
		req := map[string]any{"offset": 0, "limit": 1, "sortBy": []string{order}, "fields": changeFields,
			"data": map[string]any{"_domain": "", "_domainContext": map[string]any{"_populate": false}}}
		rows, _, err := c.call(ctx, "POST", restPath+"/search", req, true)
		if err != nil {
			return remote.ChangeSet{}, fmt.Errorf("axelor: starting point for changes: %w", err)
		}
		for _, row := range rows {
			for _, k := range []string{"createdOn", "updatedOn"} {
				if t := parseTime(row[k]); t.After(newest) {
					newest = t
				}
			}
		}
	}
	return remote.ChangeSet{Cursor: javaLocal(newest)}, nil
}

// missing are the known objects the server no longer has.
func (c *Client) missing(ctx context.Context, known []remote.ID) ([]remote.ID, error) {
	var gone []remote.ID
	for len(known) > 0 {
		batch := known[:min(len(known), 500)]
		known = known[len(batch):]
		ids := make([]any, 0, len(batch))
		for _, id := range batch {
			if n, err := strconv.ParseInt(string(id), 10, 64); err == nil {
				ids = append(ids, n)
			}
		}
		if len(ids) == 0 {
			continue
		}
		rows, err := c.searchFields(ctx, []string{"id"}, "self.id IN :dmsfsIds", map[string]any{"dmsfsIds": ids}, []string{"id"})
		if err != nil {
			return nil, fmt.Errorf("axelor: which cached documents are left: %w", err)
		}
		left := make(map[string]bool, len(rows))
		for _, row := range rows {
			left[str(row["id"])] = true
		}
		for _, id := range batch {
			if _, err := strconv.ParseInt(string(id), 10, 64); err == nil && !left[string(id)] {
				gone = append(gone, id)
			}
		}
	}
	return gone, nil
}
