package inveniotest

import (
	"encoding/json"
	"maps"
	"regexp"
	"sort"
)

// A record's metadata as InvenioRDM's MetadataSchema takes it
// (invenio-rdm-records services/schemas/metadata.py): known keys only
// (marshmallow's unknown=RAISE: "Unknown field."), each of its kind. A
// draft save does not fail on a problem: the field is left out and the
// problem comes back in the answer's "errors" (invenio-drafts-resources
// services/records/service.py update_draft, raise_errors=False).

// metadataKind is what each key of the schema holds: "s" a string, "l" a
// list, "o" an object, "d" an EDTF date (level 0) or interval.
var metadataKind = map[string]string{
	"resource_type": "o", "creators": "l", "title": "s", "additional_titles": "l",
	"publisher": "s", "publication_date": "d", "subjects": "l", "contributors": "l",
	"dates": "l", "languages": "l", "identifiers": "l", "related_identifiers": "l",
	"sizes": "l", "formats": "l", "version": "s", "rights": "l", "copyright": "s",
	"description": "s", "additional_descriptions": "l", "locations": "o",
	"funding": "l", "references": "l",
}

var edtf = regexp.MustCompile(`^\d{4}(-\d{2}(-\d{2})?)?(/\d{4}(-\d{2}(-\d{2})?)?)?$`)

// fieldError is one entry of an answer's "errors".
type fieldError struct {
	Field    string   `json:"field"`
	Messages []string `json:"messages"`
}

// checkMetadata keeps the keys the schema takes and says what it left out.
func checkMetadata(in map[string]json.RawMessage) (map[string]any, []fieldError) {
	out := map[string]any{}
	var errs []fieldError
	keys := make([]string, 0, len(in))
	for k := range in {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		var v any
		if json.Unmarshal(in[k], &v) != nil {
			continue
		}
		msg := ""
		switch kind, known := metadataKind[k]; {
		case !known:
			msg = "Unknown field."
		case kind == "s" || kind == "d":
			s, ok := v.(string)
			switch {
			case !ok:
				msg = "Not a valid string."
			case kind == "d" && !edtf.MatchString(s):
				msg = "Please provide a valid date or interval."
			}
		case kind == "l":
			if _, ok := v.([]any); !ok {
				msg = "Not a valid list."
			}
		case kind == "o":
			if _, ok := v.(map[string]any); !ok {
				msg = "Not a valid mapping type."
			}
		}
		if msg != "" {
			errs = append(errs, fieldError{Field: "metadata." + k, Messages: []string{msg}})
			continue
		}
		out[k] = v
	}
	return out, errs
}

// metadataJSON is a state's metadata as the API shows it.
func (s *recState) metadataJSON() map[string]any {
	out := maps.Clone(s.Metadata)
	if out == nil {
		out = map[string]any{}
	}
	out["title"] = s.Title
	return out
}

// setMetadata takes a draft's new metadata, title included.
func (s *recState) setMetadata(md map[string]any) {
	s.Title, _ = md["title"].(string)
	delete(md, "title")
	s.Metadata = md
}

// RecordMetadata is the metadata of a concept's working copy (its newest
// draft, else its latest published version), as the API shows it.
func (s *Server) RecordMetadata(parent string) (map[string]any, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, rs := s.st.working(parent)
	if rs == nil {
		return nil, false
	}
	return rs.metadataJSON(), true
}
