package rpc

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/dmsfs/dmsfs/internal/backoff"
)

// Config says where and as whom to connect.
type Config struct {
	Addr     string      // host:port
	TLS      *tls.Config // nil: plain TCP
	User     string
	Password string
	// App is the application name the session reports (instname).
	App string
	// Conns bounds the connections (each a logged-in session) used at once.
	Conns int
	// Timeout bounds connecting and each wait for the server's next bytes.
	Timeout time.Duration
	// Attempts bounds how often a call that may be repeated is tried.
	Attempts int
	Logger   *slog.Logger
}

// ErrLogin is a login the server refused.
var ErrLogin = errors.New("enaio refused the login")

// LostError is a connection that broke during a call. Sent tells whether the
// whole request had gone out: then the server may have run the job, and only
// the caller can tell whether repeating it is safe.
type LostError struct {
	Job  string
	Sent bool
	Err  error
}

func (e *LostError) Error() string {
	if e.Sent {
		return fmt.Sprintf("enaio %s: connection lost before the answer (the job may have run): %v", e.Job, e.Err)
	}
	return fmt.Sprintf("enaio %s: connection lost: %v", e.Job, e.Err)
}

func (e *LostError) Unwrap() error { return e.Err }

// Failure is a job that ran and returned a non-zero code.
type Failure struct {
	Job   string
	Reply Reply
}

func (f *Failure) Error() string {
	return fmt.Sprintf("enaio %s failed: %s", f.Job, f.Reply.Message())
}

// Client is a pool of logged-in connections. Calls are sequential per
// connection (the protocol has no multiplexing), so concurrency comes from
// several connections.
type Client struct {
	cfg Config
	log *slog.Logger
	// slots holds a token per open connection, idle or busy: at most Conns.
	slots chan struct{}
	// idle holds open connections nobody is using.
	idle   chan *conn
	closed atomic.Bool
	// userGUID is the logged-in user's GUID, from krn.SessionLogin.
	userGUID atomic.Value // string
}

// UserGUID is the logged-in user's GUID ("" before the first login), which
// write jobs pass as JobUserGUID.
func (c *Client) UserGUID() string {
	g, _ := c.userGUID.Load().(string)
	return g
}

type conn struct {
	nc      net.Conn
	session string
}

// Dial logs in once, so that wrong credentials or a wrong address fail here
// with a clear message, and keeps that connection for the first call.
// The waits between attempts: after a login the connection lost, and
// between attempts of a call.
var (
	loginRetry = backoff.Policy{Base: 100 * time.Millisecond, Max: 2 * time.Second}
	callRetry  = backoff.Policy{Base: 100 * time.Millisecond, Max: 3 * time.Second, Jitter: true}
)

func Dial(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.Conns <= 0 {
		cfg.Conns = 4
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Minute
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = 6
	}
	if cfg.App == "" {
		cfg.App = "dmsfs"
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Client{cfg: cfg, log: log, slots: make(chan struct{}, cfg.Conns), idle: make(chan *conn, cfg.Conns)}
	c.slots <- struct{}{}
	var cn *conn
	var err error
	for attempt := range cfg.Attempts {
		cn, err = c.connect(ctx)
		var lost *LostError
		if err == nil || !errors.As(err, &lost) || ctx.Err() != nil {
			break
		}
		// A connection that broke during the login is tried again.
		log.Info("enaio: login interrupted, trying again", "attempt", attempt+1, "err", err)
		if serr := backoff.Sleep(ctx, loginRetry.Delay(attempt+1)); serr != nil {
			err = fmt.Errorf("%w (last: %v)", serr, err)
			break
		}
	}
	if err != nil {
		return nil, err
	}
	c.idle <- cn
	return c, nil
}

// connect dials and runs the session sequence: attach, properties, login.
func (c *Client) connect(ctx context.Context) (*conn, error) {
	d := net.Dialer{Timeout: c.cfg.Timeout}
	nc, err := d.DialContext(ctx, "tcp", c.cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("connect to enaio at %s: %w", c.cfg.Addr, err)
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	if c.cfg.TLS != nil {
		t := tls.Client(nc, c.cfg.TLS)
		_ = t.SetDeadline(time.Now().Add(c.cfg.Timeout))
		if err := t.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, fmt.Errorf("TLS with enaio at %s: %w", c.cfg.Addr, err)
		}
		nc = t
	}
	cn := &conn{nc: nc}
	fail := func(err error) (*conn, error) {
		nc.Close()
		return nil, err
	}
	rep, err := c.once(ctx, cn, Request{Job: "krn.SessionAttach", Params: []Param{
		{Name: "Flags", Type: Integer, Value: "0"}, {Name: "SessionGUID", Type: String, Value: ""}}}, nil)
	if err != nil {
		return fail(err)
	}
	cn.session, _ = rep.Get("SessionGUID")
	host, _ := os.Hostname()
	ip := "127.0.0.1"
	if a, ok := nc.LocalAddr().(*net.TCPAddr); ok {
		ip = a.IP.String()
	}
	if _, err := c.once(ctx, cn, Request{Job: "krn.SessionPropertiesSet", Params: []Param{
		{Name: "Flags", Type: Integer, Value: "0"},
		{Name: "Properties", Type: String, Value: "instname;statname;address"},
		{Name: "instname", Type: String, Value: c.cfg.App},
		{Name: "statname", Type: String, Value: host},
		{Name: "address", Type: String, Value: ip + "=dummy"},
	}}, nil); err != nil {
		return fail(err)
	}
	pw, err := ObfuscatePassword(c.cfg.Password)
	if err != nil {
		return fail(fmt.Errorf("%w: %v", ErrLogin, err))
	}
	rep, err = c.once(ctx, cn, Request{Job: "krn.SessionLogin", Params: []Param{
		{Name: "Flags", Type: Integer, Value: "0"},
		{Name: "UserName", Type: String, Value: c.cfg.User},
		{Name: "UserPwd", Type: String, Value: pw},
	}}, nil)
	var f *Failure
	if errors.As(err, &f) {
		return fail(fmt.Errorf("%w for user %q: %s", ErrLogin, c.cfg.User, f.Reply.Message()))
	}
	if err != nil {
		return fail(err)
	}
	if desc, _ := rep.Get("Description"); desc != "" {
		return fail(fmt.Errorf("%w for user %q: %s", ErrLogin, c.cfg.User, desc))
	}
	if g, _ := rep.Get("UserGUID"); g != "" {
		c.userGUID.Store(g)
	}
	c.log.Debug("enaio session", "addr", c.cfg.Addr, "user", c.cfg.User)
	return cn, nil
}

// once runs one call on one connection. Transport failures come back as
// *LostError, job failures as *Failure.
func (c *Client) once(ctx context.Context, cn *conn, req Request, sink Sink) (Reply, error) {
	stop := context.AfterFunc(ctx, func() { cn.nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	cn.nc.SetDeadline(time.Now().Add(c.cfg.Timeout))
	if err := WriteRequest(deadlineWriter{cn.nc, c.cfg.Timeout}, req); err != nil {
		return Reply{}, &LostError{Job: req.Job, Err: ctxErr(ctx, err)}
	}
	rep, err := ReadReply(deadlineReader{cn.nc, c.cfg.Timeout}, sink)
	if err != nil {
		return Reply{}, &LostError{Job: req.Job, Sent: true, Err: ctxErr(ctx, err)}
	}
	if rep.Return != 0 {
		return rep, &Failure{Job: req.Job, Reply: rep}
	}
	return rep, nil
}

func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return err
}

// deadlineReader and deadlineWriter push the deadline forward with every
// read or write: the timeout is for a stalled server, not a long transfer.
type deadlineReader struct {
	nc net.Conn
	d  time.Duration
}

func (r deadlineReader) Read(p []byte) (int, error) {
	r.nc.SetReadDeadline(time.Now().Add(r.d))
	return r.nc.Read(p)
}

type deadlineWriter struct {
	nc net.Conn
	d  time.Duration
}

func (w deadlineWriter) Write(p []byte) (int, error) {
	w.nc.SetWriteDeadline(time.Now().Add(w.d))
	return w.nc.Write(p)
}

// Call runs a job. Repeatable calls (reads) are retried on a new connection,
// after a new login, when the connection breaks or a reply arrives
// corrupted. Others are retried only when the request never fully went out;
// otherwise the *LostError (Sent) goes back to the caller, which knows how to
// check what happened. A sink may be called again on a retry: it must start
// over (reset what it received) when called with i == 0.
func (c *Client) Call(ctx context.Context, req Request, sink Sink, repeatable bool) (Reply, error) {
	if req.Files != nil && repeatable {
		return Reply{}, errors.New("a call with files cannot be repeated (the readers are consumed)")
	}
	var last error
	for attempt := range c.cfg.Attempts {
		if attempt > 0 {
			wait := callRetry.Delay(attempt)
			c.log.Info("enaio: reconnecting", "job", req.Job, "attempt", attempt+1, "after", wait.Round(time.Millisecond), "err", last)
			if err := backoff.Sleep(ctx, wait); err != nil {
				return Reply{}, fmt.Errorf("%w (last: %v)", err, last)
			}
		}
		cn, err := c.get(ctx)
		if err != nil {
			if errors.Is(err, ErrLogin) || ctx.Err() != nil {
				return Reply{}, err
			}
			last = err
			continue
		}
		rep, err := c.once(ctx, cn, req, sink)
		var lost *LostError
		if !errors.As(err, &lost) {
			c.put(cn) // success or job failure: the connection is fine
			return rep, err
		}
		c.drop(cn)
		last = err
		if ctx.Err() != nil {
			return Reply{}, err
		}
		// Files are readers that are now consumed: the caller makes new
		// ones if it wants to try again.
		if !repeatable && (lost.Sent || len(req.Files) > 0) {
			return Reply{}, err
		}
	}
	return Reply{}, fmt.Errorf("enaio %s: gave up after %d attempts: %w", req.Job, c.cfg.Attempts, last)
}

// get returns an idle connection or opens one, waiting while all are busy.
func (c *Client) get(ctx context.Context) (*conn, error) {
	if c.closed.Load() {
		return nil, errors.New("enaio client closed")
	}
	select {
	case cn := <-c.idle:
		return cn, nil
	default:
	}
	select {
	case cn := <-c.idle:
		return cn, nil
	case c.slots <- struct{}{}:
		cn, err := c.connect(ctx)
		if err != nil {
			<-c.slots
			return nil, err
		}
		return cn, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// put returns a healthy connection to the pool.
func (c *Client) put(cn *conn) {
	if c.closed.Load() {
		c.drop(cn)
		return
	}
	c.idle <- cn
}

// drop closes a connection and frees its slot.
func (c *Client) drop(cn *conn) {
	cn.nc.Close()
	<-c.slots
}

// Close closes the idle connections; busy ones close when their call ends.
func (c *Client) Close() error {
	c.closed.Store(true)
	for {
		select {
		case cn := <-c.idle:
			c.drop(cn)
		default:
			return nil
		}
	}
}

// Int returns an INTEGER parameter.
func Int(name string, v int) Param { return Param{Name: name, Type: Integer, Value: strconv.Itoa(v)} }

// Str returns a STRING parameter.
func Str(name, v string) Param { return Param{Name: name, Type: String, Value: v} }

var _ io.Reader = deadlineReader{}
