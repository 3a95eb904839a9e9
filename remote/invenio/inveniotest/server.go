// Package inveniotest is a test server that behaves like InvenioRDM's REST
// API as ../shared/specs/invenio.md describes it: records, drafts, draft
// files with pending/completed states, multipart transfers, versions,
// downloads either served directly (with or without Range support) or as a
// 302 to a separate storage endpoint with short-lived signed URLs, rate
// limits with 429, revision checks with If-Match, and the content upload
// that fails with HTTP 200 and an "errors" string. It keeps its state in a
// data directory.
package inveniotest

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Options configure the server. The zero value is a plain InvenioRDM v13
// with local storage, no Range support and multipart offered.
type Options struct {
	// Tokens maps personal access tokens to user names.
	Tokens map[string]string
	// Range serves ranged downloads (FILES_REST_ALLOW_RANGE_REQUESTS); off,
	// a Range header is ignored and the whole file comes back with 200.
	Range bool
	// S3 answers content requests with a 302 to the storage endpoint, like
	// invenio-s3; part uploads of multipart transfers go there too.
	S3 bool
	// NoMultipart behaves like InvenioRDM before v13: the "transfer" field
	// of a file init is ignored and every file is a single upload.
	NoMultipart bool
	// WellKnown serves /.well-known/repository/ as NRP repositories do.
	WellKnown bool
	// MaxFiles per record (RDM_RECORDS_MAX_FILES_COUNT); default 100.
	MaxFiles int
	// URLExpiry is how long a signed storage URL is valid; default 60 s.
	URLExpiry time.Duration
	// RateLimit is how many requests a token may make per RateWindow
	// (default one minute); 0 means no limit.
	RateLimit  int
	RateWindow time.Duration
	// ChecksumDelay is how long the background task that computes a
	// multipart upload's md5 takes (default 200 ms); negative: it never
	// runs (a Celery worker that is down).
	ChecksumDelay time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Server is the test server. Its API handler and its storage handler must be
// served on different origins, as Invenio and S3 are.
type Server struct {
	dir  string
	opts Options
	key  []byte // signs storage URLs

	mu      sync.Mutex // guards st, faults, storage, counters
	st      *state
	faults  []fault
	storage string // base URL of the storage endpoint
	leaks   []string
	expire  int // storage requests still to refuse as expired
	refused int // answers with 429
	// lastSave and dirty debounce saving the state: a burst of changes
	// (a copy of many files) is saved at most every saveEvery.
	lastSave time.Time
	dirty    bool
	closed   bool // saves nothing more
	served   int64
	reqs     map[string]int
	window   map[string]*rateWindow
}

type fault struct {
	method, prefix string
	n, status      int
	message        string
}

type rateWindow struct {
	start time.Time
	n     int
}

// New opens (or creates) a server whose data lives in dir.
func New(dir string, opts Options) (*Server, error) {
	if opts.MaxFiles == 0 {
		opts.MaxFiles = 100
	}
	if opts.URLExpiry == 0 {
		opts.URLExpiry = time.Minute
	}
	if opts.RateWindow == 0 {
		opts.RateWindow = time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := os.MkdirAll(filepath.Join(dir, "blobs"), 0o700); err != nil {
		return nil, err
	}
	st, err := loadState(dir)
	if err != nil {
		return nil, err
	}
	key := make([]byte, 32)
	rand.Read(key)
	return &Server{dir: dir, opts: opts, key: key, st: st, reqs: map[string]int{}, window: map[string]*rateWindow{}}, nil
}

const saveEvery = 200 * time.Millisecond

// Close saves any state change not saved yet; after it the server saves
// nothing more (its directory may go away).
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.flush()
	s.closed = true
	return err
}

// flush saves the state if it changed since the last save; under s.mu.
func (s *Server) flush() error {
	if !s.dirty || s.closed {
		return nil
	}
	s.dirty = false
	s.lastSave = time.Now()
	return s.st.save(s.dir)
}

// SetStorageURL tells the server where its storage handler is reachable.
func (s *Server) SetStorageURL(u string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.storage = strings.TrimSuffix(u, "/")
}

// TokenLeaks lists the storage requests that carried an Authorization
// header: the client must never send its token to the storage host.
func (s *Server) TokenLeaks() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.leaks...)
}

// BytesServed counts content bytes sent by both handlers.
func (s *Server) BytesServed() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.served
}

// Requests counts requests whose "METHOD /path" starts with prefix.
func (s *Server) Requests(prefix string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k, v := range s.reqs {
		if strings.HasPrefix(k, prefix) {
			n += v
		}
	}
	return n
}

// RequestsMatching counts requests whose "METHOD /path" (storage ones
// prefixed "storage ") match.
func (s *Server) RequestsMatching(match func(string) bool) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k, v := range s.reqs {
		if match(k) {
			n += v
		}
	}
	return n
}

// Fail makes the next n requests whose method matches and whose path starts
// with prefix fail with status and an Invenio error body. Status 200 on a
// content PUT is the "upload transfer failed" answer: the server drops the
// pending file and says so in "errors".
func (s *Server) Fail(method, prefix string, n, status int, message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, fault{method, prefix, n, status, message})
}

// Throttled counts the requests refused with 429.
func (s *Server) Throttled() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused
}

// ExpireNext makes the storage endpoint treat the next n signed URLs as
// expired, as if the client had been slower than the URL's lifetime.
func (s *Server) ExpireNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire = n
}

// SetRateLimit changes the rate limit while serving.
func (s *Server) SetRateLimit(n int, window time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opts.RateLimit, s.opts.RateWindow = n, window
	s.window = map[string]*rateWindow{}
}

// takeFault returns the status of a matching fault (0 for none).
func (s *Server) takeFault(r *http.Request) (int, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.faults {
		f := &s.faults[i]
		if f.n > 0 && (f.method == "" || f.method == r.Method) && strings.HasPrefix(r.URL.Path, f.prefix) {
			f.n--
			return f.status, f.message
		}
	}
	return 0, ""
}

// Handler serves the REST API.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.reqs[r.Method+" "+r.URL.Path]++
		s.mu.Unlock()
		if !s.rateOK(w, r) {
			return
		}
		if status, msg := s.takeFault(r); status != 0 {
			if status == http.StatusOK && r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/content") {
				s.failedUpload(w, r)
				return
			}
			apiError(w, status, msg)
			return
		}
		s.route(w, r)
	})
}

// rateOK applies Flask-Limiter's behaviour: X-RateLimit-* headers on every
// answer and 429 with Retry-After once the window's budget is spent.
func (s *Server) rateOK(w http.ResponseWriter, r *http.Request) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.opts.RateLimit <= 0 {
		return true
	}
	who := r.Header.Get("Authorization")
	now := s.opts.Now()
	win := s.window[who]
	if win == nil || now.Sub(win.start) >= s.opts.RateWindow {
		win = &rateWindow{start: now}
		s.window[who] = win
	}
	reset := win.start.Add(s.opts.RateWindow)
	h := w.Header()
	h.Set("X-RateLimit-Limit", strconv.Itoa(s.opts.RateLimit))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))
	if win.n >= s.opts.RateLimit {
		h.Set("X-RateLimit-Remaining", "0")
		wait := int(reset.Sub(now).Seconds() + 0.999)
		h.Set("Retry-After", strconv.Itoa(max(wait, 1)))
		s.refused++
		apiError(w, http.StatusTooManyRequests, "Too Many Requests: "+strconv.Itoa(s.opts.RateLimit)+" per "+s.opts.RateWindow.String())
		return false
	}
	win.n++
	h.Set("X-RateLimit-Remaining", strconv.Itoa(s.opts.RateLimit-win.n))
	return true
}

// user returns the caller's user name from the Bearer token.
func (s *Server) user(r *http.Request) (string, bool) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return "", false
	}
	u, ok := s.opts.Tokens[tok]
	return u, ok
}

func (s *Server) requireUser(w http.ResponseWriter, r *http.Request) (string, bool) {
	u, ok := s.user(r)
	if !ok {
		apiError(w, http.StatusUnauthorized, "The server could not verify that you are authorized to access the URL requested. You either supplied the wrong credentials (e.g. a bad password), or your browser doesn't understand how to supply the credentials required.")
	}
	return u, ok
}

// apiError writes flask-resources' error body.
func apiError(w http.ResponseWriter, status int, message string) {
	writeJSON(w, status, map[string]any{"status": status, "message": message})
}

func validationError(w http.ResponseWriter, field, message string) {
	writeJSON(w, http.StatusBadRequest, map[string]any{"status": 400, "message": "A validation error occurred.",
		"errors": []map[string]any{{"field": field, "messages": []string{message}}}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// sign returns a storage URL for a blob (or a multipart part) valid until
// the URL expiry.
func (s *Server) sign(path string) string {
	exp := strconv.FormatInt(s.opts.Now().Add(s.opts.URLExpiry).Unix(), 10)
	mac := hmac.New(sha256.New, s.key)
	mac.Write([]byte(path + "|" + exp))
	return s.storage + path + "?X-Amz-Expires=" + exp + "&X-Amz-Signature=" + hex.EncodeToString(mac.Sum(nil))
}

func (s *Server) signatureOK(r *http.Request) (ok, expired bool) {
	q := r.URL.Query()
	exp := q.Get("X-Amz-Expires")
	mac := hmac.New(sha256.New, s.key)
	mac.Write([]byte(r.URL.Path + "|" + exp))
	want := hex.EncodeToString(mac.Sum(nil))
	if !hmac.Equal([]byte(want), []byte(q.Get("X-Amz-Signature"))) {
		return false, false
	}
	sec, err := strconv.ParseInt(exp, 10, 64)
	if err != nil {
		return false, false
	}
	return true, s.opts.Now().After(time.Unix(sec, 0))
}

// s3Error writes an S3-style XML error.
func s3Error(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s</Code><Message>%s</Message></Error>", code, message)
}

// StorageHandler serves signed downloads and multipart part uploads, as S3
// does. A request carrying an Authorization header is recorded as a token
// leak and refused, as S3 refuses two authentication mechanisms.
func (s *Server) StorageHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a := r.Header.Get("Authorization"); a != "" {
			s.mu.Lock()
			s.leaks = append(s.leaks, r.Method+" "+r.URL.Path)
			s.mu.Unlock()
			s3Error(w, http.StatusBadRequest, "InvalidArgument", "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified")
			return
		}
		ok, expired := s.signatureOK(r)
		s.mu.Lock()
		s.reqs["storage "+r.Method+" "+r.URL.Path]++
		if ok && s.expire > 0 {
			s.expire--
			expired = true
		}
		s.mu.Unlock()
		switch {
		case !ok:
			s3Error(w, http.StatusForbidden, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided.")
			return
		case expired:
			s3Error(w, http.StatusForbidden, "AccessDenied", "Request has expired")
			return
		}
		if blob, ok := strings.CutPrefix(r.URL.Path, "/blob/"); ok && r.Method == http.MethodGet {
			s.serveBlob(w, r, blob, true)
			return
		}
		if rest, ok := strings.CutPrefix(r.URL.Path, "/part/"); ok && r.Method == http.MethodPut {
			s.s3Part(w, r, rest)
			return
		}
		s3Error(w, http.StatusNotFound, "NoSuchKey", "The specified key does not exist.")
	})
}
