package embedded

import (
	"context"
	"fmt"
	"path"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/dmsfs/dmsfs/remote"
)

var _ remote.Searcher = (*Repo)(nil)

// Search finds the documents below folder under that match every term of
// query, terms separated by "&": NAME=VALUE matches a field (the
// user.dms.field.NAME attribute) equal to VALUE, where VALUE may be a
// glob; any other term is a glob on the document's name ("*.pdf",
// "report*"). Example: "*.odt&author=Meier".
func (r *Repo) Search(ctx context.Context, under remote.ID, query string) ([]remote.Node, error) {
	match, err := parseQuery(query)
	if err != nil {
		return nil, err
	}
	var out []remote.Node
	err = r.db.View(func(tx *bolt.Tx) error {
		rec, err := get(tx, under)
		if err != nil {
			return err
		}
		if rec.Kind != remote.KindFolder {
			return fmt.Errorf("search %s: %w", under, remote.ErrNotFolder)
		}
		var walk func(id remote.ID) error
		walk = func(id remote.ID) error {
			return eachChild(tx, id, func(c *record) error {
				if c.Kind == remote.KindFolder {
					return walk(c.ID)
				}
				if match(c) {
					out = append(out, c.node())
				}
				return nil
			})
		}
		return walk(under)
	})
	return out, err
}

// parseQuery compiles a query into a test of a document.
func parseQuery(query string) (func(*record) bool, error) {
	if strings.TrimSpace(query) == "" {
		return nil, fmt.Errorf("an empty query: %w", remote.ErrInvalidName)
	}
	var tests []func(*record) bool
	for _, term := range strings.Split(query, "&") {
		name, value, isField := strings.Cut(term, "=")
		pattern := term
		if isField {
			pattern = value
			if name == "" {
				return nil, fmt.Errorf("query %q: a term %q names no field: %w", query, term, remote.ErrInvalidName)
			}
		}
		if _, err := path.Match(pattern, ""); err != nil {
			return nil, fmt.Errorf("query %q: %q is no glob: %w", query, pattern, remote.ErrInvalidName)
		}
		if isField {
			tests = append(tests, func(r *record) bool {
				v, ok := r.Fields[name]
				m, _ := path.Match(pattern, v)
				return ok && m
			})
			continue
		}
		tests = append(tests, func(r *record) bool {
			m, _ := path.Match(pattern, r.Name)
			return m
		})
	}
	return func(r *record) bool {
		for _, t := range tests {
			if !t(r) {
				return false
			}
		}
		return true
	}, nil
}
