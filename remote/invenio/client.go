// Package invenio is a Repository for InvenioRDM and the NRP repositories
// built on it, over their REST API (../shared/specs/invenio.md).
//
// The mount root lists the user's records; each record is a folder holding
// the files of its working copy (the draft where one exists, else the latest
// published version). File keys holding "/" are shown as nested folders.
// Writes go to a draft only: a published record gets a new-version draft
// with its files imported, and nothing is ever published automatically
// (Publish does that when asked).
package invenio

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dmsfs/dmsfs/internal/backoff"
	"github.com/dmsfs/dmsfs/internal/httpx"
	"github.com/dmsfs/dmsfs/remote"
)

// Config says where the repository is and how to reach it.
type Config struct {
	// BaseURL is the repository's address, e.g. https://zenodo.org.
	BaseURL string
	// Token is a personal access token; it is sent only to BaseURL's host.
	Token  string
	Logger *slog.Logger
	// CacheDir holds whole-file downloads from servers that ignore Range,
	// and copies made for renames. Default: the system's temporary directory.
	CacheDir string
	// MultipartAbove is the size from which uploads use a multipart
	// transfer where the server offers one (default 64 MiB).
	MultipartAbove int64
	// PartSize is the multipart part size (default 32 MiB).
	PartSize int64
	// MaxRetryWait caps how long one 429 answer makes the client wait
	// (default 2 minutes).
	MaxRetryWait time.Duration
	// ChecksumWait is how long an upload waits for the checksum the
	// server computes in the background after a multipart commit before
	// it reads the file back to check it (default 1 minute).
	ChecksumWait time.Duration
	// Transport overrides the HTTP transport (tests, proxies, TLS
	// settings); Timeout applies to it too.
	Transport http.RoundTripper
	// Timeout bounds connecting, waiting for an answer's headers and
	// waiting for the next bytes of its body (default 2 minutes), so that a server that stalls makes a request
	// fail (and be retried or reported) instead of hanging the caller.
	Timeout time.Duration
}

// Repo is the Invenio repository client.
type Repo struct {
	cfg    Config
	base   *url.URL
	hc     *http.Client
	log    *slog.Logger
	search string // the user's records (search endpoint)
	create string // where drafts are created

	// mu guards the fields below. It is never held during a request; the
	// per-record locks in locks serialize the changes of one record.
	mu        sync.Mutex
	recs      map[string]*record         // working copy by parent (concept) id
	made      map[string]time.Time       // records created here, for search lag
	alias     map[remote.ID]remote.ID    // stable ID → current ID (after renames)
	minted    int                        // IDs stableID made up; guarded by mu
	stable    map[remote.ID]remote.ID    // current ID → stable ID
	vdirs     map[string]map[string]bool // parent id → empty folders made here
	locks     map[string]*sync.Mutex     // per parent id
	history   map[string][]fileEntry     // published version id → files (immutable)
	fileLists map[string]*fileCache      // last file list by parent id; see cachedFiles
	sums      map[string]string          // "multipart:…" checksum → md5 we uploaded
	noRange   bool                       // the server answered a ranged GET with 200
	whole     *wholeFiles
}

var _ remote.Repository = (*Repo)(nil)
var _ remote.Publisher = (*Repo)(nil)

// New connects to the repository: discovery, then a token check.
func New(ctx context.Context, cfg Config) (*Repo, error) {
	base, err := url.Parse(strings.TrimSuffix(cfg.BaseURL, "/"))
	if err != nil || base.Host == "" || (base.Scheme != "http" && base.Scheme != "https") {
		return nil, fmt.Errorf("invenio: %q is not an http(s) URL", cfg.BaseURL)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MultipartAbove <= 0 {
		cfg.MultipartAbove = 64 << 20
	}
	if cfg.PartSize <= 0 {
		cfg.PartSize = 32 << 20
	}
	if cfg.ChecksumWait <= 0 {
		cfg.ChecksumWait = time.Minute
	}
	if cfg.MaxRetryWait <= 0 {
		cfg.MaxRetryWait = 2 * time.Minute
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Minute
	}
	tr := cfg.Transport
	if tr == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 16
		tr = t
	}
	tr = httpx.WithTimeouts(tr, cfg.Timeout)
	r := &Repo{cfg: cfg, base: base, log: cfg.Logger,
		// Redirects are followed by hand, so that the token never goes to
		// another host and an expired signed URL can be asked for again.
		hc:   &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		recs: map[string]*record{}, made: map[string]time.Time{}, alias: map[remote.ID]remote.ID{},
		stable: map[remote.ID]remote.ID{}, vdirs: map[string]map[string]bool{}, locks: map[string]*sync.Mutex{},
		history: map[string][]fileEntry{}, fileLists: map[string]*fileCache{}, sums: map[string]string{}}
	r.whole = newWholeFiles(cfg.CacheDir)
	if err := r.discover(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// BaseURL is the repository's address.
func (r *Repo) BaseURL() string { return r.base.String() }

// Close removes temporary downloads.
func (r *Repo) Close() error { return r.whole.close() }

// Capabilities: history comes from published versions, made by Publish and
// not by each save; files are documents of their own.
func (r *Repo) Capabilities() remote.Capabilities {
	r.mu.Lock()
	defer r.mu.Unlock()
	return remote.Capabilities{Versions: true, VersionsOnPublish: true, Ranges: !r.noRange, ListsFields: true}
}

// discover finds the endpoints: NRP's /.well-known/repository/ when the
// server has it, InvenioRDM's fixed paths otherwise. It checks the token.
func (r *Repo) discover(ctx context.Context) error {
	r.search = r.base.String() + "/api/user/records"
	r.create = r.base.String() + "/api/records"
	var info struct {
		InvenioVersion string `json:"invenio_version"`
		Links          struct {
			Records string `json:"records"`
			Drafts  string `json:"drafts"`
		} `json:"links"`
	}
	err := r.getJSON(ctx, r.base.String()+"/.well-known/repository/", &info)
	switch {
	case err == nil && info.Links.Drafts != "" && info.Links.Records != "":
		r.search, r.create = info.Links.Drafts, info.Links.Records
		r.log.Debug("invenio: NRP discovery", "version", info.InvenioVersion, "records", r.create)
	case err == nil, errors.Is(err, remote.ErrNotFound), errors.Is(err, remote.ErrProtocol):
	default:
		return fmt.Errorf("invenio: %s: %w", r.base, err)
	}
	if err := r.getJSON(ctx, r.search+"?size=1&shared_with_me=false", &searchResult{}); err != nil {
		if errors.Is(err, errUnauthorized) {
			return fmt.Errorf("invenio: %s rejected the token (create one under Applications → Personal access tokens): %w", r.base.Host, err)
		}
		return fmt.Errorf("invenio: %s: %w", r.base, err)
	}
	return nil
}

// sameOrigin tells whether u is on the repository's own host, the only one
// that may see the token.
func (r *Repo) sameOrigin(u *url.URL) bool {
	return u.Scheme == r.base.Scheme && u.Host == r.base.Host
}

// body makes a request body that can be sent again on retry.
type body struct {
	data        []byte
	ra          io.ReaderAt
	off, size   int64
	contentType string
}

func jsonBody(v any) *body {
	b, _ := json.Marshal(v)
	return &body{data: b, size: int64(len(b)), contentType: "application/json"}
}

func (b *body) reader() io.Reader {
	if b.size == 0 {
		// Any other empty reader is sent chunked, without a
		// Content-Length, which RadosGW and uwsgi refuse.
		return http.NoBody
	}
	if b.ra != nil {
		return io.NewSectionReader(b.ra, b.off, b.size)
	}
	return bytes.NewReader(b.data)
}

// errUnauthorized marks a 401 (the token is missing, wrong or expired).
var errUnauthorized = fmt.Errorf("token rejected: %w", remote.ErrPermission)

// apiError is an error answer, with the server's message.
type apiError struct {
	Method, URL string
	Status      int
	Message     string
	kind        error
}

func (e *apiError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	return fmt.Sprintf("%s %s: %d %s", e.Method, e.URL, e.Status, msg)
}

func (e *apiError) Unwrap() error { return e.kind }

// errorFrom turns a non-success answer into an error, reading Invenio's
// {"status", "message", "errors"} body where there is one.
func errorFrom(resp *http.Response) error {
	var eb struct {
		Message string `json:"message"`
		Errors  []struct {
			Field    string   `json:"field"`
			Messages []string `json:"messages"`
		} `json:"errors"`
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(raw, &eb) != nil && len(raw) > 0 && !bytes.HasPrefix(raw, []byte("<")) {
		eb.Message = strings.TrimSpace(string(raw[:min(len(raw), 200)]))
	}
	msg := eb.Message
	for _, fe := range eb.Errors {
		msg += fmt.Sprintf("; %s: %s", fe.Field, strings.Join(fe.Messages, " "))
	}
	e := &apiError{Method: resp.Request.Method, URL: redact(resp.Request.URL), Status: resp.StatusCode, Message: msg}
	switch s := resp.StatusCode; {
	case s == 400 && strings.Contains(msg, "already exists"):
		e.kind = remote.ErrExist
	case s == 401:
		e.kind = errUnauthorized
	case s == 403 && strings.Contains(msg, "locked"):
		e.kind = remote.ErrReadOnly
	case s == 403:
		e.kind = remote.ErrPermission
	case s == 404 || s == 410:
		e.kind = remote.ErrNotFound
	case s == 409 || s == 412:
		e.kind = remote.ErrConflict
	case s == 429 || s >= 500:
		e.kind = remote.ErrUnavailable
	case s >= 400:
		e.kind = remote.ErrRefused // 400 validation, 413 too large, 415, 422: asking again will not help
	default:
		e.kind = remote.ErrProtocol
	}
	return e
}

// redact drops the query (signatures of storage URLs) from a URL for logs
// and messages.
func redact(u *url.URL) string {
	c := *u
	c.RawQuery = ""
	return c.String()
}

// do sends a request and returns the answer of any status. It waits out 429
// answers as Retry-After (or X-RateLimit-Reset) says, however many come, and
// retries network errors and 502/503/504 for idempotent methods.
func (r *Repo) do(ctx context.Context, method, rawURL string, b *body, hdr http.Header) (*http.Response, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("invenio: bad link %q: %w", rawURL, remote.ErrProtocol)
	}
	idempotent := method == http.MethodGet || method == http.MethodHead || method == http.MethodPut
	failures, throttled := 0, 0
	for {
		var rd io.Reader
		if b != nil {
			rd = b.reader()
		}
		req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
		if err != nil {
			return nil, err
		}
		for k, v := range hdr {
			req.Header[k] = v
		}
		if b != nil {
			req.ContentLength = b.size // always sent: RadosGW fails without it
			req.Header.Set("Content-Type", b.contentType)
		}
		if req.Header.Get("Accept") == "" {
			req.Header.Set("Accept", "application/json")
		}
		if r.sameOrigin(u) {
			req.Header.Set("Authorization", "Bearer "+r.cfg.Token)
		}
		resp, err := r.hc.Do(req)
		if err == nil && resp.StatusCode == http.StatusTooManyRequests && throttled < 50 {
			throttled++
			wait := retryAfter(resp, time.Now())
			resp.Body.Close()
			wait = min(wait, r.cfg.MaxRetryWait)
			r.log.Info("invenio: rate limited; waiting", "wait", wait.String(), "url", redact(u))
			if !sleep(ctx, wait) {
				return nil, ctx.Err()
			}
			continue
		}
		transient := err != nil && ctx.Err() == nil ||
			err == nil && (resp.StatusCode == 502 || resp.StatusCode == 503 || resp.StatusCode == 504)
		if transient && idempotent && failures < 4 {
			failures++
			if err == nil {
				resp.Body.Close()
			}
			r.log.Warn("invenio: retrying", "method", method, "url", redact(u), "attempt", failures, "err", errString(err, resp))
			if !sleep(ctx, retryPolicy.Delay(failures)) {
				return nil, ctx.Err()
			}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("invenio: %s %s: %w: %w", method, redact(u), remote.ErrUnavailable, err)
		}
		return resp, nil
	}
}

func errString(err error, resp *http.Response) string {
	if err != nil {
		return err.Error()
	}
	return resp.Status
}

// retryAfter reads how long a 429 asks to wait; 20 s when it does not say
// (as nrp-cmd does).
func retryAfter(resp *http.Response, now time.Time) time.Duration {
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(resp.Header.Get("Retry-After")); err == nil {
		return max(t.Sub(now), 0)
	}
	if s, err := strconv.ParseInt(resp.Header.Get("X-RateLimit-Reset"), 10, 64); err == nil {
		return max(time.Unix(s, 0).Sub(now), time.Second)
	}
	return 20 * time.Second
}

// retryPolicy is the wait between retries of an idempotent request.
var retryPolicy = backoff.Policy{Base: 250 * time.Millisecond, Max: 4 * time.Second, Jitter: true}

func sleep(ctx context.Context, d time.Duration) bool { return backoff.Sleep(ctx, d) == nil }

// call sends a request and decodes a JSON answer of one of the ok statuses
// into out (when out is not nil).
func (r *Repo) call(ctx context.Context, method, u string, b *body, hdr http.Header, out any, ok ...int) (*http.Response, error) {
	resp, err := r.do(ctx, method, u, b, hdr)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	good := len(ok) == 0 && resp.StatusCode/100 == 2
	for _, s := range ok {
		good = good || resp.StatusCode == s
	}
	if !good {
		return resp, errorFrom(resp)
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return resp, fmt.Errorf("invenio: %s %s: %w: %v", method, redact(resp.Request.URL), remote.ErrProtocol, err)
		}
	}
	return resp, nil
}

func (r *Repo) getJSON(ctx context.Context, u string, out any) error {
	_, err := r.call(ctx, http.MethodGet, u, nil, nil, out, http.StatusOK)
	return err
}
