// Package remote defines the Repository interface that every backend
// (embedded, axelor, invenio, enaio) implements, the shared node and version
// types, and the sentinel errors the filesystem maps to errno values.
package remote

import (
	"context"
	"io"
	"time"
)

// ID identifies a folder or document. It is opaque to callers and stable for
// the life of the object (renames and moves keep it).
type ID string

// Kind tells folders from documents.
type Kind int

const (
	KindFolder Kind = iota + 1
	KindDocument
)

func (k Kind) String() string {
	switch k {
	case KindFolder:
		return "folder"
	case KindDocument:
		return "document"
	}
	return "unknown"
}

// Node is a folder or a document as the repository sees it.
type Node struct {
	ID     ID
	Parent ID
	Kind   Kind
	// Name is the name the repository shows. For a document with one file it
	// is that file's name, so that the filesystem can show the document as
	// that file.
	Name string
	// Token is the optimistic-concurrency token (Axelor version, Invenio
	// revision_id, enaio timestamp). Every change of the node changes it;
	// updates that carry a stale token fail with ErrConflict.
	Token   string
	ModTime time.Time
	// Files are a document's files, at least one; empty for folders.
	Files []File
	// NoDocuments marks a folder that cannot hold documents (enaio's root
	// and cabinets): creating a file there fails at once, not at upload.
	NoDocuments bool
	// URL is where the node opens in the repository's web UI ("" if
	// unknown); Type is its object or record type where it has one.
	URL, Type string
	// Fields are the node's fields (see Fields) where the listing brings
	// them along at no cost (Capabilities.ListsFields); nil otherwise.
	Fields map[string]string
}

// IsDir tells whether the filesystem shows the node as a directory: folders
// and documents with several files.
func (n Node) IsDir() bool { return n.Kind == KindFolder || len(n.Files) != 1 }

// File returns the document's file with the given name.
func (n Node) File(name string) (File, bool) {
	for _, f := range n.Files {
		if f.Name == name {
			return f, true
		}
	}
	return File{}, false
}

// File is one file of a document.
type File struct {
	Name    string
	Size    int64
	ModTime time.Time
	// ContentID changes whenever the file's bytes change and never otherwise;
	// caches key on it.
	ContentID string
	// SHA256 is the hex digest of the content where the repository knows it.
	SHA256 string
}

// Version is one entry of a document's history: the document's files as they
// were after that change. N counts from 1 and grows with each version.
type Version struct {
	N     int
	Time  time.Time
	Files []File
}

// Content is what an upload reads. A ReaderAt lets a backend retry, chunk or
// upload parts in parallel without buffering the whole file in memory.
type Content struct {
	io.ReaderAt
	Size int64
	// Staged, when set, is these bytes sent ahead (Stager): Insert and
	// Replace of the repository that staged them use them instead of
	// sending the bytes again. Other repositories ignore it.
	Staged Staged
}

// Capabilities say what a repository supports; the filesystem checks them
// at run time instead of probing with calls that fail.
type Capabilities struct {
	// Versions: the repository keeps a version history (Versions, OpenVersion).
	Versions bool
	// MultiFile: documents may hold several files (Append, DeleteFile).
	MultiFile bool
	// VersionsOnPublish: versions are made by an explicit publish (Invenio),
	// not by each Replace; Versions lists the published ones and, last, the
	// current state.
	VersionsOnPublish bool
	// Ranges: Open honours off/length without transferring the whole file.
	Ranges bool
	// ReadOnly: every change fails with ErrReadOnly.
	ReadOnly bool
	// ListsFields: List and Stat fill Node.Fields, so that the filesystem
	// can keep what it needs for every file (the POSIX mtime) in a field
	// (MtimeField).
	ListsFields bool
}

// MtimeField is the field the filesystem keeps a file's POSIX mtime in,
// as "<RFC 3339 time> <content ID>" (stale once the content changes). A
// repository may map it onto a place of its own (enaio: a column of its
// files table); ErrUnsupported where a document cannot keep it.
const MtimeField = "dmsfs.mtime"

// Repository is a document-management repository. Methods are safe for
// concurrent use. Errors wrap the sentinel errors of this package so that
// callers can match them with errors.Is.
type Repository interface {
	Capabilities() Capabilities
	// Root returns the top folder.
	Root(ctx context.Context) (Node, error)
	// Stat returns one node.
	Stat(ctx context.Context, id ID) (Node, error)
	// List returns the children of a folder, in no particular order.
	List(ctx context.Context, folder ID) ([]Node, error)
	// Open reads length bytes (all to the end when length < 0) of a
	// document's file, starting at off. Reading past the end yields EOF.
	Open(ctx context.Context, doc ID, file string, off, length int64) (io.ReadCloser, error)

	// Mkdir creates a folder.
	Mkdir(ctx context.Context, parent ID, name string) (Node, error)
	// Insert creates a document holding one file named name.
	Insert(ctx context.Context, parent ID, name string, c Content) (Node, error)
	// Replace sets the content of one file of a document, making a new version.
	Replace(ctx context.Context, doc ID, token, file string, c Content) (Node, error)
	// Append adds a file to a document, making a new version.
	Append(ctx context.Context, doc ID, token, file string, c Content) (Node, error)
	// DeleteFile removes one file of a document that has several, making a
	// new version.
	DeleteFile(ctx context.Context, doc ID, token, file string) (Node, error)
	// Rename renames and/or moves a folder or document. For a document with
	// one file, the file takes the new name too.
	Rename(ctx context.Context, id ID, token string, newParent ID, newName string) (Node, error)
	// Delete removes a document (with its history) or an empty folder.
	Delete(ctx context.Context, id ID, token string) error

	// Versions lists a document's history, oldest first; the last entry is
	// the current state.
	Versions(ctx context.Context, doc ID) ([]Version, error)
	// OpenVersion reads a file as it was in version n.
	OpenVersion(ctx context.Context, doc ID, n int, file string, off, length int64) (io.ReadCloser, error)
}

// Fields is implemented by repositories whose objects carry index data or
// metadata besides their content (enaio index fields, Invenio file
// metadata, Axelor description and tags); the mount shows them as
// user.dms.field.<name> extended attributes.
type Fields interface {
	// Fields returns an object's fields: name → value, JSON where the
	// value is not a string.
	Fields(ctx context.Context, id ID) (map[string]string, error)
	// SetField changes one field of an object with its concurrency token
	// (nil clears it); only that field is sent. The node comes back with
	// its new token. A stale token is ErrConflict, a field the object
	// cannot have ErrUnsupported, a value its type refuses ErrInvalidName.
	SetField(ctx context.Context, id ID, token, name string, value *string) (Node, error)
}

// Drafts is implemented by repositories where changing a published
// object makes a new version (Invenio).
type Drafts interface {
	// Editable tells whether a change of the object now goes into a
	// draft that is open anyway, so that it opens no new version.
	Editable(ctx context.Context, id ID) (bool, error)
}

// FieldNamer is implemented by repositories whose schema fixes the
// fields an object may have (enaio's object types, Axelor's model).
type FieldNamer interface {
	// FieldNames are the fields the object may have, those that take
	// any text and may be empty first.
	FieldNames(ctx context.Context, id ID) ([]string, error)
}

// Publisher is a repository whose changes stay in a draft until they are
// published on request (Invenio). The filesystem never publishes by itself.
type Publisher interface {
	// PublishPlan says what publishing the draft that holds node id would
	// publish.
	PublishPlan(ctx context.Context, id ID) (PublishPlan, error)
	// Publish publishes that draft, making it a new version.
	Publish(ctx context.Context, id ID) (PublishPlan, error)
}

// PublishPlan describes a draft compared with the version it would follow.
type PublishPlan struct {
	Title   string
	Record  string // the draft's record id
	Version int    // the version number it will get
	// Added, Changed, Removed and Unchanged are file names relative to the
	// record.
	Added, Changed, Removed, Unchanged []string
	// NoDraft: there is nothing to publish.
	NoDraft bool
	URL     string // where the record is in the repository's web interface
}

// Wrapper is a Repository that adds something to another (metrics,
// availability) and forwards the calls.
type Wrapper interface {
	Unwrap() Repository
}

// As finds an optional interface (Fields, Drafts, FieldNamer, Publisher,
// Changes) of r. A Wrapper that implements it has it only where what it
// wraps has it; one that does not is looked through.
func As[T any](r Repository) (T, bool) {
	w, wraps := r.(Wrapper)
	t, ok := r.(T)
	switch {
	case ok && wraps:
		if _, inner := As[T](w.Unwrap()); !inner {
			var zero T
			return zero, false
		}
		return t, true
	case wraps:
		return As[T](w.Unwrap())
	}
	return t, ok
}

// Hidden is implemented by repositories with views that a folder's
// listing does not show but that are reachable by name (Axelor's record
// attachments, /.attachments/<model>/<id>/): the mount lists them only
// with --show-hidden, so rsync and cp -r of a folder never walk into them.
type Hidden interface {
	// LookupHidden finds name in folder parent where its listing lacks
	// it; ErrNotFound if there is no such view (or record).
	LookupHidden(ctx context.Context, parent ID, name string) (Node, error)
	// HiddenNames are the names LookupHidden always finds in parent.
	HiddenNames(parent ID) []string
}

// Renditioner is implemented by repositories that convert a document to
// other formats on request (enaio: PDF, a multi-page TIFF, the pages with
// their annotations burned in); the mount shows them, read-only, as
// dir/.renditions/<doc>/.
type Renditioner interface {
	// Renditions names what doc can be converted to, none if nothing;
	// it asks the repository nothing where the node says enough.
	Renditions(ctx context.Context, doc Node) ([]Rendition, error)
	// OpenRendition reads a rendition of doc as of its concurrency
	// token, from off. The repository makes it whole and keeps it by
	// (doc, token, kind), so that reading it again asks nothing; size
	// is its length.
	OpenRendition(ctx context.Context, doc ID, token, kind string, off int64) (rc io.ReadCloser, size int64, err error)
}

// Rendition is one format a document can be converted to.
type Rendition struct {
	Name string // the file name shown
	Kind string // what OpenRendition takes
}

// Searcher is implemented by repositories that find documents by a query
// (the mount's dir/.search/<query>/). The query's syntax is the
// repository's; README gives it per backend.
type Searcher interface {
	// Search returns the documents below folder under (at any depth)
	// that match query; ErrInvalidName when the query is malformed or
	// the repository rejects it, with its message.
	Search(ctx context.Context, under ID, query string) ([]Node, error)
}

// Stager is implemented by repositories whose uploads send the bytes
// before saying which document they belong to (Axelor: a MetaFile, then
// the create or re-point that uses it). The filesystem stages a new
// file's bytes while it still asks whether another client made a
// document of the name meanwhile, which decides between Insert and
// Replace: the two round trips overlap.
type Stager interface {
	Stage(ctx context.Context, name string, c Content) (Staged, error)
}

// Staged is bytes on the server that no document holds yet. Insert or
// Replace given them in Content.Staged takes them; Discard drops them
// if none did, and does nothing otherwise.
type Staged interface {
	Discard(ctx context.Context)
}

// Changes is implemented by repositories that can tell what changed since
// an earlier point, cheaply (one or a few requests), so that the mount
// shows other clients' changes within its poll interval.
type Changes interface {
	// Changes reports what changed since cursor and returns the cursor
	// for the next call; the empty cursor only asks for the current one.
	// known are documents the mount has cached, for repositories that
	// can find deletions only by asking after them.
	Changes(ctx context.Context, cursor string, known []ID) (ChangeSet, error)
}

// ChangeSet is what changed between two cursors.
type ChangeSet struct {
	Cursor string
	// Changed are objects made, changed, renamed, moved or deleted.
	Changed []ID
	// Folders are folders whose children changed (the parents of Changed
	// where the repository knows them).
	Folders []ID
	// Subtrees are folders anything below which may have changed (an
	// Invenio record whose files changed: the poll does not say which).
	Subtrees []ID
	// All: the repository cannot tell (its change log was cut short);
	// every cached listing is suspect.
	All bool
}
