package enaiotest

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dmsfs/dmsfs/remote/enaio/dmsxml"
	"github.com/dmsfs/dmsfs/remote/enaio/rpc"
)

// Error codes the server answers with. Only errMissingParam is a known real
// code (spec §2.1.7); the others are this server's own.
const (
	errMissingParam = -1043332470
	errUnknownJob   = -1043332471
	errNotLoggedIn  = -1043333001
	errNotFound     = -1043333002
	errConflict     = -1043333003
	errNotEmpty     = -1043333004
	errInvalid      = -1043333005
)

type jobError struct {
	code int32
	msg  string
}

func (e *jobError) Error() string { return e.msg }

func fail(code int32, format string, args ...any) *jobError {
	return &jobError{code: code, msg: fmt.Sprintf(format, args...)}
}

// params reads a request's parameters.
type params []rpc.Param

func (p params) str(name string) (string, *jobError) {
	v, ok := rpc.Get(p, name)
	if !ok {
		return "", fail(errMissingParam, "Der Aufrufparameter '%s' fehlt.", name)
	}
	return v, nil
}

func (p params) opt(name, def string) string {
	if v, ok := rpc.Get(p, name); ok {
		return v
	}
	return def
}

func (p params) int(name string) (int, *jobError) {
	v, jerr := p.str(name)
	if jerr != nil {
		return 0, jerr
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fail(errInvalid, "Parameter '%s' is not a number: %q", name, v)
	}
	return n, nil
}

// xml decodes the BASE64 parameter XML.
func (p params) xml(v any) *jobError {
	s, jerr := p.str("XML")
	if jerr != nil {
		return jerr
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return fail(errInvalid, "XML is not base64: %v", err)
	}
	if err := dmsxml.Unmarshal(b, v); err != nil {
		return fail(errInvalid, "XML: %v", err)
	}
	return nil
}

// options parses "KEY=1;KEY2=0".
func (p params) options() map[string]bool {
	out := map[string]bool{}
	for _, kv := range strings.Split(p.opt("Options", ""), ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		if k != "" {
			out[strings.ToUpper(k)] = v == "1"
		}
	}
	return out
}

// encodeXML returns v as a BASE64 parameter, in UTF-16 unless UTF-8 was
// asked for (enaio's default is UTF-16, spec §3).
func encodeXML(name string, v any, encoding string) (rpc.Param, *jobError) {
	b, err := dmsxml.Marshal(v)
	if err != nil {
		return rpc.Param{}, fail(errInvalid, "marshal: %v", err)
	}
	if !strings.EqualFold(encoding, "UTF-8") {
		b = dmsxml.UTF16(string(b))
	}
	return rpc.Param{Name: name, Type: rpc.Base64, Value: base64.StdEncoding.EncodeToString(b)}, nil
}

// run executes one job for a session.
func (s *Server) run(sess *session, req rpc.Request, in []*hashFile) (rpc.Reply, []rpc.File) {
	out, files, jerr := s.job(sess, req, in)
	if jerr != nil {
		if job := canonical(req.Job); jerr.code == errInvalid && (job == "dms.XMLInsert" || job == "dms.XMLUpdate") {
			// The XML jobs may say what was wrong with the data in an
			// XML error file, an output stream, while the error block
			// only says that the job failed (issue 13, item 8; the
			// file's layout is this server's own).
			var b strings.Builder
			b.WriteString(`<?xml version="1.0" encoding="UTF-8"?><DMSData><Errors><Error number="`)
			b.WriteString(strconv.Itoa(int(jerr.code)))
			b.WriteString(`">`)
			xml.EscapeText(&b, []byte(jerr.msg))
			b.WriteString(`</Error></Errors></DMSData>`)
			f := rpc.File{Ext: "xml", Size: int64(b.Len()), R: strings.NewReader(b.String())}
			return rpc.Reply{Return: -1, Errors: []rpc.JobError{{Code: jerr.code,
				Message: "Die XML-Daten konnten nicht verarbeitet werden, siehe Fehlerdatei.", Source: req.Job}}}, []rpc.File{f}
		}
		return rpc.Reply{Return: -1, Errors: []rpc.JobError{{Code: jerr.code, Message: jerr.msg, Source: req.Job}}}, nil
	}
	return rpc.Reply{Params: out}, files
}

// canonical is a job's name with the dms prefix spelt "dms.": servers take
// "DMS." too (spec §2.1.2).
func canonical(job string) string {
	if strings.HasPrefix(job, "DMS.") {
		return "dms." + job[4:]
	}
	return job
}

// jobParams are the parameters each job takes (Flags besides). Any other
// is refused: stricter than a real server, which may ignore what it does
// not know, so that a guessed parameter name (the client keeps its guesses
// in remote/enaio/facts.go) that is wrong fails a test instead of being
// ignored. nil: any (krn.EmptyJob echoes them).
var jobParams = map[string][]string{
	"krn.SessionAttach":        {"SessionGUID"},
	"krn.SessionPropertiesSet": {"Properties"}, // and the properties it names
	"krn.SessionLogin":         {"UserName", "UserPwd"},
	"krn.EmptyJob":             nil,
	"dms.GetObjDef":            {},
	"dms.GetObjectTypeByID":    {"ObjectID"},
	"dms.GetResultList":        {"XML", "Encoding", "Offset", "PageSize", "MaxHits", "RequestType", "GarbageMode", "DateFormat"},
	"std.StoreInCacheByID":     {"dwObjectID", "Convert", "AddAnnotations"},
	"dms.GetObjectHistory":     {"ObjectID", "LangID", "Encoding"},
	"std.GetDocVersion":        {"dwObjectID", "VersionGUID"},
	"dms.XMLInsert":            {"Options", "XML", "Encoding", "JobUserGUID"},
	"dms.XMLUpdate":            {"Options", "XML", "Encoding", "JobUserGUID"},
	"dms.XMLDelete":            {"Options", "XML", "Encoding", "JobUserGUID"},
	"dms.XMLMove":              {"Options", "XML", "Encoding", "JobUserGUID"},
}

// unknownParam names the first parameter job does not take ("" if none).
func unknownParam(job string, p params) string {
	allowed, known := jobParams[job]
	if !known || (allowed == nil && job == "krn.EmptyJob") {
		return ""
	}
	ok := map[string]bool{"Flags": true}
	for _, a := range allowed {
		ok[a] = true
	}
	if job == "krn.SessionPropertiesSet" {
		for _, name := range strings.Split(p.opt("Properties", ""), ";") {
			ok[strings.TrimSpace(name)] = true
		}
	}
	for _, x := range p {
		if !ok[x.Name] {
			return x.Name
		}
	}
	return ""
}

func (s *Server) job(sess *session, req rpc.Request, in []*hashFile) ([]rpc.Param, []rpc.File, *jobError) {
	p := params(req.Params)
	job := canonical(req.Job)
	if name := unknownParam(job, p); name != "" {
		return nil, nil, fail(errInvalid, "Job %s: unbekannter Parameter '%s'.", req.Job, name)
	}
	switch job {
	case "krn.SessionAttach":
		sess.guid = p.opt("SessionGUID", "")
		if sess.guid == "" {
			sess.guid = newGUID()
		}
		return []rpc.Param{rpc.Str("SessionGUID", sess.guid)}, nil, nil
	case "krn.SessionPropertiesSet":
		return nil, nil, nil
	case "krn.SessionLogin":
		user, jerr := p.str("UserName")
		if jerr != nil {
			return nil, nil, jerr
		}
		enc, jerr := p.str("UserPwd")
		if jerr != nil {
			return nil, nil, jerr
		}
		pw, err := rpc.RevealPassword(enc)
		want, known := s.opts.Users[user]
		if err != nil || !known || pw != want {
			return []rpc.Param{rpc.Str("Description", "Anmeldung fehlgeschlagen: Benutzername oder Kennwort ist falsch.")}, nil, nil
		}
		sess.user, sess.loggedIn = user, true
		sess.userGUID = fmt.Sprintf("%X", sha256.Sum256([]byte(user)))[:32]
		s.logins.Add(1)
		return []rpc.Param{rpc.Str("Description", ""), rpc.Str("UserGUID", sess.userGUID)}, nil, nil
	case "krn.EmptyJob":
		return req.Params, nil, nil
	}
	if !sess.loggedIn {
		return nil, nil, fail(errNotLoggedIn, "Die Sitzung ist nicht angemeldet.")
	}
	if len(in) > 0 && job != "dms.XMLInsert" && job != "dms.XMLUpdate" {
		return nil, nil, fail(errInvalid, "%s takes no files", job)
	}
	switch job {
	case "dms.GetObjDef":
		enc := "UTF-16"
		if flags, _ := strconv.Atoi(p.opt("Flags", "0")); flags&4096 != 0 {
			enc = "UTF-8"
		}
		v, jerr := encodeXML("sRet", ObjDef(), enc)
		return []rpc.Param{v}, nil, jerr
	case "dms.GetObjectTypeByID":
		id, jerr := p.int("ObjectID")
		if jerr != nil {
			return nil, nil, jerr
		}
		s.mu.Lock()
		o := s.st.Objects[id]
		s.mu.Unlock()
		if o == nil {
			return nil, nil, fail(errNotFound, "Objekt %d nicht gefunden.", id)
		}
		return []rpc.Param{rpc.Int("ObjectType", o.Type)}, nil, nil
	case "dms.GetResultList":
		return s.resultList(p)
	case "std.StoreInCacheByID":
		return s.storeInCache(p)
	case "dms.GetObjectHistory":
		return s.history(p)
	case "std.GetDocVersion":
		return s.docVersion(p)
	case "dms.XMLInsert":
		// JobUserGUID is documented as required here (spec §3.6).
		if g, jerr := p.str("JobUserGUID"); jerr != nil {
			return nil, nil, jerr
		} else if g != sess.userGUID {
			return nil, nil, fail(errInvalid, "JobUserGUID '%s' ist nicht der angemeldete Benutzer.", g)
		}
		return s.insert(sess, p, in)
	case "dms.XMLUpdate":
		return s.update(sess, p, in)
	case "dms.XMLDelete":
		return s.delete(sess, p)
	case "dms.XMLMove":
		return s.move(sess, p)
	}
	return nil, nil, fail(errUnknownJob, "Unbekannter Job '%s'.", req.Job)
}

// sysValue is a system field's raw value.
func sysValue(o *Object, name string) string {
	kind := kindOf(o.Type)
	id := func(v int) string {
		if v == 0 {
			return ""
		}
		return strconv.Itoa(v)
	}
	switch name {
	case dmsxml.ObjectID:
		return strconv.Itoa(o.ID)
	case dmsxml.ObjectTime:
		return strconv.FormatInt(o.Time, 10)
	case dmsxml.ObjectModify:
		return strconv.FormatInt(o.Modified.Unix(), 10)
	case dmsxml.ObjectCreated:
		return strconv.FormatInt(o.Created.Unix(), 10)
	case dmsxml.ObjectFileSize:
		var n int64
		for _, f := range o.Files {
			n += f.Size
		}
		return strconv.FormatInt(n, 10)
	case "OBJECT_COUNT":
		return strconv.Itoa(len(o.Files))
	case dmsxml.ObjectDeleted:
		if o.Deleted {
			return "1"
		}
		return "0"
	case "OBJECT_MAIN":
		return strconv.Itoa(o.Type >> 16)
	case "OBJECT_CO":
		return strconv.Itoa(o.Type & 0xFFFF)
	case "OBJECT_FOREIGNID", "OBJECT_SYSTEMID", "OBJECT_USERGUID":
		return o.Fields[name]
	case dmsxml.RegFolder:
		if kind == dmsxml.Register {
			return id(o.Folder)
		}
	case dmsxml.RegParent:
		if kind == dmsxml.Register {
			return id(o.Register)
		}
	case dmsxml.DocFolder:
		if kind == dmsxml.Document {
			return id(o.Folder)
		}
	case dmsxml.DocRegister:
		if kind == dmsxml.Document {
			return id(o.Register)
		}
	}
	return ""
}

func kindOf(typ int) string {
	switch typ >> 16 {
	case 0:
		return dmsxml.Folder
	case 99:
		return dmsxml.Register
	}
	return dmsxml.Document
}

func matches(o *Object, c dmsxml.FieldCondition) (bool, *jobError) {
	var v string
	if c.System == "1" {
		v = sysValue(o, c.InternalName)
	} else {
		v = o.Fields[c.InternalName]
	}
	if c.Null != nil {
		switch c.Operator {
		case "=", "":
			return v == "", nil
		case "!=":
			return v != "", nil
		}
		return false, fail(errInvalid, "operator %q with NULL", c.Operator)
	}
	switch strings.ToUpper(c.Operator) {
	case "=":
		return len(c.Values) == 1 && equalOrLike(c, v), nil
	case "!=":
		return len(c.Values) == 1 && !equalOrLike(c, v), nil
	case "IN":
		return slices.Contains(c.Values, v), nil
	case "NOT IN":
		return !slices.Contains(c.Values, v), nil
	case "<", "<=", ">", ">=":
		if len(c.Values) != 1 {
			return false, fail(errInvalid, "operator %q takes one value", c.Operator)
		}
		a, b, ok := comparable(o, c, v)
		if !ok {
			return false, fail(errInvalid, "Der Wert '%s' ist mit dem Feld '%s' nicht vergleichbar.", c.Values[0], c.InternalName)
		}
		switch c.Operator {
		case "<":
			return a < b, nil
		case "<=":
			return a <= b, nil
		case ">":
			return a > b, nil
		}
		return a >= b, nil
	}
	return false, fail(errInvalid, "operator %q is not supported by this server", c.Operator)
}

// equalOrLike compares a value with a condition's: in index fields, *
// stands for any text and ? for one character, as in the enaio client's
// search forms.
func equalOrLike(c dmsxml.FieldCondition, v string) bool {
	want := c.Values[0]
	if c.System == "1" || !strings.ContainsAny(want, "*?") {
		return v == want
	}
	var re strings.Builder
	re.WriteString("(?s)^")
	for _, r := range want {
		switch r {
		case '*':
			re.WriteString(".*")
		case '?':
			re.WriteString(".")
		default:
			re.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	re.WriteString("$")
	return regexp.MustCompile(re.String()).MatchString(v)
}

// comparable gives a field's value and a condition's as numbers: times
// (the time system fields, given as dd.mm.yyyy HH:MM:SS as the spec's
// conditions write dates, in UTC here) as Unix seconds, else integers.
func comparable(o *Object, c dmsxml.FieldCondition, v string) (int64, int64, bool) {
	if c.System == "1" && (c.InternalName == dmsxml.ObjectModify || c.InternalName == dmsxml.ObjectCreated) {
		t, err := time.ParseInLocation("02.01.2006 15:04:05", c.Values[0], time.UTC)
		if err != nil {
			return 0, 0, false
		}
		a, _ := strconv.ParseInt(v, 10, 64)
		return a, t.Unix(), true
	}
	a, err1 := strconv.ParseInt(v, 10, 64)
	b, err2 := strconv.ParseInt(c.Values[0], 10, 64)
	return a, b, err1 == nil && err2 == nil
}

func (s *Server) resultList(p params) ([]rpc.Param, []rpc.File, *jobError) {
	var q dmsxml.Query
	if jerr := p.xml(&q); jerr != nil {
		return nil, nil, jerr
	}
	offset, _ := strconv.Atoi(p.opt("Offset", "0"))
	size, _ := strconv.Atoi(p.opt("PageSize", "-1"))
	if size < 0 || size > s.opts.MaxPage {
		size = s.opts.MaxPage
	}
	garbage := p.opt("GarbageMode", "0") == "1"
	if len(q.Archives) != 1 || len(q.Archives[0].ObjectTypes) != 1 {
		return nil, nil, fail(errInvalid, "this server answers queries for one object type")
	}
	qa, qt := q.Archives[0], q.Archives[0].ObjectTypes[0]
	cab, def, ok := typeByName(qa.InternalName, qt.InternalName)
	if !ok {
		return nil, nil, fail(errInvalid, "Unbekannter Objekttyp '%s'.", qt.InternalName)
	}
	s.mu.Lock()
	var hits []*Object
	for _, o := range s.st.Objects {
		if o.Type != def.TypeID() || o.Deleted != garbage {
			continue
		}
		ok := true
		for _, co := range qt.Conditions {
			if co.InternalName != qt.InternalName {
				s.mu.Unlock()
				return nil, nil, fail(errInvalid, "conditions on other object types are not supported by this server")
			}
			for _, fc := range co.Fields {
				m, jerr := matches(o, fc)
				if jerr != nil {
					s.mu.Unlock()
					return nil, nil, jerr
				}
				ok = ok && m
			}
		}
		if ok {
			hits = append(hits, o)
		}
	}
	sort.Slice(hits, func(i, j int) bool { return hits[i].ID < hits[j].ID })
	// A system field with sortpos orders the hits (spec §3.2), numerically.
	for _, f := range qt.Fields.Fields {
		if f.SortPos == "" || f.System != "1" {
			continue
		}
		desc := strings.EqualFold(f.SortOrder, "DESC")
		sort.SliceStable(hits, func(i, j int) bool {
			a, _ := strconv.ParseInt(sysValue(hits[i], f.InternalName), 10, 64)
			b, _ := strconv.ParseInt(sysValue(hits[j], f.InternalName), 10, 64)
			return (a < b) != desc && a != b
		})
	}
	total := len(hits)
	if offset > len(hits) {
		offset = len(hits)
	}
	hits = hits[offset:min(len(hits), offset+size)]
	ot := dmsxml.ContentObjectType{Name: def.Name, ID: def.TypeID(), MainType: def.MainType, CoType: def.CoType, Type: def.Kind()}
	all := qt.Fields.Schema == "ALL" || qt.Fields.Schema == "DEF"
	for _, o := range hits {
		co := dmsxml.ContentObject{ID: o.ID}
		if all {
			for _, fd := range def.Fields {
				if fd.Columns == nil {
					co.Fields = append(co.Fields, dmsxml.ValueField{Name: fd.Name, InternalName: fd.Internal, DataType: dataType(fd), Text: o.Fields[fd.Internal]})
				}
			}
		}
		for _, f := range qt.Fields.Fields {
			if f.System == "1" {
				co.Fields = append(co.Fields, dmsxml.ValueField{InternalName: f.InternalName, System: "1", DataType: "INTEGER", Raw: sysValue(o, f.InternalName), Text: sysValue(o, f.InternalName)})
			} else if !all {
				co.Fields = append(co.Fields, dmsxml.ValueField{InternalName: f.InternalName, DataType: "TEXT", Text: o.Fields[f.InternalName]})
			}
		}
		for _, fd := range def.Fields {
			if !all || fd.Columns == nil {
				continue
			}
			tf := dmsxml.TableField{InternalName: fd.Internal}
			for i, row := range o.Tables[fd.Internal] {
				r := dmsxml.Row{Line: i + 1}
				for _, col := range fd.Columns {
					r.Fields = append(r.Fields, dmsxml.ValueField{InternalName: col.Internal, Text: row[col.Internal]})
				}
				tf.Rows = append(tf.Rows, r)
			}
			co.Tables = append(co.Tables, tf)
		}
		ot.Objects = append(ot.Objects, co)
	}
	s.mu.Unlock()
	content := dmsxml.Content{Format: "HOL", Archives: []dmsxml.ContentArchive{{Name: cab.Name, ID: strconv.Itoa(cab.CoType), ObjectTypes: []dmsxml.ContentObjectType{ot}}}}
	x, jerr := encodeXML("XML", content, p.opt("Encoding", "UTF-16"))
	if jerr != nil {
		return nil, nil, jerr
	}
	return []rpc.Param{rpc.Int("Count", len(hits)), rpc.Int("TotalHits", total), x}, nil, nil
}

// tableDef finds a type's table field.
func tableDef(def dmsxml.ObjectDef, name string) (dmsxml.FieldDef, bool) {
	for _, f := range def.Fields {
		if f.Internal == name && f.Columns != nil {
			return f, true
		}
	}
	return dmsxml.FieldDef{}, false
}

// openBlobs returns the stored files as streams.
func (s *Server) openBlobs(blobs []Blob) ([]rpc.File, *jobError) {
	var out []rpc.File
	for _, b := range blobs {
		f, err := os.Open(s.blobPath(b.SHA256))
		if err != nil {
			closeFiles(out)
			return nil, fail(errInvalid, "Datei nicht lesbar: %v", err)
		}
		out = append(out, rpc.File{Ext: b.Ext, Size: b.Size, R: f})
	}
	return out, nil
}

func (s *Server) blobPath(sum string) string { return filepath.Join(s.dir, "blobs", sum) }

// object returns a live object by id.
func (s *Server) object(id int) (*Object, *jobError) {
	o := s.st.Objects[id]
	if o == nil || o.Deleted {
		return nil, fail(errNotFound, "Das Objekt %d existiert nicht.", id)
	}
	return o, nil
}

func (s *Server) storeInCache(p params) ([]rpc.Param, []rpc.File, *jobError) {
	id, jerr := p.int("dwObjectID")
	if jerr != nil {
		return nil, nil, jerr
	}
	convert, annotate := p.opt("Convert", "0"), p.opt("AddAnnotations", "0") == "1"
	s.mu.Lock()
	o, jerr := s.object(id)
	var blobs []Blob
	var conv conversion
	if jerr == nil {
		if kindOf(o.Type) != dmsxml.Document {
			jerr = fail(errInvalid, "Objekt %d ist kein Dokument.", id)
		}
		blobs = slices.Clone(o.Files)
		conv = conversion{id: id, title: o.Fields["Name"], mainType: o.Type >> 16, to: convert}
		if annotate {
			conv.annotations = slices.Clone(o.Annotations)
		}
	}
	s.mu.Unlock()
	if jerr != nil {
		return nil, nil, jerr
	}
	if convert != "0" || annotate {
		datas := make([][]byte, len(blobs))
		for i, b := range blobs {
			d, err := os.ReadFile(s.blobPath(b.SHA256))
			if err != nil {
				return nil, nil, fail(errInvalid, "Datei nicht lesbar: %v", err)
			}
			datas[i] = d
		}
		files, jerr := conv.run(blobs, datas)
		return nil, files, jerr
	}
	// Flags: 0 = the document's files and its preview (DIA) file, 1 = the
	// files only, 2 = the DIA file only (ECMind's ecm.dms.files; spec
	// §3.4). The preview is this server's own stand-in.
	flags := p.opt("Flags", "0")
	var files []rpc.File
	if flags != "2" {
		if files, jerr = s.openBlobs(blobs); jerr != nil {
			return nil, nil, jerr
		}
	}
	if flags != "1" {
		dia := fmt.Sprintf("DIA preview of object %d\n", id)
		files = append(files, rpc.File{Ext: "dia", Size: int64(len(dia)), R: strings.NewReader(dia)})
	}
	return nil, files, nil
}

// Annotations are the annotations of object id.
func (s *Server) Annotations(id int) []Annotation {
	s.mu.Lock()
	defer s.mu.Unlock()
	if o := s.st.Objects[id]; o != nil {
		return slices.Clone(o.Annotations)
	}
	return nil
}

func (s *Server) history(p params) ([]rpc.Param, []rpc.File, *jobError) {
	id, jerr := p.int("ObjectID")
	if jerr != nil {
		return nil, nil, jerr
	}
	s.mu.Lock()
	o, jerr := s.object(id)
	h := dmsxml.History{Timestamp: time.Now().UTC().Format("02.01.2006 15:04:05")}
	if jerr == nil {
		for i := len(o.History) - 1; i >= 0; i-- {
			m := o.History[i]
			var x dmsxml.Modification
			x.GUID, x.Time, x.User = m.GUID, m.Time.UTC().Format("02.01.2006 15:04:05"), m.User
			x.Action.ID, x.Action.Text = m.Action, m.Text
			h.Modifications = append(h.Modifications, x)
		}
	}
	s.mu.Unlock()
	if jerr != nil {
		return nil, nil, jerr
	}
	x, jerr := encodeXML("History", h, p.opt("Encoding", "UTF-16"))
	return []rpc.Param{x}, nil, jerr
}

// docVersion serves std.GetDocVersion. Its parameter names are not known
// (spec §9.1); this server and the client agree on dwObjectID and
// VersionGUID.
func (s *Server) docVersion(p params) ([]rpc.Param, []rpc.File, *jobError) {
	id, jerr := p.int("dwObjectID")
	if jerr != nil {
		return nil, nil, jerr
	}
	guid, jerr := p.str("VersionGUID")
	if jerr != nil {
		return nil, nil, jerr
	}
	s.mu.Lock()
	o, jerr := s.object(id)
	var blobs []Blob
	found := false
	if jerr == nil {
		for _, m := range o.History {
			if m.GUID == guid && m.Action == dmsxml.ActionVersionCreated {
				blobs, found = slices.Clone(m.Files), true
			}
		}
	}
	s.mu.Unlock()
	if jerr != nil {
		return nil, nil, jerr
	}
	if !found {
		return nil, nil, fail(errNotFound, "Version %s von Objekt %d nicht gefunden.", guid, id)
	}
	files, jerr := s.openBlobs(blobs)
	return nil, files, jerr
}

// keep moves received streams into the blob store.
func (s *Server) keep(in []*hashFile) ([]Blob, *jobError) {
	var out []Blob
	for _, f := range in {
		sum := hexSum(f.h.Sum(nil))
		dst := s.blobPath(sum)
		if _, err := os.Stat(dst); err != nil {
			if err := os.Rename(f.Name(), dst); err != nil {
				return nil, fail(errInvalid, "Datei nicht gespeichert: %v", err)
			}
		}
		out = append(out, Blob{Ext: f.ext, SHA256: sum, Size: f.size})
	}
	return out, nil
}

// stamp gives a changed object a new, larger concurrency timestamp.
func stamp(o *Object, now time.Time) {
	o.Time = max(now.Unix(), o.Time+1)
	o.Modified = now
}

func (o *Object) log(action int, text, user string, files []Blob) {
	o.History = append(o.History, Mod{GUID: newGUID(), Time: time.Now(), Action: action, Text: text, User: user, Files: files})
}

// setData applies a DMSData object's fields and table to o.
func setData(o *Object, def dmsxml.ObjectDef, d dmsxml.DataObject, replaceTable bool) *jobError {
	for _, f := range d.Fields {
		if f.System == "1" {
			// Only these system fields take a value from a client (ECMind's
			// update(): the foreign and system ids, the user GUID).
			switch f.InternalName {
			case "OBJECT_FOREIGNID", "OBJECT_SYSTEMID", "OBJECT_USERGUID":
				if f.FieldFunction == "NULL" {
					delete(o.Fields, f.InternalName)
				} else {
					o.Fields[f.InternalName] = f.Text
				}
				continue
			}
			return fail(errInvalid, "Das Systemfeld '%s' kann nicht geändert werden.", f.InternalName)
		}
		var fd *dmsxml.FieldDef
		for i := range def.Fields {
			if def.Fields[i].Internal == f.InternalName && def.Fields[i].Columns == nil {
				fd = &def.Fields[i]
			}
		}
		if fd == nil {
			return fail(errInvalid, "Feld '%s' gibt es im Typ '%s' nicht.", f.InternalName, def.Internal)
		}
		if f.FieldFunction == "NULL" {
			delete(o.Fields, f.InternalName)
			continue
		}
		if jerr := checkType(*fd, f.Text); jerr != nil {
			return jerr
		}
		o.Fields[f.InternalName] = f.Text
	}
	for _, t := range d.Tables {
		fd, ok := tableDef(def, t.InternalName)
		if !ok {
			return fail(errInvalid, "Tabellenfeld '%s' gibt es im Typ '%s' nicht.", t.InternalName, def.Internal)
		}
		if o.Tables == nil {
			o.Tables = map[string][]Row{}
		}
		// Without REPLACETABLEFIELDS the rows sent are added (spec §3.6).
		if replaceTable {
			delete(o.Tables, t.InternalName)
		}
		for _, r := range t.Rows {
			row := Row{}
			for _, f := range r.Fields {
				var cd *dmsxml.FieldDef
				for i := range fd.Columns {
					if fd.Columns[i].Internal == f.InternalName {
						cd = &fd.Columns[i]
					}
				}
				if cd == nil {
					return fail(errInvalid, "Die Spalte '%s' gibt es im Tabellenfeld '%s' nicht.", f.InternalName, fd.Name)
				}
				if f.Value() == "" {
					continue
				}
				if jerr := checkType(*cd, f.Value()); jerr != nil {
					return jerr
				}
				row[f.InternalName] = f.Value()
				if t, err := time.Parse("2006-01-02", f.Value()); err == nil && cd.Flags.DataType == "D" {
					row[f.InternalName] = t.Format("02.01.2006") // table-field dates read dd.mm.yyyy (spec §3.2)
				}
			}
			o.Tables[t.InternalName] = append(o.Tables[t.InternalName], row)
		}
	}
	return nil
}

// location checks a folder and register a register or document would be in.
func (s *Server) location(cab dmsxml.Cabinet, folderID, registerID int) *jobError {
	f, jerr := s.object(folderID)
	if jerr != nil {
		return fail(errNotFound, "Der Ordner %d existiert nicht.", folderID)
	}
	fc, _, _ := typeDef(f.Type)
	if kindOf(f.Type) != dmsxml.Folder || fc.Internal != cab.Internal {
		return fail(errInvalid, "Objekt %d ist kein Ordner des Schranks '%s'.", folderID, cab.Internal)
	}
	if registerID > 0 {
		r, jerr := s.object(registerID)
		if jerr != nil {
			return fail(errNotFound, "Das Register %d existiert nicht.", registerID)
		}
		if kindOf(r.Type) != dmsxml.Register || r.Folder != folderID {
			return fail(errInvalid, "Register %d liegt nicht im Ordner %d.", registerID, folderID)
		}
	}
	return nil
}

func (s *Server) insert(sess *session, p params, in []*hashFile) ([]rpc.Param, []rpc.File, *jobError) {
	var d dmsxml.Data
	if jerr := p.xml(&d); jerr != nil {
		return nil, nil, jerr
	}
	archive, typ, do, err := d.One()
	if err != nil {
		return nil, nil, fail(errInvalid, "%v", err)
	}
	cab, def, ok := typeByName(archive, typ)
	if !ok {
		return nil, nil, fail(errInvalid, "Unbekannter Objekttyp '%s'.", typ)
	}
	kind := def.Kind()
	if kind != dmsxml.Document && len(in) > 0 {
		return nil, nil, fail(errInvalid, "Nur Dokumente haben Dateien.")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	o := &Object{Type: def.TypeID(), Fields: map[string]string{}, Created: now, Time: now.Unix(), Modified: now}
	if kind != dmsxml.Folder {
		if jerr := s.location(cab, do.FolderID, do.RegisterID); jerr != nil {
			return nil, nil, jerr
		}
		o.Folder, o.Register = do.FolderID, max(do.RegisterID, 0)
	}
	if jerr := setData(o, def, do, true); jerr != nil {
		return nil, nil, jerr
	}
	if jerr := checkRequired(o, def, p.options(), nil); jerr != nil {
		return nil, nil, jerr
	}
	blobs, jerr := s.keep(in)
	if jerr != nil {
		return nil, nil, jerr
	}
	o.Files = blobs
	s.st.NextID++
	o.ID = s.st.NextID
	o.log(2, "Objekt angelegt", sess.user, nil)
	s.st.Objects[o.ID] = o
	s.markDirty()
	return []rpc.Param{rpc.Int("ObjectID", o.ID), rpc.Int("ObjectType", o.Type)}, nil, nil
}

// target finds the object a DMSData names, checking its type and, when
// given, its concurrency timestamp.
func (s *Server) target(p params) (*Object, dmsxml.Cabinet, dmsxml.ObjectDef, dmsxml.DataObject, *jobError) {
	var d dmsxml.Data
	var do dmsxml.DataObject
	if jerr := p.xml(&d); jerr != nil {
		return nil, dmsxml.Cabinet{}, dmsxml.ObjectDef{}, do, jerr
	}
	_, typ, do, err := d.One()
	if err != nil {
		return nil, dmsxml.Cabinet{}, dmsxml.ObjectDef{}, do, fail(errInvalid, "%v", err)
	}
	o, jerr := s.object(do.ObjectID)
	if jerr != nil {
		return nil, dmsxml.Cabinet{}, dmsxml.ObjectDef{}, do, jerr
	}
	cab, def, _ := typeDef(o.Type)
	if typ != def.Internal {
		return nil, cab, def, do, fail(errInvalid, "Objekt %d ist vom Typ '%s', nicht '%s'.", o.ID, def.Internal, typ)
	}
	if do.Timestamp != "" && do.Timestamp != strconv.FormatInt(o.Time, 10) {
		return nil, cab, def, do, fail(errConflict, "Das Objekt %d wurde zwischenzeitlich geändert (Zeitstempel %s, aktuell %d).", o.ID, do.Timestamp, o.Time)
	}
	return o, cab, def, do, nil
}

func (s *Server) update(sess *session, p params, in []*hashFile) ([]rpc.Param, []rpc.File, *jobError) {
	opts := p.options()
	s.mu.Lock()
	defer s.mu.Unlock()
	o, _, def, do, jerr := s.target(p)
	if jerr != nil {
		return nil, nil, jerr
	}
	if len(in) > 0 && def.Kind() != dmsxml.Document {
		return nil, nil, fail(errInvalid, "Nur Dokumente haben Dateien.")
	}
	if opts["REPLACEFILES"] && len(in) == 0 {
		return nil, nil, fail(errInvalid, "REPLACEFILES ohne Dateien.")
	}
	// Work on a copy so that a failure changes nothing.
	n := *o
	n.Fields = maps(o.Fields)
	n.Tables = cloneTables(o.Tables)
	if jerr := setData(&n, def, do, opts["REPLACETABLEFIELDS"]); jerr != nil {
		return nil, nil, jerr
	}
	if jerr := checkRequired(&n, def, opts, append([]dmsxml.ValueField{}, do.Fields...)); jerr != nil {
		return nil, nil, jerr
	}
	blobs, jerr := s.keep(in)
	if jerr != nil {
		return nil, nil, jerr
	}
	old := o.Files
	switch {
	case opts["REPLACEFILES"]:
		n.Files = blobs
	case opts["APPENDFILESTOFRONT"]:
		n.Files = append(slices.Clone(blobs), old...)
	default:
		n.Files = append(slices.Clone(old), blobs...)
	}
	if len(in) > 0 {
		if def.HistoryFlags != 0 && len(old) > 0 {
			n.log(dmsxml.ActionVersionCreated, "Version erzeugt", sess.user, old)
		}
		n.log(4, "Dokumentinhalt bearbeitet", sess.user, nil)
	}
	if len(do.Fields) > 0 || len(do.Tables) > 0 {
		n.log(3, "Indexdaten geändert", sess.user, nil)
	}
	stamp(&n, time.Now())
	*o = n
	s.lastUpdate, s.lastOptions = do, p.opt("Options", "")
	s.markDirty()
	return []rpc.Param{rpc.Int("ObjectID", o.ID)}, nil, nil
}

func maps(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// children lists the live objects directly inside a folder or register.
func (s *Server) children(o *Object) []*Object {
	var out []*Object
	for _, c := range s.st.Objects {
		if c.Deleted || c.ID == o.ID {
			continue
		}
		switch kindOf(o.Type) {
		case dmsxml.Folder:
			if c.Folder == o.ID && c.Register == 0 {
				out = append(out, c)
			}
		case dmsxml.Register:
			if c.Register == o.ID {
				out = append(out, c)
			}
		}
	}
	return out
}

func (s *Server) delete(sess *session, p params) ([]rpc.Param, []rpc.File, *jobError) {
	opts := p.options()
	s.mu.Lock()
	defer s.mu.Unlock()
	o, _, _, _, jerr := s.target(p)
	if jerr != nil {
		return nil, nil, jerr
	}
	if len(s.children(o)) > 0 && !opts["DELETECASCADING"] {
		return nil, nil, fail(errNotEmpty, "Das Objekt %d ist nicht leer.", o.ID)
	}
	var drop func(o *Object)
	drop = func(o *Object) {
		for _, c := range s.children(o) {
			drop(c)
		}
		if opts["HARDDELETE"] {
			delete(s.st.Objects, o.ID)
			return
		}
		o.Deleted = true // to the recycle bin
		o.log(6, "Gelöscht", sess.user, nil)
		stamp(o, time.Now())
	}
	drop(o)
	s.markDirty()
	return nil, nil, nil
}

func (s *Server) move(sess *session, p params) ([]rpc.Param, []rpc.File, *jobError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, cab, def, do, jerr := s.target(p)
	if jerr != nil {
		return nil, nil, jerr
	}
	if def.Kind() == dmsxml.Folder {
		return nil, nil, fail(errInvalid, "Ordner können nicht verschoben werden.")
	}
	if jerr := s.location(cab, do.FolderID, do.RegisterID); jerr != nil {
		return nil, nil, jerr
	}
	reg := max(do.RegisterID, 0)
	if def.Kind() == dmsxml.Register {
		for r := reg; r != 0; r = s.st.Objects[r].Register {
			if r == o.ID {
				return nil, nil, fail(errInvalid, "Ein Register kann nicht in sich selbst verschoben werden.")
			}
		}
	}
	// A register's subtree follows it into the new folder.
	var refolder func(o *Object)
	refolder = func(o *Object) {
		for _, c := range s.children(o) {
			c.Folder = do.FolderID
			refolder(c)
		}
	}
	o.Folder, o.Register = do.FolderID, reg
	if def.Kind() == dmsxml.Register {
		refolder(o)
	}
	o.log(21, "Ablageort geändert", sess.user, nil)
	stamp(o, time.Now())
	s.markDirty()
	return nil, nil, nil
}

// seed fills a new DMS with sample objects: a folder with a register, a
// document in dmsfs's layout, a two-page scan without file names as other
// clients store them (with an earlier version), and a personnel file.
func (s *Server) seed() error {
	now := time.Now()
	put := func(b []byte, ext string) (Blob, error) {
		sum := sha256.Sum256(b)
		h := hexSum(sum[:])
		return Blob{Ext: ext, SHA256: h, Size: int64(len(b))}, os.WriteFile(s.blobPath(h), b, 0o600)
	}
	add := func(typ, folder, register int, name string, files ...Blob) *Object {
		s.st.NextID++
		o := &Object{ID: s.st.NextID, Type: typ, Fields: map[string]string{"Name": name}, Folder: folder, Register: register,
			Files: files, Created: now, Modified: now, Time: now.Unix()}
		o.log(2, "Objekt angelegt", "admin", nil)
		s.st.Objects[o.ID] = o
		return o
	}
	pdf, err := put(renderPDF("Rechnung 2024-001", []pdfPage{{heading: "Rechnung 2024-001", lines: []string{"Beispielrechnung"}}}), "pdf")
	if err != nil {
		return err
	}
	p1, err := put(SamplePage(1), "tif")
	if err != nil {
		return err
	}
	p2, err := put(SamplePage(2), "tif")
	if err != nil {
		return err
	}
	p1old, err := put(SamplePage(3), "tif") // the first scan of page 1 had a bar too many
	if err != nil {
		return err
	}
	txt, err := put([]byte("Arbeitsvertrag Max Muster\n"), "txt")
	if err != nil {
		return err
	}
	akte := add(TypeAkte, 0, 0, "Beispielakte")
	reg := add(TypeRegister, akte.ID, 0, "Rechnungen")
	doc := add(TypeDatei, akte.ID, reg.ID, "Rechnung 2024-001.pdf", pdf)
	doc.Tables = map[string][]Row{"Files": {{"FileName": "Rechnung 2024-001.pdf", "Size": strconv.FormatInt(pdf.Size, 10), "SHA256": pdf.SHA256}}}
	scan := add(TypeScan, akte.ID, 0, "Lieferschein", p1, p2)
	scan.log(dmsxml.ActionVersionCreated, "Version erzeugt", "admin", []Blob{p1old})
	scan.log(4, "Dokumentinhalt bearbeitet", "admin", nil)
	scan.Annotations = []Annotation{SampleAnnotation}
	pa := add(TypePersonal, 0, 0, "Muster, Max")
	v := add(TypePDok, pa.ID, 0, "Vertrag.txt", txt)
	v.Tables = map[string][]Row{"Files": {{"FileName": "Vertrag.txt", "Size": strconv.FormatInt(txt.Size, 10), "SHA256": txt.SHA256}}}
	return nil
}

// checkType refuses a value its field's type does not take: integers for
// dt 9, dates (yyyy-mm-dd or dd.mm.yyyy) for dt D.
func checkType(fd dmsxml.FieldDef, v string) *jobError {
	switch fd.Flags.DataType {
	case "9":
		if _, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err != nil {
			return fail(errInvalid, "Der Wert '%s' ist keine Zahl (Feld '%s').", v, fd.Name)
		}
	case "D":
		_, err1 := time.Parse("2006-01-02", v)
		_, err2 := time.Parse("02.01.2006", v)
		if err1 != nil && err2 != nil {
			return fail(errInvalid, "Der Wert '%s' ist kein Datum (Feld '%s').", v, fd.Name)
		}
	}
	return nil
}

// checkRequired refuses an object whose mandatory fields are empty,
// unless the job's options say CHECKOBLIGATION=0 (ECMind's
// check_mandatory=False; spec §3.6): an insert (touched nil) checks them
// all, an update those it sets (this server's reading: an update that
// leaves a field alone does not answer for it).
func checkRequired(o *Object, def dmsxml.ObjectDef, opts map[string]bool, touched []dmsxml.ValueField) *jobError {
	if v, given := opts["CHECKOBLIGATION"]; given && !v {
		return nil
	}
	check := func(name string) bool {
		if touched == nil {
			return true
		}
		for _, f := range touched {
			if f.InternalName == name {
				return true
			}
		}
		return false
	}
	for _, fd := range def.Fields {
		if fd.Flags.Required == "1" && check(fd.Internal) && strings.TrimSpace(o.Fields[fd.Internal]) == "" {
			return fail(errInvalid, "Das Pflichtfeld '%s' darf nicht leer sein.", fd.Name)
		}
	}
	return nil
}

// dataType is the result list's datatype of a field (spec §3.2).
func dataType(fd dmsxml.FieldDef) string {
	switch fd.Flags.DataType {
	case "9":
		return "INTEGER"
	case "D":
		return "DATE"
	}
	return "TEXT"
}
