package invenio

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/dmsfs/dmsfs/remote"
)

// A file's metadata dict is its fields (user.dms.field.<key>): strings as
// they are, other values as JSON. Changing one sends the merged dict with
// a PUT of the draft entry (nrp-cmd files.update; drafts only, so a
// published record gets its new-version draft first, as for content).
// Files have no concurrency control in Invenio: the token checked is the
// checksum, as for content (target). A record directory's fields are the
// record's metadata (description, creators, …), changed on its draft with
// the revision as token (updateRecord); the title is the directory's name
// and changes by a rename. Key folders keep none.

var _ remote.Fields = (*Repo)(nil)

// Fields returns a file's metadata.
func (r *Repo) Fields(ctx context.Context, id remote.ID) (map[string]string, error) {
	f, ok := r.resolve(id)
	if !ok {
		return nil, fmt.Errorf("%s: %w", id, remote.ErrNotFound)
	}
	out := map[string]string{}
	if f.kind == 'r' {
		// The listing's copy: the record's metadata comes with it.
		rec, err := r.working(ctx, f.parent, true)
		if err != nil {
			return nil, err
		}
		for k, v := range rec.Metadata.All {
			out[k] = fieldText(v)
		}
		return out, nil
	}
	if f.kind != 'f' {
		return out, nil
	}
	_, files, err := r.workingFiles(ctx, f.parent)
	if err != nil {
		return nil, err
	}
	e, ok := files[f.key]
	if !ok {
		return nil, fmt.Errorf("%s: %w", f.key, remote.ErrNotFound)
	}
	for k, v := range e.Metadata {
		out[k] = fieldText(v)
	}
	return out, nil
}

// fieldText shows one metadata value: a string as it is, others as JSON.
func fieldText(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// fieldValue reads a value written to a field: a JSON object or array is
// taken as such, anything else as a string.
func fieldValue(s string) any {
	if t := strings.TrimSpace(s); strings.HasPrefix(t, "{") || strings.HasPrefix(t, "[") {
		var v any
		if json.Unmarshal([]byte(t), &v) == nil {
			return v
		}
	}
	return s
}

// SetField changes one key of a file's metadata (nil removes it).
func (r *Repo) SetField(ctx context.Context, id remote.ID, token, name string, value *string) (remote.Node, error) {
	f, ok := r.resolve(id)
	if !ok {
		return remote.Node{}, fmt.Errorf("%s: %w", id, remote.ErrNotFound)
	}
	if f.kind == 'r' {
		return r.setRecordField(ctx, id, f, token, name, value)
	}
	if f.kind != 'f' {
		return remote.Node{}, fmt.Errorf("invenio: a folder of keys keeps no fields: %w", remote.ErrUnsupported)
	}
	_, draft, cur, unlock, err := r.target(ctx, id, token, "")
	if err != nil {
		return remote.Node{}, err
	}
	defer unlock()
	md := make(map[string]any, len(cur.Metadata)+1)
	for k, v := range cur.Metadata {
		md[k] = v
	}
	if value == nil {
		delete(md, name)
	} else {
		md[name] = fieldValue(*value)
	}
	var e fileEntry
	if _, err := r.call(ctx, http.MethodPut, cur.Links.Self, jsonBody(map[string]any{"metadata": md}), nil, &e, http.StatusOK); err != nil {
		return remote.Node{}, fmt.Errorf("set %s of %s: %w", name, lastName(f.key), err)
	}
	if e.Key == "" {
		e = cur
		e.Metadata = md
	}
	r.noteFile(draft, f.key, &e)
	return r.fileNode(id, r.parentOf(f), e), nil
}

// setRecordField changes one key of a record's metadata. The server saves a
// draft whatever is wrong with it, leaving out what it does not take
// (an unknown key, a value of the wrong kind) and saying so in the answer's
// errors; such a value is put back as it was and the write is refused
// with the server's message.
func (r *Repo) setRecordField(ctx context.Context, id remote.ID, f ref, token, name string, value *string) (remote.Node, error) {
	if name == "title" {
		return remote.Node{}, fmt.Errorf("invenio: the title is the record directory's name; rename it instead: %w", remote.ErrRefused)
	}
	var old any
	had := false
	updated, problems, err := r.updateRecord(ctx, f, token, func(md map[string]any) {
		old, had = md[name]
		if value == nil {
			delete(md, name)
		} else {
			md[name] = fieldValue(*value)
		}
	})
	if err != nil {
		return remote.Node{}, fmt.Errorf("set %s: %w", name, err)
	}
	for _, p := range problems {
		if p.Field != "metadata."+name && !strings.HasPrefix(p.Field, "metadata."+name+".") {
			continue
		}
		if had {
			if _, _, err := r.updateRecord(ctx, f, "", func(md map[string]any) { md[name] = old }); err != nil {
				r.log.Warn("invenio: a refused metadata value could not be put back", "record", f.parent, "field", name, "err", err)
			}
		}
		return remote.Node{}, fmt.Errorf("invenio refused %s: %s: %w", name, strings.Join(p.Messages, " "), remote.ErrInvalidName)
	}
	n := recordNode(updated)
	n.ID = id
	return n, nil
}

var _ remote.Drafts = (*Repo)(nil)

// Editable tells whether the node's record has a draft open for changes
// (a new record, or a published one's new version being made).
func (r *Repo) Editable(ctx context.Context, id remote.ID) (bool, error) {
	f, ok := r.resolve(id)
	if !ok {
		return false, fmt.Errorf("%s: %w", id, remote.ErrNotFound)
	}
	rec, err := r.working(ctx, f.parent, true)
	if err != nil {
		return false, err
	}
	return rec.editable(), nil
}
