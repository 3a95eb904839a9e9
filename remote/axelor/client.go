// Package axelor is a Repository for Axelor Open Platform's DMS
// (../shared/specs/axelor.md): folders and documents are DMSFile records,
// content is uploaded in chunks as MetaFiles and re-pointed with the
// record's optimistic-lock version, and since Axelor keeps no content
// history, each replaced MetaFile is kept as a DMS attachment of the
// document (spec §7.2), which the server deletes together with it.
package axelor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dmsfs/dmsfs/internal/backoff"
	"github.com/dmsfs/dmsfs/internal/httpx"
	"github.com/dmsfs/dmsfs/remote"
)

const (
	dmsModel = "com.axelor.dms.db.DMSFile"
	restPath = "/ws/rest/" + dmsModel
	// RootID is the DMS root (the nodes whose parent is NULL).
	RootID = remote.ID("root")
	// ChunkSize is the largest upload request, as the web client sends.
	ChunkSize = 1_000_000
	pageSize  = 500
)

// Config configures a Client.
type Config struct {
	// BaseURL is the web-app root, e.g. https://erp.example.com/axelor.
	BaseURL string
	// User and Password log in with a session; APIKey is the alternative.
	User, Password string
	APIKey         string
	// HTTPClient is used with a cookie jar added and redirects disabled.
	HTTPClient *http.Client
	Logger     *slog.Logger
	// ChunkSize overrides the upload chunk size (tests).
	ChunkSize int
	// Timeout bounds connecting, waiting for an answer's headers and
	// waiting for the next bytes of its body (default 2 minutes); a stalled
	// server is then retried or reported.
	Timeout time.Duration
}

// Client talks to one Axelor server. It is safe for concurrent use.
type Client struct {
	base   string
	cfg    Config
	http   *http.Client
	log    *slog.Logger
	chunk  int
	loginM sync.Mutex // serialises logins

	sizeMu sync.Mutex
	sizes  map[remote.ID]fileInfo // known files, to clamp ranges without asking; guarded by sizeMu

	docs *newDocs // creates of documents, batched when uploads end together (batch.go)
}

var _ remote.Repository = (*Client)(nil)

// New makes a client and logs in (unless an API key is used).
func New(ctx context.Context, cfg Config) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(cfg.BaseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("axelor: base URL %q is not http(s)://host[:port][/path]", cfg.BaseURL)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Minute
	}
	// Parallel range reads and uploads reuse their connections: the default
	// transport keeps only two idle ones per host.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 32
	hc := &http.Client{Transport: tr}
	if cfg.HTTPClient != nil {
		c := *cfg.HTTPClient
		hc = &c
	}
	hc.Transport = httpx.WithTimeouts(hc.Transport, cfg.Timeout)
	jar, _ := cookiejar.New(nil)
	hc.Jar = jar
	// A redirect means "not logged in" (the login page); never follow it.
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c := &Client{base: u.String(), cfg: cfg, http: hc, log: cfg.Logger, chunk: cfg.ChunkSize, sizes: map[remote.ID]fileInfo{}}
	c.docs = &newDocs{c: c, wait: batchWait}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.chunk <= 0 {
		c.chunk = ChunkSize
	}
	if cfg.APIKey == "" {
		if cfg.User == "" {
			return nil, errors.New("axelor: a user name (or an API key) is needed")
		}
		if err := c.login(ctx); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (c *Client) Capabilities() remote.Capabilities {
	return remote.Capabilities{Versions: true, Ranges: true}
}

// login opens a session (POST /callback with a JSON body).
func (c *Client) login(ctx context.Context) error {
	body, _ := json.Marshal(map[string]string{"username": c.cfg.User, "password": c.cfg.Password})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/callback", bytes.NewReader(body))
	if err != nil {
		return err
	}
	c.headers(req, "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("axelor login at %s: %w: %v", c.base, remote.ErrUnavailable, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		return fmt.Errorf("axelor login as %q refused (wrong user name or password): %w", c.cfg.User, remote.ErrPermission)
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("axelor login at %s: HTTP %d: %w", c.base, resp.StatusCode, remote.ErrUnavailable)
	}
	var answer struct {
		Route *struct {
			Path string `json:"path"`
		} `json:"route"`
	}
	if json.Unmarshal(b, &answer) == nil && answer.Route != nil {
		return fmt.Errorf("axelor login as %q needs an interactive step (%s: second factor or password change); log in once in the browser, or use an API key: %w",
			c.cfg.User, answer.Route.Path, remote.ErrPermission)
	}
	c.log.Debug("axelor: logged in", "user", c.cfg.User)
	return nil
}

func (c *Client) headers(req *http.Request, contentType string) {
	req.Header.Set("Accept", "application/json")
	req.Header.Set("X-Requested-With", "XMLHttpRequest")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.cfg.APIKey != "" {
		req.Header.Set("API-KEY", c.cfg.APIKey)
	}
	if u, err := url.Parse(c.base); err == nil && c.http.Jar != nil {
		for _, ck := range c.http.Jar.Cookies(u) {
			if ck.Name == "CSRF-TOKEN" && req.Method != http.MethodGet {
				req.Header.Set("X-CSRF-Token", ck.Value)
			}
		}
	}
}

// send performs a request, logging in again once when the session expired
// (401, or a redirect to the login page) and retrying server failures with
// backoff when retry is set (the request is idempotent). body is re-read
// for each attempt.
func (c *Client) send(ctx context.Context, method, path, contentType string, body []byte, hdr http.Header, retry bool) (*http.Response, error) {
	relogged := false
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		c.headers(req, contentType)
		for k, v := range hdr {
			req.Header[k] = v
		}
		resp, err := c.http.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if retry && attempt < 4 {
				c.sleep(ctx, attempt, "")
				continue
			}
			return nil, fmt.Errorf("%s %s: %w: %v", method, path, remote.ErrUnavailable, err)
		}
		switch {
		case (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusFound || resp.StatusCode == http.StatusSeeOther) && !relogged && c.cfg.APIKey == "":
			resp.Body.Close()
			relogged = true
			c.log.Info("axelor: session expired, logging in again")
			if err := c.relogin(ctx); err != nil {
				return nil, err
			}
			continue
		case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusFound || resp.StatusCode == http.StatusSeeOther:
			resp.Body.Close()
			return nil, fmt.Errorf("%s %s: not authenticated (HTTP %d): %w", method, path, resp.StatusCode, remote.ErrPermission)
		case resp.StatusCode >= 500 && retry && attempt < 4:
			ra := resp.Header.Get("Retry-After")
			resp.Body.Close()
			c.sleep(ctx, attempt, ra)
			continue
		}
		return resp, nil
	}
}

func (c *Client) relogin(ctx context.Context) error {
	c.loginM.Lock()
	defer c.loginM.Unlock()
	return c.login(ctx)
}

// retryPolicy is the wait between retries of a failed request.
var retryPolicy = backoff.Policy{Base: 100 * time.Millisecond, Max: 30 * time.Second, Jitter: true}

func (c *Client) sleep(ctx context.Context, attempt int, retryAfter string) {
	d := retryPolicy.Delay(attempt + 1)
	if s, err := strconv.Atoi(retryAfter); err == nil && s > 0 {
		d = (backoff.Policy{Base: min(time.Duration(s)*time.Second, 30*time.Second), Jitter: true}).Delay(1)
	}
	_ = backoff.Sleep(ctx, d)
}

// envelope is Axelor's JSON service answer.
type envelope struct {
	Status int             `json:"status"`
	Total  int             `json:"total"`
	Data   json.RawMessage `json:"data"`
}

// call posts JSON to a service and returns the rows of a successful answer.
// HTTP 200 with status -1 is a failure carrying data.message.
func (c *Client) call(ctx context.Context, method, path string, in any, retry bool) ([]map[string]any, int, error) {
	raw, err := c.callRaw(ctx, method, path, in, retry)
	if err != nil {
		return nil, 0, err
	}
	return parseRows(method, path, raw)
}

// callRaw posts JSON to a service and returns the body of an HTTP 200.
func (c *Client) callRaw(ctx context.Context, method, path string, in any, retry bool) ([]byte, error) {
	body, err := json.Marshal(in)
	if err != nil {
		return nil, err
	}
	resp, err := c.send(ctx, method, path, "application/json", body, nil, retry)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w: %v", method, path, remote.ErrUnavailable, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s %s: HTTP %d: %s: %w", method, path, resp.StatusCode, snippet(raw), httpErr(resp.StatusCode))
	}
	return raw, nil
}

// parseRows reads a service answer: the rows of a success, or the
// failure it describes.
func parseRows(method, path string, raw []byte) ([]map[string]any, int, error) {
	var env envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		return nil, 0, fmt.Errorf("%s %s: %w: %v", method, path, remote.ErrProtocol, err)
	}
	if env.Status != 0 {
		return nil, 0, statusErr(method, path, env)
	}
	var rows []map[string]any
	if len(env.Data) > 0 && string(env.Data) != "null" {
		d := json.NewDecoder(bytes.NewReader(env.Data))
		d.UseNumber()
		if err := d.Decode(&rows); err != nil {
			return nil, 0, fmt.Errorf("%s %s: data is no list: %w", method, path, remote.ErrProtocol)
		}
	}
	return rows, env.Total, nil
}

// statusErr turns a failure envelope into an error with the server's
// message. Messages are translated, so the kind is read from the shape:
// entityId marks an optimistic-lock failure.
func statusErr(method, path string, env envelope) error {
	var d struct {
		Message  string          `json:"message"`
		Title    string          `json:"title"`
		EntityID json.RawMessage `json:"entityId"`
	}
	_ = json.Unmarshal(env.Data, &d)
	e := &statusError{method: method, path: path, status: env.Status, msg: strings.TrimSpace(d.Title + ": " + d.Message),
		kind: remote.ErrUnavailable}
	switch {
	case len(d.EntityID) > 0 && string(d.EntityID) != "null":
		e.kind = remote.ErrConflict
	case env.Status == -7:
		e.kind = remote.ErrPermission
	case env.Status == -4:
		e.kind = remote.ErrInvalidName
	}
	return e
}

// statusError is a failure envelope.
type statusError struct {
	method, path, msg string
	status            int
	kind              error
}

func (e *statusError) Error() string {
	return fmt.Sprintf("%s %s: server says %q (status %d): %v", e.method, e.path, e.msg, e.status, e.kind)
}

func (e *statusError) Unwrap() error { return e.kind }

// denied turns a refused change into a permission error when /perms says
// the user may not do action on one of ids (the root needs no right): the
// refusal's message is translated and its kind not in the answer (spec
// §3.1). Other errors come back as they are, so a refusal that is no
// permission matter stays one the queue retries.
func (c *Client) denied(ctx context.Context, err error, action string, ids ...remote.ID) error {
	var se *statusError
	if !errors.As(err, &se) || se.status != -1 || !errors.Is(se.kind, remote.ErrUnavailable) {
		return err
	}
	for _, id := range ids {
		if id == RootID || id == "" {
			continue
		}
		_, _, perr := c.call(ctx, http.MethodGet, restPath+"/perms?action="+action+"&id="+url.QueryEscape(string(id)), nil, true)
		var pe *statusError
		if errors.As(perr, &pe) && pe.status == -4 {
			return fmt.Errorf("axelor: %s (the user may not %s %s): %w", se.msg, action, id, remote.ErrPermission)
		}
	}
	return err
}

// httpErr is the error kind of an HTTP failure status. It prints as
// the kind and remembers the status: refused tells from it that the
// server answered.
func httpErr(code int) error {
	kind := remote.ErrUnavailable
	switch {
	case code == http.StatusNotFound:
		kind = remote.ErrNotFound
	case code == http.StatusForbidden:
		kind = remote.ErrPermission
	case code == http.StatusBadRequest:
		kind = remote.ErrInvalidName
	case code == http.StatusTooManyRequests || code == http.StatusConflict || code == http.StatusRequestTimeout:
		// ErrUnavailable: asking again may help.
	case code >= 400 && code < 500:
		kind = remote.ErrRefused // 413 too large, 415, 422: asking again will not help
	}
	return &statusCodeError{code: code, kind: kind}
}

type statusCodeError struct {
	code int
	kind error
}

func (e *statusCodeError) Error() string { return e.kind.Error() }
func (e *statusCodeError) Unwrap() error { return e.kind }

// refused tells whether err is the server's answer that it did not make a
// change: a failure envelope, or an HTTP status below 500. Anything else
// (no answer, a cut or garbled one, a gateway's 5xx) may follow a change
// the server made.
func refused(err error) bool {
	var se *statusError
	var ce *statusCodeError
	return errors.As(err, &se) || (errors.As(err, &ce) && ce.code < 500)
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

type fileInfo struct {
	name string
	size int64
	// description is the MetaFile's, which a new content takes over.
	description string
}

func (c *Client) remember(id remote.ID, f remote.File, description string) {
	c.sizeMu.Lock()
	c.sizes[id] = fileInfo{f.Name, f.Size, description}
	c.sizeMu.Unlock()
}

func (c *Client) known(id remote.ID) (fileInfo, bool) {
	c.sizeMu.Lock()
	defer c.sizeMu.Unlock()
	s, ok := c.sizes[id]
	return s, ok
}
