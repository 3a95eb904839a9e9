package axelortest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a Server.
type Options struct {
	// Users are the accepted logins (user name → password).
	Users map[string]string
	// APIKeys are accepted API-KEY header values (key → user name).
	APIKeys map[string]string
	// Admins bypass permission checks, like the "admin" user (always one)
	// and members of the admins group; everyone else is an ordinary user
	// (perms.go).
	Admins map[string]bool
	// MFAUsers must pass a second factor: their login answers with a route.
	MFAUsers map[string]bool
	// SessionTimeout is the idle time after which a session expires (60 min).
	SessionTimeout time.Duration
	// NoRange makes downloads ignore Range, as a proxy that strips it does.
	NoRange bool
	// BlockPattern is the server's data.upload.blocklist.pattern: uploads
	// of matching names are refused with 400 "File name is not allowed"
	// (specs/axelor.md §5 step 7; MetaFiles.checkPath).
	BlockPattern *regexp.Regexp
	// Now is the clock (time.Now if nil).
	Now func() time.Time
}

// Server is the Axelor test server. Serve its Handler over HTTP.
type Server struct {
	opts  Options
	st    *store
	write sync.Mutex // serialises changes, like database transactions

	mu       sync.Mutex
	sessions map[string]*session // guarded by mu
	faults   []*fault            // guarded by mu

	// BytesServed counts download body bytes; MaxChunk is the largest
	// upload chunk received; Requests counts requests by "METHOD path
	// prefix" (the path up to the first numeric segment).
	BytesServed atomic.Int64
	MaxChunk    atomic.Int64
	reqMu       sync.Mutex
	requests    map[string]int
}

type session struct {
	user     string
	lastSeen time.Time
}

// fault makes matching requests fail.
type fault struct {
	method, pathPrefix string
	skip, remaining    int
	// status is the HTTP status to answer; 200 means a JSON envelope with
	// status -1 and message.
	status  int
	message string
}

// New opens (creating if needed) a server whose data lives in dir.
func New(dir string, opts Options) (*Server, error) {
	st, err := openStore(dir)
	if err != nil {
		return nil, err
	}
	if opts.SessionTimeout <= 0 {
		opts.SessionTimeout = 60 * time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Server{opts: opts, st: st, sessions: map[string]*session{}, requests: map[string]int{}}, nil
}

// Close closes the data store.
func (s *Server) Close() error { return s.st.db.Close() }

// ExpireSessions ends every session, as an idle timeout does.
func (s *Server) ExpireSessions() {
	s.mu.Lock()
	s.sessions = map[string]*session{}
	s.mu.Unlock()
}

// Fail makes the next n requests whose method and path start as given fail:
// with HTTP status, or, for status 200, with Axelor's status -1 envelope
// carrying message.
func (s *Server) Fail(method, pathPrefix string, n, status int, message string) {
	s.mu.Lock()
	s.faults = append(s.faults, &fault{method: method, pathPrefix: pathPrefix, remaining: n, status: status, message: message})
	s.mu.Unlock()
}

// FailAfter lets skip matching requests pass and then fails one, as Fail.
func (s *Server) FailAfter(method, pathPrefix string, skip, status int, message string) {
	s.mu.Lock()
	s.faults = append(s.faults, &fault{method: method, pathPrefix: pathPrefix, skip: skip, remaining: 1, status: status, message: message})
	s.mu.Unlock()
}

// Requests is how many requests matched "METHOD /path/prefix".
func (s *Server) Requests(methodAndPrefix string) int {
	s.reqMu.Lock()
	defer s.reqMu.Unlock()
	n := 0
	for k, v := range s.requests {
		if strings.HasPrefix(k, methodAndPrefix) {
			n += v
		}
	}
	return n
}

func (s *Server) takeFault(r *http.Request) *fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.faults {
		if f.remaining > 0 && (f.method == "" || f.method == r.Method) && strings.HasPrefix(r.URL.Path, f.pathPrefix) {
			if f.skip > 0 {
				f.skip--
				continue
			}
			f.remaining--
			return f
		}
	}
	return nil
}

// Handler serves the Axelor endpoints.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /callback", s.login)
	mux.HandleFunc("GET /logout", s.logout)
	mux.HandleFunc("GET /ws/public/app/info", s.info)
	ws := http.NewServeMux()
	const rest = "/ws/rest/" + dmsModel
	ws.HandleFunc("POST "+rest+"/search", s.search)
	ws.HandleFunc("PUT "+rest, s.save)
	ws.HandleFunc("POST "+rest, s.save)
	ws.HandleFunc("POST "+rest+"/removeAll", s.removeAll)
	ws.HandleFunc("GET "+rest+"/perms", s.permsEndpoint)
	ws.HandleFunc("POST "+rest+"/{id}", s.update)
	ws.HandleFunc("DELETE "+rest+"/{id}", s.remove)
	ws.HandleFunc("POST "+rest+"/{id}/remove", s.remove)
	ws.HandleFunc("GET /ws/dms/attachments/{model}/{id}", s.attachments)
	ws.HandleFunc("PUT /ws/dms/attachments/{model}/{id}", s.attach)
	ws.HandleFunc("POST /ws/rest/"+tagModel+"/search", s.tagSearch)
	ws.HandleFunc("PUT /ws/rest/"+tagModel, s.tagSave)
	ws.HandleFunc("POST /ws/rest/"+metaModel+"/{id}", s.metaUpdate)
	ws.HandleFunc("GET /ws/dms/download/{id}", s.download)
	ws.HandleFunc("POST /ws/files/upload", s.upload)
	ws.HandleFunc("DELETE /ws/files/upload/{id}", s.abortUpload)
	mux.Handle("/ws/", s.authenticated(ws))
	return s.count(s.inject(mux))
}

func (s *Server) count(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		for i, seg := range strings.Split(p, "/") {
			if seg != "" && seg[0] >= '0' && seg[0] <= '9' {
				p = strings.Join(strings.Split(p, "/")[:i], "/")
				break
			}
		}
		s.reqMu.Lock()
		s.requests[r.Method+" "+p]++
		s.reqMu.Unlock()
		next.ServeHTTP(w, r)
	})
}

func (s *Server) inject(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f := s.takeFault(r)
		switch {
		case f == nil:
			next.ServeHTTP(w, r)
		case f.status == http.StatusOK:
			io.Copy(io.Discard, r.Body)
			writeJSON(w, map[string]any{"status": -1, "data": map[string]any{"message": f.message, "title": "Error"}})
		default:
			io.Copy(io.Discard, r.Body)
			if f.status == http.StatusServiceUnavailable {
				w.Header().Set("Retry-After", "1")
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(f.status)
			json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"message": f.message}})
		}
	})
}

// isXHR is Axelor's exact-string test for "AJAX or browser".
func isXHR(r *http.Request) bool {
	return r.Header.Get("X-Requested-With") == "XMLHttpRequest" ||
		r.Header.Get("Accept") == "application/json" ||
		r.Header.Get("Content-Type") == "application/json"
}

func newToken() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Content-Type") != "application/json" {
		// The JSON extractor compares the type literally; anything else is a
		// form login, which this server does not offer.
		http.Error(w, "unsupported login", http.StatusUnauthorized)
		return
	}
	var body struct{ Username, Password string }
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		http.Error(w, "bad login body", http.StatusUnauthorized)
		return
	}
	want, ok := s.opts.Users[body.Username]
	if !ok || want != body.Password {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if s.opts.MFAUsers[body.Username] {
		writeJSON(w, map[string]any{"route": map[string]any{"path": "/mfa",
			"state": map[string]any{"methods": []string{"TOTP"}, "username": body.Username}}})
		return
	}
	sid := newToken()
	s.mu.Lock()
	s.sessions[sid] = &session{user: body.Username, lastSeen: s.opts.Now()}
	s.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: "JSESSIONID", Value: sid, Path: "/", HttpOnly: true})
	if r.Header.Get("Origin") != "" {
		// The CSRF token is issued only where CSRF is checked: requests
		// with an Origin header (AxelorCsrfMatcher, axelor-core
		// com/axelor/auth/pac4j/AxelorCsrfMatcher.java; spec §1.4).
		csrf := newToken()
		http.SetCookie(w, &http.Cookie{Name: "CSRF-TOKEN", Value: csrf, Path: "/"})
		w.Header().Set("X-CSRF-Token", csrf)
	}
	writeJSON(w, map[string]any{})
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie("JSESSIONID"); err == nil {
		s.mu.Lock()
		delete(s.sessions, c.Value)
		s.mu.Unlock()
	}
	w.WriteHeader(http.StatusOK)
}

// user returns the authenticated user of a request, if any.
func (s *Server) user(r *http.Request) (string, bool) {
	if k := r.Header.Get("API-KEY"); k != "" {
		u, ok := s.opts.APIKeys[k]
		return u, ok
	}
	c, err := r.Cookie("JSESSIONID")
	if err != nil {
		return "", false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sess := s.sessions[c.Value]
	now := s.opts.Now()
	if sess == nil || now.Sub(sess.lastSeen) > s.opts.SessionTimeout {
		delete(s.sessions, c.Value)
		return "", false
	}
	sess.lastSeen = now
	return sess.user, true
}

func (s *Server) authenticated(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := s.user(r); !ok {
			if r.Header.Get("API-KEY") != "" || isXHR(r) {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			http.Redirect(w, r, "/login.jsp", http.StatusFound)
			return
		}
		if r.Header.Get("Origin") != "" && r.Method != http.MethodGet && r.Header.Get("API-KEY") == "" {
			c, err := r.Cookie("CSRF-TOKEN")
			if err != nil || r.Header.Get("X-CSRF-Token") != c.Value {
				w.WriteHeader(http.StatusForbidden)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) info(w http.ResponseWriter, r *http.Request) {
	out := map[string]any{"application": map[string]any{"name": "axelortest"},
		"data": map[string]any{"upload": map[string]any{"maxSize": 5}}}
	if u, ok := s.user(r); ok {
		out["user"] = map[string]any{"login": u, "name": u}
	}
	writeJSON(w, out)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// ok writes a success envelope.
func ok(w http.ResponseWriter, data []map[string]any, total int) {
	env := map[string]any{"status": 0, "data": data}
	if total >= 0 {
		env["offset"], env["total"] = 0, total
	}
	writeJSON(w, env)
}

// failure writes Axelor's HTTP 200 failure envelope.
func failure(w http.ResponseWriter, status int, title, message string, extra map[string]any) {
	data := map[string]any{"title": title, "message": message}
	for k, v := range extra {
		data[k] = v
	}
	writeJSON(w, map[string]any{"status": status, "data": data})
}

// javaTime prints a time as Axelor does: UTC ISO, with zero seconds and
// fraction left out.
func javaTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	t = t.UTC().Truncate(time.Microsecond)
	switch {
	case t.Nanosecond() == 0 && t.Second() == 0:
		return t.Format("2006-01-02T15:04Z")
	case t.Nanosecond() == 0:
		return t.Format("2006-01-02T15:04:05Z")
	case t.Nanosecond()%int(time.Millisecond) == 0:
		return t.Format("2006-01-02T15:04:05.000Z")
	}
	return t.Format("2006-01-02T15:04:05.000000Z")
}
