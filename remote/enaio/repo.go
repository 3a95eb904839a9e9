// Package enaio is a Repository on an enaio application server, over its
// native job protocol (package rpc). Cabinets, folders and registers are
// folders; documents are files, or directories when they hold several files.
//
// enaio's protocol does not carry file names, only extensions (spec §2.1.5).
// dmsfs keeps each document's file names, sizes and SHA-256 digests in a
// table field of the document type ("Files" with columns FileName, Size,
// SHA256 by default), written with every change. Documents that other
// clients made without it are shown as "<title>.<ext>" or, with several
// files, "<title> (n).<ext>", learnt by fetching their files once.
package enaio

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dmsfs/dmsfs/remote"
	"github.com/dmsfs/dmsfs/remote/enaio/dmsxml"
	"github.com/dmsfs/dmsfs/remote/enaio/rpc"
)

// Config says which server to use and how.
type Config struct {
	Addr string // host:port
	// TLS wraps the connection in TLS. The server's certificate chain is
	// checked against the system's roots plus CAFile; the host name is not,
	// as enaio's certificates name "AppServer" (spec §2.1.1).
	TLS      bool
	CAFile   string
	Insecure bool // no certificate check at all
	User     string
	Password string
	// Root mounts a subtree: "/Cabinet/Folder/Register…" by display names.
	Root string
	// CacheDir holds fetched documents (enaio sends whole documents).
	CacheDir string
	// CacheSize bounds CacheDir's use (default 2 GiB).
	CacheSize int64
	// TitleField is the index field that names objects (default "Name").
	TitleField string
	// FilesTable is the document table field that keeps file names
	// (default "Files").
	FilesTable string
	Conns      int
	// Timeout bounds connecting and each wait for the server's next
	// bytes (default 2 minutes).
	Timeout time.Duration
	Logger  *slog.Logger
}

// Repo is the repository.
type Repo struct {
	cfg   Config
	log   *slog.Logger
	rpc   *rpc.Client
	def   dmsxml.ObjDef
	cache *fileCache
	root  remote.ID

	mu    sync.Mutex  // guards types
	types map[int]int // object id → type id, learnt from answers
}

var _ remote.Repository = (*Repo)(nil)

// IDs: the root is "/", a cabinet "c:<internal name>", an object its
// decimal object id.
const rootID = remote.ID("/")

// New connects, logs in and reads the object definition.
func New(ctx context.Context, cfg Config) (*Repo, error) {
	if cfg.TitleField == "" {
		cfg.TitleField = "Name"
	}
	if cfg.FilesTable == "" {
		cfg.FilesTable = "Files"
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = 2 << 30
	}
	if cfg.CacheDir == "" {
		d, err := os.MkdirTemp("", "dmsfs-enaio-")
		if err != nil {
			return nil, err
		}
		cfg.CacheDir = d
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	rc := rpc.Config{Addr: cfg.Addr, User: cfg.User, Password: cfg.Password, Conns: cfg.Conns, Timeout: cfg.Timeout, Logger: log}
	if cfg.TLS {
		t, err := tlsConfig(cfg)
		if err != nil {
			return nil, err
		}
		rc.TLS = t
	}
	c, err := rpc.Dial(ctx, rc)
	var netErr net.Error
	switch {
	case errors.As(err, &netErr):
		// Not reached (refused, no route, timed out): a mount may start
		// offline.
		return nil, fmt.Errorf("%w: %w", remote.ErrUnavailable, err)
	case err != nil:
		return nil, unavailable(err)
	}
	cache, err := newFileCache(cfg.CacheDir, cfg.CacheSize)
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	r := &Repo{cfg: cfg, log: log, rpc: c, cache: cache, root: rootID, types: map[int]int{}}
	rep, err := c.Call(ctx, rpc.Request{Job: jobGetObjDef, Params: []rpc.Param{rpc.Int("Flags", 1|4096)}}, nil, true)
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	if err := decodeXML(rep, "sRet", &r.def); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("enaio object definition: %w", err)
	}
	if cfg.Root != "" && cfg.Root != "/" {
		id, err := r.resolve(ctx, cfg.Root)
		if err != nil {
			_ = c.Close()
			return nil, fmt.Errorf("enaio root %q: %w", cfg.Root, err)
		}
		r.root = id
	}
	return r, nil
}

// tlsConfig checks the chain against the system roots and CAFile but not
// the host name.
func tlsConfig(cfg Config) (*tls.Config, error) {
	if cfg.Insecure {
		return &tls.Config{InsecureSkipVerify: true}, nil
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if cfg.CAFile != "" {
		b, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("CA file: %w", err)
		}
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("CA file %s holds no PEM certificate", cfg.CAFile)
		}
	}
	return &tls.Config{
		InsecureSkipVerify: true, // replaced by the chain check below
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 {
				return errors.New("the enaio server sent no certificate")
			}
			certs := make([]*x509.Certificate, len(raw))
			for i, b := range raw {
				c, err := x509.ParseCertificate(b)
				if err != nil {
					return err
				}
				certs[i] = c
			}
			inter := x509.NewCertPool()
			for _, c := range certs[1:] {
				inter.AddCert(c)
			}
			_, err := certs[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter})
			if err != nil {
				return fmt.Errorf("the enaio server's certificate is not trusted (give its CA with --ca-file): %w", err)
			}
			return nil
		},
	}, nil
}

// Close ends the sessions.
func (r *Repo) Close() error { return r.rpc.Close() }

// Capabilities: enaio keeps versions and multi-file documents; it sends
// whole documents, never ranges.
func (r *Repo) Capabilities() remote.Capabilities {
	return remote.Capabilities{Versions: true, MultiFile: true, ListsFields: true}
}

// decodeXML decodes a BASE64 XML output parameter.
func decodeXML(rep rpc.Reply, name string, v any) error {
	s, ok := rep.Get(name)
	if !ok {
		return fmt.Errorf("%w: the answer has no %s", remote.ErrProtocol, name)
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return fmt.Errorf("%w: %s is not base64: %v", remote.ErrProtocol, name, err)
	}
	if err := dmsxml.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: %s: %v", remote.ErrProtocol, name, err)
	}
	return nil
}

func b64XML(v any) (rpc.Param, error) {
	b, err := dmsxml.Marshal(v)
	if err != nil {
		return rpc.Param{}, err
	}
	return rpc.Param{Name: "XML", Type: rpc.Base64, Value: base64.StdEncoding.EncodeToString(b)}, nil
}

// cabinet returns a cabinet by internal name.
func (r *Repo) cabinet(internal string) (dmsxml.Cabinet, bool) {
	for _, c := range r.def.Cabinets {
		if c.Internal == internal {
			return c, true
		}
	}
	return dmsxml.Cabinet{}, false
}

// typeDef returns an object type with its cabinet.
func (r *Repo) typeDef(id int) (dmsxml.Cabinet, dmsxml.ObjectDef, bool) {
	for _, c := range r.def.Cabinets {
		for _, o := range c.Objects {
			if o.TypeID() == id {
				return c, o, true
			}
		}
	}
	return dmsxml.Cabinet{}, dmsxml.ObjectDef{}, false
}

// ofKind returns a cabinet's object types of one kind.
func ofKind(c dmsxml.Cabinet, kind string) []dmsxml.ObjectDef {
	var out []dmsxml.ObjectDef
	for _, o := range c.Objects {
		if o.Kind() == kind {
			out = append(out, o)
		}
	}
	return out
}

// docType is the type new documents get: the first "Windows" type (main
// type 4, arbitrary files) with the files table, else any with the table.
func (r *Repo) docType(c dmsxml.Cabinet) (dmsxml.ObjectDef, error) {
	var fallback *dmsxml.ObjectDef
	for _, o := range ofKind(c, dmsxml.Document) {
		if r.hasTable(o) {
			if o.MainType == 4 {
				return o, nil
			}
			if fallback == nil {
				fallback = &o
			}
		}
	}
	if fallback != nil {
		return *fallback, nil
	}
	return dmsxml.ObjectDef{}, fmt.Errorf("%w: cabinet %q has no document type with a %q table field for file names", remote.ErrUnsupported, c.Name, r.cfg.FilesTable)
}

func (r *Repo) hasTable(o dmsxml.ObjectDef) bool {
	for _, f := range o.Fields {
		if f.Internal == r.cfg.FilesTable && len(f.Columns) > 0 {
			return true
		}
	}
	return false
}

// object is an enaio object as dmsfs needs it.
type object struct {
	remote.Node
	id       int
	cab      dmsxml.Cabinet
	def      dmsxml.ObjectDef
	folder   int // the folder it lies in (registers, documents)
	register int // the register it lies in, 0 if none
	count    int // files the server holds (OBJECT_COUNT)
	table    bool
	// fields are the index data: the type's fields but the title, by
	// internal name, table fields as JSON rows (see fields.go).
	fields map[string]string
	// mtimes are the files table's MTime column, one per file ("" none).
	mtimes []string
	// created is OBJECT_CREATED.
	created time.Time
}

// parseID splits an ID.
func parseID(id remote.ID) (kind string, cab string, obj int, err error) {
	switch {
	case id == rootID:
		return "root", "", 0, nil
	case strings.HasPrefix(string(id), "c:"):
		return "cabinet", string(id[2:]), 0, nil
	}
	n, perr := strconv.Atoi(string(id))
	if perr != nil || n <= 0 {
		return "", "", 0, fmt.Errorf("%w: %q is not an enaio id", remote.ErrNotFound, id)
	}
	return "object", "", n, nil
}

func objID(n int) remote.ID { return remote.ID(strconv.Itoa(n)) }

// typeOf returns an object's type id, asking the server when unknown.
func (r *Repo) typeOf(ctx context.Context, id int) (int, error) {
	r.mu.Lock()
	t, ok := r.types[id]
	r.mu.Unlock()
	if ok {
		return t, nil
	}
	rep, err := r.rpc.Call(ctx, rpc.Request{Job: jobGetObjectType, Params: []rpc.Param{rpc.Int("Flags", 0), rpc.Int("ObjectID", id)}}, nil, true)
	var f *rpc.Failure
	if errors.As(err, &f) {
		return 0, fmt.Errorf("%w: object %d (%s)", remote.ErrNotFound, id, f.Reply.Message())
	}
	if err != nil {
		return 0, unavailable(err)
	}
	v, _ := rep.Get("ObjectType")
	t, err = strconv.Atoi(v)
	if err != nil || t < 0 {
		return 0, fmt.Errorf("%w: object %d has no type", remote.ErrNotFound, id)
	}
	r.learn(id, t)
	return t, nil
}

func (r *Repo) learn(id, typ int) {
	r.mu.Lock()
	r.types[id] = typ
	r.mu.Unlock()
}

// unavailable marks transport failures.
func unavailable(err error) error {
	var lost *rpc.LostError
	if errors.As(err, &lost) || errors.Is(err, rpc.ErrDigest) || errors.Is(err, rpc.ErrMalformed) {
		return fmt.Errorf("%w: %w", remote.ErrUnavailable, err)
	}
	return err
}

// systemFields are the system fields asked for per kind.
func systemFields(kind string) []string {
	common := []string{dmsxml.ObjectTime, dmsxml.ObjectModify, dmsxml.ObjectCreated}
	switch kind {
	case dmsxml.Register:
		return append(common, dmsxml.RegFolder, dmsxml.RegParent)
	case dmsxml.Document:
		return append(common, dmsxml.DocFolder, dmsxml.DocRegister, dmsxml.ObjectFileSize, "OBJECT_COUNT")
	}
	return common
}

// query runs dms.GetResultList (HOL) for one object type, paging until all
// hits are in.
func (r *Repo) query(ctx context.Context, cab dmsxml.Cabinet, def dmsxml.ObjectDef, conds ...dmsxml.FieldCondition) ([]object, error) {
	return r.queryWith(ctx, cab, def, queryOpts{}, conds...)
}

// queryOpts: the recycle bin instead of the live objects (GarbageMode=1),
// a system field to sort by (descending), at most limit hits (0: all).
type queryOpts struct {
	garbage  bool
	sortDesc string
	limit    int
}

func (r *Repo) queryWith(ctx context.Context, cab dmsxml.Cabinet, def dmsxml.ObjectDef, opts queryOpts, conds ...dmsxml.FieldCondition) ([]object, error) {
	qt := dmsxml.QueryObjectType{InternalName: def.Internal, Type: def.Kind()}
	qt.Fields.Schema = "ALL"
	for _, f := range systemFields(def.Kind()) {
		qf := dmsxml.QueryField{InternalName: f, System: "1"}
		if f == opts.sortDesc {
			qf.SortPos, qf.SortOrder = "1", "DESC"
		}
		qt.Fields.Fields = append(qt.Fields.Fields, qf)
	}
	if len(conds) > 0 {
		qt.Conditions = []dmsxml.ConditionObject{{InternalName: def.Internal, Fields: conds}}
	}
	x, err := b64XML(dmsxml.Query{RequestType: "HOL", Archives: []dmsxml.QueryArchive{{InternalName: cab.Internal, ObjectTypes: []dmsxml.QueryObjectType{qt}}}})
	if err != nil {
		return nil, err
	}
	page := 1000
	if opts.limit > 0 {
		page = opts.limit
	}
	garbage := 0
	if opts.garbage {
		garbage = 1
	}
	var out []object
	for offset := 0; ; {
		rep, err := r.rpc.Call(ctx, rpc.Request{Job: jobGetResultList, Params: []rpc.Param{
			rpc.Int("Flags", 0), x, rpc.Str("Encoding", "UTF-8"), rpc.Int("Offset", offset),
			rpc.Int("PageSize", page), rpc.Int("MaxHits", -1), rpc.Str("RequestType", "HOL"),
			rpc.Int("GarbageMode", garbage),
		}}, nil, true)
		if err != nil {
			return nil, unavailable(err)
		}
		var content dmsxml.Content
		if err := decodeXML(rep, "XML", &content); err != nil {
			return nil, err
		}
		count, total := intParam(rep, "Count"), intParam(rep, "TotalHits")
		n := 0
		for _, a := range content.Archives {
			for _, ot := range a.ObjectTypes {
				for _, co := range ot.Objects {
					o, err := r.toObject(cab, def, co)
					if err != nil {
						return nil, err
					}
					out = append(out, o)
					n++
				}
			}
		}
		offset += n
		if n == 0 || count == 0 || offset >= total || (opts.limit > 0 && len(out) >= opts.limit) {
			return out, nil
		}
	}
}

func intParam(rep rpc.Reply, name string) int {
	v, _ := rep.Get(name)
	n, _ := strconv.Atoi(v)
	return n
}

// toObject turns a result row into an object.
func (r *Repo) toObject(cab dmsxml.Cabinet, def dmsxml.ObjectDef, co dmsxml.ContentObject) (object, error) {
	if co.ID <= 0 {
		return object{}, fmt.Errorf("%w: result object without an id", remote.ErrProtocol)
	}
	r.learn(co.ID, def.TypeID())
	sys := func(name string) int {
		v, _ := co.Field(name)
		n, _ := strconv.Atoi(v)
		return n
	}
	o := object{id: co.ID, cab: cab, def: def}
	o.ID = objID(co.ID)
	o.Type = def.Name
	o.Token, _ = co.Field(concurrencyField)
	if o.Token == "" {
		return object{}, fmt.Errorf("%w: object %d without %s", remote.ErrProtocol, co.ID, concurrencyField)
	}
	mod, _ := co.Field(dmsxml.ObjectModify)
	o.ModTime = parseModifyTime(mod)
	made, _ := co.Field(dmsxml.ObjectCreated)
	if o.created = parseModifyTime(made); o.created.IsZero() {
		o.created = o.ModTime
	}
	o.Name, _ = co.Field(r.cfg.TitleField)
	if o.Name == "" {
		o.Name = fmt.Sprintf("%s %d", def.Name, co.ID)
	}
	o.fields = map[string]string{}
	for _, f := range co.Fields {
		if fd, ok := indexField(def, f.InternalName); ok && f.System != "1" && fd.Internal != r.cfg.TitleField && f.Value() != "" {
			o.fields[f.InternalName] = f.Value()
		}
	}
	for _, fd := range def.Fields {
		if fd.Columns == nil || fd.Internal == r.cfg.FilesTable {
			continue
		}
		if t, ok := co.Table(fd.Internal); ok && len(t.Rows) > 0 {
			o.fields[fd.Internal] = tableText(t)
		}
	}
	switch def.Kind() {
	case dmsxml.Folder:
		o.Kind = remote.KindFolder
		o.Parent = remote.ID("c:" + cab.Internal)
	case dmsxml.Register:
		o.Kind = remote.KindFolder
		o.folder, o.register = sys(dmsxml.RegFolder), sys(dmsxml.RegParent)
	default:
		o.Kind = remote.KindDocument
		o.folder, o.register = sys(dmsxml.DocFolder), sys(dmsxml.DocRegister)
		o.count = sys("OBJECT_COUNT")
		if t, ok := co.Table(r.cfg.FilesTable); ok && len(t.Rows) == o.count && o.count > 0 {
			o.table = true
			for _, row := range t.Rows {
				size, _ := strconv.ParseInt(row.Get("Size"), 10, 64)
				sum := row.Get("SHA256")
				o.Files = append(o.Files, remote.File{Name: row.Get("FileName"), Size: size, ModTime: o.ModTime,
					ContentID: "sha256:" + sum, SHA256: sum})
				o.mtimes = append(o.mtimes, row.Get(mtimeColumn))
			}
			if len(o.Files) == 1 && o.mtimes[0] != "" {
				o.fields[remote.MtimeField] = o.mtimes[0] + " " + o.Files[0].ContentID
			}
		}
	}
	o.Node.Fields = o.fields
	if def.Kind() != dmsxml.Folder {
		o.Parent = objID(o.folder)
		if o.register != 0 {
			o.Parent = objID(o.register)
		}
	}
	return o, nil
}

// obj returns one object fresh from the server, with its files named.
func (r *Repo) obj(ctx context.Context, id int) (object, error) {
	typ, err := r.typeOf(ctx, id)
	if err != nil {
		return object{}, err
	}
	cab, def, ok := r.typeDef(typ)
	if !ok {
		return object{}, fmt.Errorf("%w: object %d has type %d, which the object definition lacks", remote.ErrNotFound, id, typ)
	}
	os, err := r.query(ctx, cab, def, cond(dmsxml.ObjectID, strconv.Itoa(id)))
	if err != nil {
		return object{}, err
	}
	if len(os) != 1 {
		return object{}, fmt.Errorf("%w: object %d", remote.ErrNotFound, id)
	}
	return r.named(ctx, os[0])
}

// named fills in the files of a document made without the files table by
// fetching it (cached per concurrency timestamp).
func (r *Repo) named(ctx context.Context, o object) (object, error) {
	if o.Kind != remote.KindDocument || o.table || o.count == 0 {
		return o, nil
	}
	fs, err := r.fetch(ctx, o.id, o.Token)
	if err != nil {
		return o, err
	}
	o.Files = foreignNames(o.Name, o.ModTime, fs)
	return o, nil
}

// foreignNames names files the server sent without names.
func foreignNames(title string, mod time.Time, fs []cachedFile) []remote.File {
	var out []remote.File
	for i, f := range fs {
		name := title
		ext := ""
		if f.ext != "" {
			ext = "." + f.ext
		}
		if len(fs) > 1 {
			name = fmt.Sprintf("%s (%d)%s", strings.TrimSuffix(title, ext), i+1, ext)
		} else if !strings.EqualFold(path.Ext(title), ext) {
			name += ext
		}
		out = append(out, remote.File{Name: name, Size: f.size, ModTime: mod, ContentID: "sha256:" + f.sha, SHA256: f.sha})
	}
	return out
}

// Root returns the mount's top: the cabinets, or the subtree of cfg.Root.
func (r *Repo) Root(ctx context.Context) (remote.Node, error) {
	n, err := r.Stat(ctx, r.root)
	n.Parent = ""
	return n, err
}

// Stat returns one node.
func (r *Repo) Stat(ctx context.Context, id remote.ID) (remote.Node, error) {
	kind, cab, n, err := parseID(id)
	if err != nil {
		return remote.Node{}, err
	}
	switch kind {
	case "root":
		return remote.Node{ID: rootID, Kind: remote.KindFolder, Token: "-", NoDocuments: true}, nil
	case "cabinet":
		c, ok := r.cabinet(cab)
		if !ok {
			return remote.Node{}, fmt.Errorf("%w: cabinet %q", remote.ErrNotFound, cab)
		}
		return remote.Node{ID: id, Parent: rootID, Kind: remote.KindFolder, Name: c.Name, Token: "-", NoDocuments: true}, nil
	}
	o, err := r.obj(ctx, n)
	return o.Node, err
}

// List returns a folder's children.
func (r *Repo) List(ctx context.Context, id remote.ID) ([]remote.Node, error) {
	kind, cabName, n, err := parseID(id)
	if err != nil {
		return nil, err
	}
	var out []remote.Node
	add := func(os []object) error {
		for _, o := range os {
			o, err := r.named(ctx, o)
			if err != nil {
				return err
			}
			if o.Kind == remote.KindDocument && len(o.Files) == 0 {
				continue // index data only: nothing to show as a file
			}
			out = append(out, o.Node)
		}
		return nil
	}
	switch kind {
	case "root":
		for _, c := range r.def.Cabinets {
			out = append(out, remote.Node{ID: remote.ID("c:" + c.Internal), Parent: rootID, Kind: remote.KindFolder, Name: c.Name, Token: "-", NoDocuments: true})
		}
		return out, nil
	case "cabinet":
		c, ok := r.cabinet(cabName)
		if !ok {
			return nil, fmt.Errorf("%w: cabinet %q", remote.ErrNotFound, cabName)
		}
		for _, def := range ofKind(c, dmsxml.Folder) {
			os, err := r.query(ctx, c, def)
			if err != nil {
				return nil, err
			}
			if err := add(os); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	o, err := r.obj(ctx, n)
	if err != nil {
		return nil, err
	}
	if o.Kind != remote.KindFolder {
		return nil, fmt.Errorf("%w: %s is a document", remote.ErrNotFolder, o.Name)
	}
	sid := strconv.Itoa(o.id)
	for _, def := range o.cab.Objects {
		var conds []dmsxml.FieldCondition
		switch {
		case def.Kind() == dmsxml.Register && o.def.Kind() == dmsxml.Folder:
			conds = []dmsxml.FieldCondition{cond(dmsxml.RegFolder, sid), cond(dmsxml.RegParent, "")}
		case def.Kind() == dmsxml.Register:
			conds = []dmsxml.FieldCondition{cond(dmsxml.RegParent, sid)}
		case def.Kind() == dmsxml.Document && o.def.Kind() == dmsxml.Folder:
			conds = []dmsxml.FieldCondition{cond(dmsxml.DocFolder, sid), cond(dmsxml.DocRegister, "")}
		case def.Kind() == dmsxml.Document:
			conds = []dmsxml.FieldCondition{cond(dmsxml.DocRegister, sid)}
		default:
			continue
		}
		os, err := r.query(ctx, o.cab, def, conds...)
		if err != nil {
			return nil, err
		}
		if err := add(os); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// resolve finds a path of display names from the root.
func (r *Repo) resolve(ctx context.Context, p string) (remote.ID, error) {
	id := rootID
	for _, name := range strings.Split(strings.Trim(p, "/"), "/") {
		kids, err := r.List(ctx, id)
		if err != nil {
			return "", err
		}
		found := false
		for _, k := range kids {
			if k.Name == name && k.Kind == remote.KindFolder {
				id, found = k.ID, true
				break
			}
		}
		if !found {
			return "", fmt.Errorf("%w: no folder %q", remote.ErrNotFound, name)
		}
	}
	return id, nil
}
