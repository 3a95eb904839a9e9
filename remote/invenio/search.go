package invenio

import (
	"context"
	"fmt"
	"strings"

	"github.com/dmsfs/dmsfs/remote"
)

var _ remote.Searcher = (*Repo)(nil)

// Search at the root is the records search of the user's records: query is
// its q, in the search's query-string syntax (metadata.title:abc, free
// text; GET /api/user/records?q=, spec §3.1), and the results are the
// records. Inside a record it finds the record's files whose names contain
// query (case-insensitive): InvenioRDM has no search of a record's files.
// A query the server refuses (400, "Invalid query string syntax.") is
// ErrInvalidName with its message.
func (r *Repo) Search(ctx context.Context, under remote.ID, query string) ([]remote.Node, error) {
	if strings.TrimSpace(query) == "" {
		return nil, fmt.Errorf("invenio: an empty search: %w", remote.ErrInvalidName)
	}
	if under != rootID {
		return r.searchFiles(ctx, under, query)
	}
	out, _, err := r.searchRecords(ctx, query)
	return out, err
}

// searchFiles lists the files below folder under (a record or a folder in
// one) whose names contain query.
func (r *Repo) searchFiles(ctx context.Context, under remote.ID, query string) ([]remote.Node, error) {
	var out []remote.Node
	var walk func(folder remote.ID) error
	walk = func(folder remote.ID) error {
		kids, err := r.List(ctx, folder)
		if err != nil {
			return err
		}
		for _, k := range kids {
			if k.Kind == remote.KindFolder {
				if err := walk(k.ID); err != nil {
					return err
				}
				continue
			}
			if strings.Contains(strings.ToLower(k.Name), strings.ToLower(query)) {
				out = append(out, k)
			}
		}
		return nil
	}
	return out, walk(under)
}
