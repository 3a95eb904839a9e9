// Package rpc speaks enaio's native TCP job protocol: a 20-byte ASCII
// header, a body with typed parameter blocks, file streams framed by
// "@ASSTREAM@" headers and footers, and a SHA-1 digest over everything after
// the header (specs/enaio.md §2.1). Encoding and decoding are symmetric, so
// the test server in enaiotest uses the same code to read requests and
// write replies.
package rpc

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"strconv"
	"strings"
)

// Type is a parameter's type id on the wire.
type Type uint32

const (
	String   Type = 1
	Integer  Type = 2
	Boolean  Type = 3
	Double   Type = 4
	DateTime Type = 5 // epoch milliseconds in 1.0.x clients; avoided by dmsfs (spec §9.3)
	Base64   Type = 6
	BigInt   Type = 8
)

// Param is one named, typed parameter. Value is the wire text: decimal for
// numbers, "1"/"0" for booleans, standard base64 for Base64.
type Param struct {
	Name  string
	Type  Type
	Value string
}

// ErrMalformed is a frame that does not follow the protocol.
var ErrMalformed = errors.New("malformed enaio frame")

// ErrDigest is a frame whose SHA-1 digest does not match its contents:
// corrupted on the way, so none of it may be used.
var ErrDigest = errors.New("enaio frame digest mismatch")

const (
	headerLen     = 20
	fileHeaderLen = 32
	fileFooter    = "@0000000000@MAERTSSA"
	digestLen     = sha1.Size
	extLen        = 10
	extPad        = 0x11
	// maxBody bounds a body's declared length; bodies hold parameters only
	// (files travel outside them), so even large XML answers stay far below.
	maxBody = 256 << 20
)

// header returns "L:BIN-" + LEN + "v50N" for a body of n bytes; LEN counts
// the body and the digest.
func header(n int) []byte {
	return fmt.Appendf(nil, "L:BIN-%010dv50N", n+digestLen)
}

// parseHeader returns the body length a header announces.
func parseHeader(h []byte) (int, error) {
	if len(h) != headerLen || string(h[:6]) != "L:BIN-" || string(h[16:]) != "v50N" {
		return 0, fmt.Errorf("%w: header %q", ErrMalformed, printable(h))
	}
	n, err := strconv.Atoi(string(h[6:16]))
	if err != nil || n < digestLen+1 || n-digestLen > maxBody {
		return 0, fmt.Errorf("%w: header length %q", ErrMalformed, h[6:16])
	}
	return n - digestLen, nil
}

// AppendParams appends a parameter block: BlockLen, Count, N descriptors
// (name offset, type, value offset, relative to Count) and the NUL-terminated
// names and values.
func AppendParams(b []byte, ps []Param) []byte {
	var data []byte
	desc := make([]byte, 0, 12*len(ps))
	base := 4 + 12*len(ps)
	for _, p := range ps {
		nameOff := base + len(data)
		data = append(append(data, p.Name...), 0)
		valOff := base + len(data)
		data = append(append(data, p.Value...), 0)
		desc = binary.BigEndian.AppendUint32(desc, uint32(nameOff))
		desc = binary.BigEndian.AppendUint32(desc, uint32(p.Type))
		desc = binary.BigEndian.AppendUint32(desc, uint32(valOff))
	}
	b = binary.BigEndian.AppendUint32(b, uint32(base+len(data)))
	b = binary.BigEndian.AppendUint32(b, uint32(len(ps)))
	b = append(b, desc...)
	return append(b, data...)
}

// ParseParams reads a parameter block from the start of b and returns the
// parameters and the rest of b.
func ParseParams(b []byte) ([]Param, []byte, error) {
	if len(b) < 8 {
		return nil, nil, fmt.Errorf("%w: parameter block shorter than 8 bytes", ErrMalformed)
	}
	blockLen := binary.BigEndian.Uint32(b)
	if blockLen < 4 || uint64(blockLen) > uint64(len(b)-4) {
		return nil, nil, fmt.Errorf("%w: parameter block length %d of %d bytes", ErrMalformed, blockLen, len(b)-4)
	}
	block, rest := b[4:4+blockLen], b[4+blockLen:]
	count := binary.BigEndian.Uint32(block)
	if uint64(count)*12 > uint64(len(block)-4) {
		return nil, nil, fmt.Errorf("%w: %d parameters do not fit in %d bytes", ErrMalformed, count, len(block))
	}
	ps := make([]Param, 0, count)
	for i := range int(count) {
		d := block[4+12*i:]
		name, err := cstring(block, binary.BigEndian.Uint32(d))
		if err != nil {
			return nil, nil, err
		}
		value, err := cstring(block, binary.BigEndian.Uint32(d[8:]))
		if err != nil {
			return nil, nil, err
		}
		ps = append(ps, Param{Name: name, Type: Type(binary.BigEndian.Uint32(d[4:])), Value: value})
	}
	return ps, rest, nil
}

// cstring returns the NUL-terminated string at off in b.
func cstring(b []byte, off uint32) (string, error) {
	if uint64(off) >= uint64(len(b)) {
		return "", fmt.Errorf("%w: string offset %d outside a %d-byte block", ErrMalformed, off, len(b))
	}
	end := bytes.IndexByte(b[off:], 0)
	if end < 0 {
		return "", fmt.Errorf("%w: string at %d has no terminating NUL", ErrMalformed, off)
	}
	return string(b[off : int(off)+end]), nil
}

// FileHeader returns the 32-byte stream header for size bytes with the
// extension ext (without dot, at most 10 bytes; longer ones are cut).
func FileHeader(size int64, ext string) []byte {
	if len(ext) > extLen {
		ext = ext[:extLen]
	}
	b := fmt.Appendf(nil, "@ASSTREAM@%010d@%s", size, ext)
	for range extLen - len(ext) {
		b = append(b, extPad)
	}
	return append(b, '@')
}

func parseFileHeader(h []byte) (int64, string, error) {
	if len(h) != fileHeaderLen || string(h[:10]) != "@ASSTREAM@" || h[20] != '@' || h[31] != '@' {
		return 0, "", fmt.Errorf("%w: stream header %q", ErrMalformed, printable(h))
	}
	size, err := strconv.ParseInt(string(h[10:20]), 10, 64)
	if err != nil || size < 0 {
		return 0, "", fmt.Errorf("%w: stream size %q", ErrMalformed, h[10:20])
	}
	// 1.0.x pads with 0x11, 0.x with NUL; both are stripped.
	ext := strings.TrimRight(string(h[21:31]), "\x11\x00")
	return size, ext, nil
}

// File is a stream to send: Size bytes from R, with extension Ext.
type File struct {
	Ext  string
	Size int64
	R    io.Reader
}

// Sink chooses where the i-th received stream goes. Returning nil discards
// it (after the digest has seen it).
type Sink func(i int, ext string, size int64) (io.Writer, error)

// writeFrame writes header, body, files and digest.
func writeFrame(w io.Writer, body []byte, files []File) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	h := sha1.New()
	out := io.MultiWriter(bw, h)
	if _, err := bw.Write(header(len(body))); err != nil {
		return err
	}
	if _, err := out.Write(body); err != nil {
		return err
	}
	for _, f := range files {
		if _, err := out.Write(FileHeader(f.Size, f.Ext)); err != nil {
			return err
		}
		n, err := io.Copy(out, io.LimitReader(f.R, f.Size))
		if err != nil {
			return fmt.Errorf("read the file to send: %w", err)
		}
		if n != f.Size {
			return fmt.Errorf("the file to send ended after %d of %d bytes", n, f.Size)
		}
		if _, err := out.Write([]byte(fileFooter)); err != nil {
			return err
		}
	}
	if _, err := bw.Write(h.Sum(nil)); err != nil {
		return err
	}
	return bw.Flush()
}

// readFrame reads a frame: the body whole, then streams counted by
// nstreams(body) into sink, then checks the digest. Stream bytes reach the
// sink before the digest is known; a caller that gets ErrDigest must throw
// away what the sink received.
func readFrame(r io.Reader, nstreams func(body []byte) (int, error), sink Sink) ([]byte, error) {
	hb := make([]byte, headerLen)
	if _, err := io.ReadFull(r, hb); err != nil {
		return nil, err
	}
	n, err := parseHeader(hb)
	if err != nil {
		return nil, err
	}
	h := sha1.New()
	// Grow with what arrives instead of trusting the announced length.
	var bb bytes.Buffer
	if _, err := io.CopyN(&bb, r, int64(n)); err != nil {
		return nil, unexpected(err)
	}
	body := bb.Bytes()
	h.Write(body)
	count, err := nstreams(body)
	if err != nil {
		return nil, err
	}
	for i := range count {
		if err := readStream(r, h, i, sink); err != nil {
			return nil, err
		}
	}
	sum := make([]byte, digestLen)
	if _, err := io.ReadFull(r, sum); err != nil {
		return nil, unexpected(err)
	}
	if !bytes.Equal(sum, h.Sum(nil)) {
		return nil, fmt.Errorf("%w: the data was corrupted on the way (got %x, computed %x)", ErrDigest, sum, h.Sum(nil))
	}
	return body, nil
}

func readStream(r io.Reader, h hash.Hash, i int, sink Sink) error {
	fh := make([]byte, fileHeaderLen)
	if _, err := io.ReadFull(r, fh); err != nil {
		return unexpected(err)
	}
	h.Write(fh)
	size, ext, err := parseFileHeader(fh)
	if err != nil {
		return err
	}
	var w io.Writer = io.Discard
	if sink != nil {
		sw, err := sink(i, ext, size)
		if err != nil {
			return err
		}
		if sw != nil {
			w = sw
		}
	}
	if _, err := io.CopyN(io.MultiWriter(w, h), r, size); err != nil {
		return unexpected(err)
	}
	ft := make([]byte, len(fileFooter))
	if _, err := io.ReadFull(r, ft); err != nil {
		return unexpected(err)
	}
	h.Write(ft)
	if string(ft) != fileFooter {
		return fmt.Errorf("%w: stream footer %q", ErrMalformed, printable(ft))
	}
	return nil
}

// unexpected turns a clean EOF in the middle of a frame into
// io.ErrUnexpectedEOF: the peer went away mid-frame.
func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

func printable(b []byte) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '.'
		}
		return r
	}, string(b))
}

// Request is a job call.
type Request struct {
	Job    string
	Params []Param
	Files  []File
}

// Get returns the value of the named parameter.
func Get(ps []Param, name string) (string, bool) {
	for _, p := range ps {
		if p.Name == name {
			return p.Value, true
		}
	}
	return "", false
}

// requestBody is 'C' + job + NUL + internal parameters (streams) + parameters.
func requestBody(job string, params []Param, nfiles int) []byte {
	b := append([]byte{'C'}, job...)
	b = append(b, 0)
	b = AppendParams(b, []Param{{Name: "streams", Type: Integer, Value: strconv.Itoa(nfiles)}})
	return AppendParams(b, params)
}

// WriteRequest writes a job call with its files.
func WriteRequest(w io.Writer, req Request) error {
	return writeFrame(w, requestBody(req.Job, req.Params, len(req.Files)), req.Files)
}

// ReadRequest reads a job call; its files go to sink.
func ReadRequest(r io.Reader, sink Sink) (Request, error) {
	var req Request
	body, err := readFrame(r, func(body []byte) (int, error) {
		if len(body) < 2 || body[0] != 'C' {
			return 0, fmt.Errorf("%w: a request body starts with 'C'", ErrMalformed)
		}
		end := bytes.IndexByte(body[1:], 0)
		if end < 0 {
			return 0, fmt.Errorf("%w: job name has no terminating NUL", ErrMalformed)
		}
		req.Job = string(body[1 : 1+end])
		internal, rest, err := ParseParams(body[2+end:])
		if err != nil {
			return 0, err
		}
		if req.Params, rest, err = ParseParams(rest); err != nil {
			return 0, err
		}
		if len(rest) != 0 {
			return 0, fmt.Errorf("%w: %d bytes after the parameters", ErrMalformed, len(rest))
		}
		return streams(internal)
	}, sink)
	if err != nil {
		return Request{}, err
	}
	_ = body
	return req, nil
}

// streams reads the internal "streams" parameter (absent = none).
func streams(internal []Param) (int, error) {
	v, ok := Get(internal, "streams")
	if !ok {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 1<<16 {
		return 0, fmt.Errorf("%w: streams = %q", ErrMalformed, v)
	}
	return n, nil
}

// JobError is one entry of a reply's error block.
type JobError struct {
	Code    int32
	Message string
	Source  string
	Line    int32
	Infos   []string
}

// Reply is a job's answer.
type Reply struct {
	Return int // the job's return code; 0 is success
	Params []Param
	Errors []JobError
	// Streams is the number of files that followed; they went to the sink.
	Streams int
}

// Get returns the value of an output parameter.
func (r *Reply) Get(name string) (string, bool) { return Get(r.Params, name) }

// Message joins the error messages of a failed reply.
func (r *Reply) Message() string {
	var msgs []string
	for _, e := range r.Errors {
		m := e.Message
		if m == "" {
			m = e.Source
		}
		if m != "" {
			msgs = append(msgs, m)
		}
	}
	if len(msgs) == 0 {
		return fmt.Sprintf("return code %d", r.Return)
	}
	return strings.Join(msgs, "; ")
}

// WriteReply writes a reply with its files.
func WriteReply(w io.Writer, rep Reply, files []File) error {
	b := []byte{'R'}
	b = AppendParams(b, []Param{
		{Name: "return", Type: Integer, Value: strconv.Itoa(rep.Return)},
		{Name: "streams", Type: Integer, Value: strconv.Itoa(len(files))},
	})
	b = AppendParams(b, rep.Params)
	eb := AppendErrors(nil, rep.Errors)
	b = binary.BigEndian.AppendUint32(b, uint32(len(eb)))
	b = append(b, eb...)
	return writeFrame(w, b, files)
}

// ReadReply reads a reply; its files go to sink.
func ReadReply(r io.Reader, sink Sink) (Reply, error) {
	var rep Reply
	_, err := readFrame(r, func(body []byte) (int, error) {
		var err error
		rep, err = parseReplyBody(body)
		return rep.Streams, err
	}, sink)
	if err != nil {
		return Reply{}, err
	}
	return rep, nil
}

func parseReplyBody(body []byte) (Reply, error) {
	var rep Reply
	if len(body) < 1 || body[0] != 'R' {
		return rep, fmt.Errorf("%w: a reply body starts with 'R'", ErrMalformed)
	}
	internal, rest, err := ParseParams(body[1:])
	if err != nil {
		return rep, err
	}
	if rep.Params, rest, err = ParseParams(rest); err != nil {
		return rep, err
	}
	if rep.Streams, err = streams(internal); err != nil {
		return rep, err
	}
	v, ok := Get(internal, "return")
	if !ok {
		return rep, fmt.Errorf("%w: reply without a return code", ErrMalformed)
	}
	ret, err := strconv.ParseInt(v, 10, 32)
	if err != nil {
		return rep, fmt.Errorf("%w: return code %q", ErrMalformed, v)
	}
	rep.Return = int(ret)
	if len(rest) < 4 {
		return rep, fmt.Errorf("%w: reply without an error block", ErrMalformed)
	}
	n := binary.BigEndian.Uint32(rest)
	if uint64(n) != uint64(len(rest)-4) {
		return rep, fmt.Errorf("%w: error block of %d bytes announced, %d present", ErrMalformed, n, len(rest)-4)
	}
	rep.Errors = ParseErrors(rest[4:])
	return rep, nil
}
