package axelor

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/dmsfs/dmsfs/remote"
)

var _ remote.Searcher = (*Client)(nil)

// Search finds the documents below folder under whose name contains query
// (case-insensitive), as the DMS view's search box does (the pattern of
// /ws/dms/files, spec §4.1). It asks REST search, which applies the
// user's permissions where /ws/dms/files does not: one search of the
// matching documents, one of the folders to know which lie below under.
// % and _ in the query are wildcards, as in the server's LIKE.
func (c *Client) Search(ctx context.Context, under remote.ID, query string) ([]remote.Node, error) {
	if strings.TrimSpace(query) == "" {
		return nil, fmt.Errorf("axelor: an empty search: %w", remote.ErrInvalidName)
	}
	if _, ok := parseAtt(under); ok {
		return nil, fmt.Errorf("axelor: attachments are not searched: %w", remote.ErrInvalidName)
	}
	rows, err := c.search(ctx, "LOWER(self.fileName) LIKE :p AND COALESCE(self.isDirectory, FALSE) = FALSE AND self.relatedModel IS NULL",
		map[string]any{"p": "%" + strings.ToLower(query) + "%"}, []string{"id"})
	if err != nil {
		return nil, err
	}
	var parents map[int64]int64 // folder → its parent (0: the root)
	if under != RootID {
		folders, err := c.searchFields(ctx, []string{"parent.id"}, "self.isDirectory = true", nil, nil)
		if err != nil {
			return nil, err
		}
		parents = make(map[int64]int64, len(folders))
		for _, f := range folders {
			parents[num(f["id"])] = num(f["parent.id"])
		}
	}
	top, _ := strconv.ParseInt(string(under), 10, 64)
	below := func(p int64) bool {
		if under == RootID {
			return true
		}
		for hops := 0; p != 0 && hops <= len(parents); hops++ {
			if p == top {
				return true
			}
			p = parents[p]
		}
		return false
	}
	var out []remote.Node
	for _, row := range rows {
		if !below(num(row.ParentID)) {
			continue
		}
		n, err := c.node(row)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}
