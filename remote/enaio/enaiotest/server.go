// Package enaiotest is an enaio application server for tests: it speaks the
// native job protocol (remote/enaio/rpc) over TCP or TLS and holds a small
// DMS — two cabinets with folder, register and document types, documents
// with several files, and history with version-created entries — kept in a
// data directory. Switches drop connections and corrupt digests.
package enaiotest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dmsfs/dmsfs/remote/enaio/dmsxml"
	"github.com/dmsfs/dmsfs/remote/enaio/rpc"
)

// Options configure a server.
type Options struct {
	// Users maps user names to passwords.
	Users map[string]string
	// TLS serves TLS with a self-signed certificate for "AppServer", like an
	// enaio installation's (no host name in it).
	TLS bool
	// MaxPage caps GetResultList's page size (default 100), so clients
	// must page.
	MaxPage int
	Logger  *slog.Logger
}

// Server is a running test server.
type Server struct {
	opts Options
	dir  string
	ln   net.Listener
	cert []byte // PEM, with TLS
	log  *slog.Logger

	mu    sync.Mutex // guards st, dirty, conns, lastUpdate, lastOptions
	st    *state
	dirty bool
	conns map[net.Conn]bool
	// lastUpdate and lastOptions are the last update's data (LastUpdate).
	lastUpdate  dmsxml.DataObject
	lastOptions string

	saveKick chan struct{}
	done     chan struct{}
	wg       sync.WaitGroup

	jobs      atomic.Int64
	dropEvery atomic.Int64
	drops     atomic.Int64
	corrupt   atomic.Int64
	logins    atomic.Int64
	jobCounts sync.Map // job name → *atomic.Int64
	closed    atomic.Bool
	closeOnce sync.Once
}

// TestUser and TestPassword are the credentials Start sets up.
const (
	TestUser     = "dmsfs"
	TestPassword = "test-only-not-a-secret"
)

// Start runs a server on a free loopback port with its data in a temporary
// directory, stopped when the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	if opts.Users == nil {
		opts.Users = map[string]string{TestUser: TestPassword}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(t.TempDir(), ln, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// New serves the DMS kept in dir on ln. A new directory gets a few sample
// objects.
func New(dir string, ln net.Listener, opts Options) (*Server, error) {
	if opts.MaxPage <= 0 {
		opts.MaxPage = 100
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(filepath.Join(dir, "blobs"), 0o700); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o700); err != nil {
		return nil, err
	}
	st, err := load(dir)
	if err != nil {
		return nil, err
	}
	s := &Server{opts: opts, dir: dir, log: log, st: st, conns: map[net.Conn]bool{},
		saveKick: make(chan struct{}, 1), done: make(chan struct{})}
	if len(st.Objects) == 0 {
		if err := s.seed(); err != nil {
			return nil, err
		}
		if err := st.save(dir); err != nil {
			return nil, err
		}
	}
	if opts.TLS {
		cert, pemBytes, err := selfSigned()
		if err != nil {
			return nil, err
		}
		s.cert = pemBytes
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}})
	}
	s.ln = ln
	s.wg.Add(2)
	go s.accept()
	go s.saver()
	return s, nil
}

// Addr is host:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// CertPEM is the server certificate (with TLS), the CA a client must trust.
func (s *Server) CertPEM() []byte { return s.cert }

// DropEvery makes every n-th job (0: none) lose its connection, in turn
// before the job runs, after it ran but before the answer, and halfway
// through the answer.
func (s *Server) DropEvery(n int) { s.dropEvery.Store(int64(n)) }

// Drops counts dropped connections.
func (s *Server) Drops() int { return int(s.drops.Load()) }

// CorruptDigests makes the next n answers carry a wrong digest.
func (s *Server) CorruptDigests(n int) { s.corrupt.Store(int64(n)) }

// Jobs counts calls of one job (all jobs when name is empty).
func (s *Server) Jobs(name string) int {
	if name == "" {
		return int(s.jobs.Load())
	}
	if c, ok := s.jobCounts.Load(name); ok {
		return int(c.(*atomic.Int64).Load())
	}
	return 0
}

// LastUpdate is the object of the last dms.XMLUpdate that took effect,
// with the job's options: what a client sent, field by field.
func (s *Server) LastUpdate() (dmsxml.DataObject, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastUpdate, s.lastOptions
}

// Logins counts successful logins.
func (s *Server) Logins() int { return int(s.logins.Load()) }

// Close stops the server and writes its state.
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.ln.Close()
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		close(s.done)
		s.wg.Wait()
		err = s.flush()
	})
	return err
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed.Load() {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = true
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serve(c)
	}
}

// session is one connection's state.
type session struct {
	guid     string
	user     string
	userGUID string
	loggedIn bool
}

func (s *Server) serve(c net.Conn) {
	defer s.wg.Done()
	defer func() {
		c.Close()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	var sess session
	for {
		var in []*hashFile
		req, err := rpc.ReadRequest(c, func(i int, ext string, size int64) (io.Writer, error) {
			f, err := os.CreateTemp(filepath.Join(s.dir, "tmp"), "in-*")
			if err != nil {
				return nil, err
			}
			hf := &hashFile{File: f, h: sha256.New(), ext: ext, size: size}
			in = append(in, hf)
			return hf, nil
		})
		for _, f := range in {
			f.Close()
		}
		if err != nil {
			removeAll(in)
			if !errors.Is(err, io.EOF) && !s.closed.Load() {
				s.log.Debug("enaiotest: bad request", "err", err)
			}
			return
		}
		n := s.jobs.Add(1)
		c2, _ := s.jobCounts.LoadOrStore(req.Job, new(atomic.Int64))
		c2.(*atomic.Int64).Add(1)
		drop := -1
		if every := s.dropEvery.Load(); every > 0 && n%every == 0 {
			drop = int(s.drops.Add(1) % 3)
		}
		if drop == 0 { // before the job runs
			removeAll(in)
			return
		}
		rep, files := s.run(&sess, req, in)
		removeAll(in)
		if drop == 1 { // the job ran; the answer is lost
			closeFiles(files)
			return
		}
		var w io.Writer = c
		var cut *cutWriter
		if drop == 2 {
			cut = &cutWriter{w: c, left: 30}
			w = cut
		}
		var flip *flipLast
		if s.corrupt.Load() > 0 && s.corrupt.Add(-1) >= 0 {
			flip = &flipLast{w: w}
			w = flip
		}
		err = rpc.WriteReply(w, rep, files)
		closeFiles(files)
		if err == nil && flip != nil {
			err = flip.Close()
		}
		if err != nil || cut != nil {
			return
		}
	}
}

func removeAll(in []*hashFile) {
	for _, f := range in {
		os.Remove(f.Name()) // gone already when the job kept it
	}
}

func closeFiles(fs []rpc.File) {
	for _, f := range fs {
		if c, ok := f.R.(io.Closer); ok {
			c.Close()
		}
	}
}

// hashFile is a received stream: a temp file and its SHA-256.
type hashFile struct {
	*os.File
	h interface {
		io.Writer
		Sum([]byte) []byte
	}
	ext  string
	size int64
}

func (f *hashFile) Write(p []byte) (int, error) {
	f.h.Write(p)
	return f.File.Write(p)
}

// cutWriter writes left bytes and then fails: a connection that broke in
// the middle of an answer.
type cutWriter struct {
	w    io.Writer
	left int
}

func (c *cutWriter) Write(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, errors.New("cut")
	}
	n := min(len(p), c.left)
	c.left -= n
	m, err := c.w.Write(p[:n])
	if err == nil && n < len(p) {
		err = errors.New("cut")
	}
	return m, err
}

// flipLast passes everything through but holds back the last byte, which
// Close writes inverted: the frame's digest no longer matches.
type flipLast struct {
	w    io.Writer
	last []byte
}

func (f *flipLast) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	out := append(f.last, p[:len(p)-1]...)
	f.last = []byte{p[len(p)-1]}
	if _, err := f.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (f *flipLast) Close() error {
	if len(f.last) == 0 {
		return nil
	}
	_, err := f.w.Write([]byte{f.last[0] ^ 0xFF})
	return err
}

// markDirty schedules a save; saves happen at most every 200 ms.
func (s *Server) markDirty() {
	s.dirty = true
	select {
	case s.saveKick <- struct{}{}:
	default:
	}
}

func (s *Server) saver() {
	defer s.wg.Done()
	for {
		select {
		case <-s.done:
			return
		case <-s.saveKick:
		}
		if err := s.flush(); err != nil {
			s.log.Error("enaiotest: save", "err", err)
		}
		select {
		case <-s.done:
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (s *Server) flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.dirty {
		return nil
	}
	s.dirty = false
	return s.st.save(s.dir)
}

// selfSigned makes a certificate for "AppServer" without host names: the
// client has to check the chain and ignore the name, as with enaio's own
// certificates (spec §2.1.1).
func selfSigned() (tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "AppServer", Organization: []string{"enaiotest"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	return cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}
