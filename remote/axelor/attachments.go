package axelor

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/dmsfs/dmsfs/remote"
)

// Record attachments (spec §4.11): the files attached to a business record
// (an order, a partner) are DMSFiles with relatedModel/relatedId, kept in
// the record's "home" folder under a root folder per model. The mount
// shows them as /.attachments/<model>/<id>/, folders that this client
// makes up, with IDs of their own:
//
//	att:              /.attachments
//	att:<model>       /.attachments/<model>
//	att:<model>:<id>  /.attachments/<model>/<id>
//
// and hides the homes (and the attachments in them) from the DMS tree.
// An attachment's parent is its record's folder; it is read, replaced,
// renamed and deleted as any document.

var _ remote.Hidden = (*Client)(nil)

// AttachmentsDir is the name of the attachments view at the mount root.
const AttachmentsDir = ".attachments"

const attPrefix = "att:"

// attRef is a parsed attachment folder ID: level 0 the view, 1 a model,
// 2 a record.
type attRef struct {
	level int
	model string
	id    int64
}

func parseAtt(id remote.ID) (attRef, bool) {
	rest, ok := strings.CutPrefix(string(id), attPrefix)
	if !ok {
		return attRef{}, false
	}
	if rest == "" {
		return attRef{}, true
	}
	model, rec, hasRec := strings.Cut(rest, ":")
	if !hasRec {
		return attRef{level: 1, model: model}, true
	}
	n, err := strconv.ParseInt(rec, 10, 64)
	if err != nil || n <= 0 {
		return attRef{}, false
	}
	return attRef{level: 2, model: model, id: n}, true
}

func (a attRef) ID() remote.ID {
	switch a.level {
	case 0:
		return attPrefix
	case 1:
		return remote.ID(attPrefix + a.model)
	}
	return remote.ID(attPrefix + a.model + ":" + strconv.FormatInt(a.id, 10))
}

func (a attRef) node() remote.Node {
	n := remote.Node{ID: a.ID(), Kind: remote.KindFolder, Token: "0", NoDocuments: a.level < 2}
	switch a.level {
	case 0:
		n.Name, n.Parent = AttachmentsDir, RootID
	case 1:
		n.Name, n.Parent = a.model, attPrefix
	default:
		n.Name, n.Parent = strconv.FormatInt(a.id, 10), remote.ID(attPrefix+a.model)
	}
	return n
}

// attachedTo is the record folder of an attachment row, if it is one.
func attachedTo(r row) (remote.ID, bool) {
	model := r.RelatedModel
	if model == "" || model == dmsModel || r.IsDirectory {
		return "", false
	}
	rec := num(r.RelatedID)
	if rec <= 0 {
		return "", false
	}
	return attRef{level: 2, model: model, id: rec}.ID(), true
}

// HiddenNames: the attachments view at the root.
func (c *Client) HiddenNames(parent remote.ID) []string {
	if parent == RootID {
		return []string{AttachmentsDir}
	}
	return nil
}

// LookupHidden finds the attachments view, a model in it, or a record of
// a model: any record the server knows is reachable, with attachments or
// without, so that a file can be attached by copying it there.
func (c *Client) LookupHidden(ctx context.Context, parent remote.ID, name string) (remote.Node, error) {
	if parent == RootID && name == AttachmentsDir {
		return attRef{}.node(), nil
	}
	p, ok := parseAtt(parent)
	if !ok || p.level == 2 {
		return remote.Node{}, fmt.Errorf("axelor: %q: %w", name, remote.ErrNotFound)
	}
	if p.level == 0 {
		// The model exists if the server knows it: asked of a record id
		// no table has, it answers "No such record found." (spec §4.11).
		if strings.ContainsAny(name, ":/") {
			return remote.Node{}, fmt.Errorf("axelor: no model %q: %w", name, remote.ErrNotFound)
		}
		err := c.checkRecord(ctx, name, 0)
		if err != nil && !errors.Is(err, errNoRecord) {
			return remote.Node{}, err
		}
		return attRef{level: 1, model: name}.node(), nil
	}
	id, err := strconv.ParseInt(name, 10, 64)
	if err != nil || id <= 0 || strconv.FormatInt(id, 10) != name {
		return remote.Node{}, fmt.Errorf("axelor: %s has no record %q: %w", p.model, name, remote.ErrNotFound)
	}
	if err := c.checkRecord(ctx, p.model, id); err != nil {
		return remote.Node{}, err
	}
	return attRef{level: 2, model: p.model, id: id}.node(), nil
}

// errNoRecord is the service's "No such record found.".
var errNoRecord = errors.New("no such record")

// checkRecord asks the attachments service for record id of model: nil
// if the server knows the record, ErrNotFound (wrapping errNoRecord for a
// known model) if not. The service answers a status of −1 with a message
// for both (spec §4.11); its messages are not translated.
func (c *Client) checkRecord(ctx context.Context, model string, id int64) error {
	_, _, err := c.call(ctx, http.MethodGet, attPath(model, id), nil, true)
	var se *statusError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &se) && strings.Contains(se.msg, "No such model"):
		return fmt.Errorf("axelor: no model %q: %w", model, remote.ErrNotFound)
	case errors.As(err, &se) && strings.Contains(se.msg, "No such record"):
		return fmt.Errorf("axelor: %s has no record %d: %w (%w)", model, id, remote.ErrNotFound, errNoRecord)
	}
	return err
}

func attPath(model string, id int64) string {
	return "/ws/dms/attachments/" + url.PathEscape(model) + "/" + strconv.FormatInt(id, 10)
}

// attachedDomain selects attachments: documents with a related record
// that are no version store, with content.
const attachedDomain = "self.relatedModel IS NOT NULL AND self.relatedModel != '" + dmsModel +
	"' AND COALESCE(self.isDirectory, FALSE) = FALSE AND self.metaFile IS NOT NULL"

// listAttachments lists a folder of the view: the models that have
// attachments, a model's records that have some, or a record's.
func (c *Client) listAttachments(ctx context.Context, a attRef) ([]remote.Node, error) {
	switch a.level {
	case 0, 1:
		domain, params := attachedDomain, map[string]any(nil)
		if a.level == 1 {
			domain, params = attachedDomain+" AND self.relatedModel = :m", map[string]any{"m": a.model}
		}
		rows, err := c.searchFields(ctx, []string{"relatedModel", "relatedId"}, domain, params, nil)
		if err != nil {
			return nil, err
		}
		seen := map[remote.ID]bool{}
		var out []remote.Node
		for _, row := range rows {
			ref := attRef{level: 1, model: str(row["relatedModel"])}
			if a.level == 1 {
				ref = attRef{level: 2, model: a.model, id: num(row["relatedId"])}
				if ref.id <= 0 {
					continue
				}
			}
			if ref.model == "" || seen[ref.ID()] {
				continue
			}
			seen[ref.ID()] = true
			out = append(out, ref.node())
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
		return out, nil
	}
	rows, err := c.search(ctx, attachedDomain+" AND self.relatedModel = :m AND self.relatedId = :r",
		map[string]any{"m": a.model, "r": a.id}, []string{"id"})
	if err != nil {
		return nil, err
	}
	out := make([]remote.Node, 0, len(rows))
	for _, row := range rows {
		n, err := c.node(row)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

// attach uploads content and attaches it to a record: the server makes
// the DMSFile in the record's home folder (spec §4.11).
func (c *Client) attach(ctx context.Context, a attRef, name string, content remote.Content) (remote.Node, error) {
	if a.level != 2 {
		return remote.Node{}, fmt.Errorf("axelor: %q: files are attached to a record, in /%s/<model>/<id>: %w", name, AttachmentsDir, remote.ErrPermission)
	}
	meta, err := c.upload(ctx, name, content)
	if err != nil {
		return remote.Node{}, err
	}
	rows, _, err := c.call(ctx, http.MethodPut, attPath(a.model, a.id), map[string]any{"records": []map[string]any{{"id": meta.id}}}, false)
	if err == nil && len(rows) != 1 {
		err = fmt.Errorf("axelor: attach answered %d records: %w", len(rows), remote.ErrProtocol)
	}
	if err != nil {
		c.discard(ctx, meta.id)
		if cerr := c.checkRecord(ctx, a.model, a.id); cerr != nil {
			return remote.Node{}, cerr
		}
		return remote.Node{}, err
	}
	id := num(rows[0]["id"])
	if id <= 0 {
		return remote.Node{}, fmt.Errorf("axelor: the attach answer has no id: %w", remote.ErrProtocol)
	}
	// The answer names id, $version and fileName only: the rest is
	// looked up (a parent of the attachment's own kind included).
	return c.Stat(ctx, remote.ID(strconv.FormatInt(id, 10)))
}

// renameAttachment renames an attachment within its record's folder;
// moves between records, or between the view and the DMS tree, are not
// made (ENOTSUP).
func (c *Client) renameAttachment(ctx context.Context, id remote.ID, token string, newParent remote.ID, newName string) (remote.Node, error) {
	cur, err := c.Stat(ctx, id)
	if err != nil {
		return remote.Node{}, err
	}
	if cur.Parent != newParent {
		return remote.Node{}, fmt.Errorf("axelor: %q: attachments are renamed within their record, not moved: %w", cur.Name, remote.ErrUnsupported)
	}
	if cur.Name == newName {
		return cur, nil
	}
	n, err := c.update(ctx, id, token, map[string]any{"fileName": newName})
	if err != nil {
		return n, c.denied(ctx, err, "write", id)
	}
	return n, nil
}
