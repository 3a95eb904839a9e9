package axelor

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/dmsfs/dmsfs/remote"
)

// A DMSFile's fields (user.dms.field.<name>) are its tags (the DMSFileTag
// names, joined by ", ") and, for a document, its MetaFile's description
// (spec §2.1, §2.2, §4.12). Axelor's schema is fixed: other names are
// ErrUnsupported. Tags change with the DMSFile's versioned save (a new
// version); the description with the MetaFile's own, after the DMSFile's
// version was checked, and a replaced content's new MetaFile takes it over.

const (
	tagPath  = "/ws/rest/com.axelor.dms.db.DMSFileTag"
	metaPath = "/ws/rest/com.axelor.meta.db.MetaFile"
)

var (
	_ remote.Fields     = (*Client)(nil)
	_ remote.FieldNamer = (*Client)(nil)
)

// FieldNames are Axelor's fixed fields, the free text first.
func (c *Client) FieldNames(ctx context.Context, id remote.ID) ([]string, error) {
	return []string{"description", "tags"}, nil
}

// fieldRow is a DMSFile's row with what its fields need.
func (c *Client) fieldRow(ctx context.Context, id remote.ID) (map[string]any, error) {
	nid, err := numID(id)
	if err != nil {
		return nil, err
	}
	rows, err := c.searchFields(ctx, []string{"version", "isDirectory", "tags", "metaFile.id", "metaFile.version", "metaFile.description"},
		"self.id = :id", map[string]any{"id": nid}, nil)
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("axelor: node %s: %w", id, remote.ErrNotFound)
	}
	return rows[0], nil
}

// tagNames are a row's tag names, in the server's order.
func tagNames(row map[string]any) []string {
	list, _ := row["tags"].([]any)
	var names []string
	for _, t := range list {
		if m, ok := t.(map[string]any); ok && str(m["name"]) != "" {
			names = append(names, str(m["name"]))
		}
	}
	return names
}

func (c *Client) Fields(ctx context.Context, id remote.ID) (map[string]string, error) {
	out := map[string]string{}
	if id == RootID {
		return out, nil
	}
	row, err := c.fieldRow(ctx, id)
	if err != nil {
		return nil, err
	}
	if names := tagNames(row); len(names) > 0 {
		out["tags"] = strings.Join(names, ", ")
	}
	if d := str(row["metaFile.description"]); d != "" {
		out["description"] = d
	}
	return out, nil
}

// parseTags reads a tags value: a JSON array of names, or names separated
// by commas.
func parseTags(v string) []string {
	var names []string
	if err := json.Unmarshal([]byte(v), &names); err != nil {
		names = strings.Split(v, ",")
	}
	var out []string
	for _, n := range names {
		if n = strings.TrimSpace(n); n != "" && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

func (c *Client) SetField(ctx context.Context, id remote.ID, token, name string, value *string) (remote.Node, error) {
	if id == RootID {
		return remote.Node{}, fmt.Errorf("axelor: the root has no fields: %w", remote.ErrUnsupported)
	}
	row, err := c.fieldRow(ctx, id)
	if err != nil {
		return remote.Node{}, err
	}
	if str(row["version"]) != token {
		return remote.Node{}, fmt.Errorf("axelor: %s has version %s, the change was based on %s: %w", id, str(row["version"]), token, remote.ErrConflict)
	}
	switch name {
	case "tags":
		var names []string
		if value != nil {
			names = parseTags(*value)
		}
		have := tagNames(row)
		if slices.Equal(have, names) {
			return c.Stat(ctx, id)
		}
		refs := make([]any, 0, len(names))
		for _, n := range names {
			tid, err := c.tagID(ctx, n)
			if err != nil {
				return remote.Node{}, err
			}
			refs = append(refs, map[string]any{"id": tid})
		}
		n, err := c.update(ctx, id, token, map[string]any{"tags": refs})
		return n, c.denied(ctx, err, "write", id)
	case "description":
		mid := num(row["metaFile.id"])
		if mid <= 0 {
			return remote.Node{}, fmt.Errorf("axelor: %s: folders have no description: %w", id, remote.ErrUnsupported)
		}
		var d any
		if value != nil && *value != "" {
			d = *value
		}
		if str(row["metaFile.description"]) == str(d) {
			return c.Stat(ctx, id)
		}
		if err := c.describe(ctx, mid, num(row["metaFile.version"]), d); err != nil {
			return remote.Node{}, err
		}
		return c.Stat(ctx, id)
	}
	return remote.Node{}, fmt.Errorf("axelor: field %q (Axelor keeps description and tags): %w", name, remote.ErrUnsupported)
}

// describe sets a MetaFile's description (nil clears it).
func (c *Client) describe(ctx context.Context, mid, version int64, d any) error {
	_, _, err := c.call(ctx, http.MethodPost, metaPath+"/"+strconv.FormatInt(mid, 10),
		map[string]any{"data": map[string]any{"version": version, "description": d}}, false)
	return err
}

// tagID finds the tag of a name, making it when there is none.
func (c *Client) tagID(ctx context.Context, name string) (int64, error) {
	rows, _, err := c.call(ctx, http.MethodPost, tagPath+"/search", map[string]any{
		"data": map[string]any{"_domain": "self.name = :name", "_domainContext": map[string]any{"name": name}}}, true)
	if err != nil {
		return 0, err
	}
	for _, r := range rows {
		if str(r["name"]) == name {
			return num(r["id"]), nil
		}
	}
	rows, _, err = c.call(ctx, http.MethodPut, tagPath, map[string]any{"data": map[string]any{"name": name, "code": name}}, false)
	if err != nil {
		return 0, fmt.Errorf("axelor: make tag %q: %w", name, err)
	}
	if len(rows) != 1 {
		return 0, fmt.Errorf("axelor: making tag %q answered %d rows: %w", name, len(rows), remote.ErrProtocol)
	}
	return num(rows[0]["id"]), nil
}
