package axelortest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	bolt "go.etcd.io/bbolt"
)

// Records of business models that files can be attached to, as an Axelor
// application has them (the sale and base modules' orders and partners),
// with the name their attachment home folder takes (the record's name
// field; spec §4.11, DMSFileRepository.findOrCreateHome). DMSFile itself
// is a model too: its records are the DMS nodes.
var businessRecords = map[string]struct {
	count  int64
	format string
}{
	"com.axelor.apps.sale.db.SaleOrder": {100, "SO%04d"}, // Axelor Open Suite's classes
	"com.axelor.apps.base.db.Partner":   {50, "P%04d"},
	"com.axelor.sale.db.Order":          {100, "SO%04d"}, // the platform's sample application
	"com.axelor.contact.db.Contact":     {50, "C%04d"},
}

// serviceError is a message of the attachments service, answered as is.
type serviceError string

func (e serviceError) Error() string { return string(e) }

const (
	errNoModel  serviceError = "No such model found."
	errNoRecord serviceError = "No such record found."
)

// recordName is the name of record id of model, or errNoModel/errNoRecord.
func recordName(tx *bolt.Tx, model string, id int64) (string, error) {
	if model == dmsModel {
		f, ok := getRow[dmsFile](tx, bucketFiles, id)
		if !ok {
			return "", errNoRecord
		}
		return f.FileName, nil
	}
	m, ok := businessRecords[model]
	if !ok {
		return "", errNoModel
	}
	if id <= 0 || id > m.count {
		return "", errNoRecord
	}
	return fmt.Sprintf(m.format, id), nil
}

// record checks the model and id of an attachments request, answering the
// service's failure (status −1 with a message, HTTP 200) if either is
// unknown (axelor-dms DmsService.attachments/addAttachments, spec §4.11).
func (s *Server) record(w http.ResponseWriter, r *http.Request, tx *bolt.Tx) (string, int64, bool) {
	model := r.PathValue("model")
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err == nil {
		_, err = recordName(tx, model, id)
	} else {
		err = errNoRecord
		if _, known := businessRecords[model]; !known && model != dmsModel {
			err = errNoModel
		}
	}
	if err != nil {
		failure(w, -1, "Error", err.Error(), nil)
		return "", 0, false
	}
	return model, id, true
}

// attachments is GET /ws/dms/attachments/<model>/<id>: the record's
// attachments, the DMSFiles with that relatedModel/relatedId that are
// not folders and have a MetaFile, over every sub-folder (axelor-dms
// DmsService.attachments filters isDirectory = false; spec §4.11).
func (s *Server) attachments(w http.ResponseWriter, r *http.Request) {
	var out []map[string]any
	a := s.access(r)
	_ = s.st.db.View(func(tx *bolt.Tx) error {
		model, id, ok := s.record(w, r, tx)
		if !ok {
			out = nil
			return errAnswered
		}
		out = []map[string]any{}
		for _, f := range allFiles(tx) {
			if f.RelatedModel == model && f.RelatedID == id && !f.IsDirectory && f.MetaFile != 0 && a.read(tx, f) {
				out = append(out, map[string]any{"id": f.ID, "version": f.Version, "fileName": f.FileName})
			}
		}
		return nil
	})
	if out != nil {
		ok(w, out, len(out))
	}
}

// errAnswered ends a transaction whose handler already wrote the answer.
var errAnswered = errors.New("answered")

// attach is PUT /ws/dms/attachments/<model>/<id> with
// {"records":[{"id": <MetaFile id>}, …]}: one DMSFile per MetaFile, named
// as the MetaFile, in the record's home folder (made on first use); the
// answer lists id, $version and fileName (axelor-dms
// DmsService.addAttachments, spec §4.11).
func (s *Server) attach(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Records []struct {
			ID json.Number `json:"id"`
		} `json:"records"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Records) == 0 {
		failure(w, -1, "Error", "Invalid list of attachment records.", nil)
		return
	}
	a := s.access(r)
	s.write.Lock()
	defer s.write.Unlock()
	var out []map[string]any
	err := s.st.db.Update(func(tx *bolt.Tx) error {
		model, id, ok := s.record(w, r, tx)
		if !ok {
			return errAnswered
		}
		var metas []*metaFile
		for _, rec := range req.Records {
			mid, err := rec.ID.Int64()
			m, found := getRow[metaFile](tx, bucketMeta, mid)
			if err != nil || !found || !a.readMeta(m) {
				failure(w, -1, "Error", "Invalid list of attachment records.", nil)
				return errAnswered
			}
			metas = append(metas, m)
		}
		home, err := s.home(tx, a, model, id)
		if err != nil {
			return err
		}
		for _, m := range metas {
			nid, err := nextID(tx, bucketFiles)
			if err != nil {
				return err
			}
			f := &dmsFile{ID: nid, FileName: m.FileName, Parent: home, MetaFile: m.ID, RelatedModel: model, RelatedID: id,
				CreatedOn: s.opts.Now(), CreatedBy: a.user}
			if err := saveFile(tx, f, -1); err != nil {
				return err
			}
			out = append(out, map[string]any{"id": f.ID, "$version": f.Version, "fileName": f.FileName})
		}
		return nil
	})
	switch {
	case errors.Is(err, errAnswered):
	case err != nil:
		failure(w, -1, "SQL error", err.Error(), nil)
	default:
		ok(w, out, len(out))
	}
}
