package remote

import "errors"

// Sentinel errors. Backends wrap them (fmt.Errorf("…: %w", ErrNotFound)) so
// that the server's message travels with the kind.
var (
	ErrNotFound    = errors.New("not found")
	ErrExist       = errors.New("already exists")
	ErrConflict    = errors.New("changed on the server since it was read")
	ErrPermission  = errors.New("permission denied")
	ErrUnsupported = errors.New("not supported by this repository")
	ErrReadOnly    = errors.New("repository is read-only")
	ErrNotEmpty    = errors.New("folder not empty")
	ErrNotFolder   = errors.New("not a folder")
	ErrIsFolder    = errors.New("is a folder")
	ErrInvalidName = errors.New("invalid name")
	// ErrUnavailable is a server or network failure that persisted after
	// retries.
	ErrUnavailable = errors.New("repository unavailable")
	// ErrProtocol is an answer the client could not understand.
	ErrProtocol = errors.New("malformed answer from the repository")
	// ErrRefused is a request the server refused for a reason that will
	// not change by asking again (an HTTP 4xx that is neither a rate limit
	// nor a conflict, a quota, a rule of the document type).
	ErrRefused = errors.New("refused by the repository")
)

// Permanent tells a failure that no retry will mend (the server said no)
// from a transient one (network, 5xx, 429, a malformed answer). Not found,
// exists and conflict are neither: the upload queue resolves them.
func Permanent(err error) bool {
	for _, kind := range []error{ErrRefused, ErrPermission, ErrUnsupported, ErrReadOnly, ErrInvalidName, ErrIsFolder, ErrNotFolder} {
		if errors.Is(err, kind) {
			return true
		}
	}
	return false
}
