package rpc

import (
	"bytes"
	"encoding/binary"
	"strings"
	"unicode/utf8"
)

// The error block's layout is only partly known (spec §2.1.7, UNVERIFIED):
// Count, one unknown word, then per error five int32 — source offset, source
// line, message offset, error code, info count — and that many info offsets,
// then NUL-terminated strings. This is ecmind-blue-client 1.0.x's reading;
// 0.x read lengths instead of offsets. Offsets here count from the start of
// the block. Parsing never fails a call: the return code is authoritative,
// and a block that does not fit this reading is salvaged as plain strings.

// AppendErrors appends an error block (never empty: Count and the unknown
// word are always there, as clients unpack them unconditionally).
func AppendErrors(b []byte, errs []JobError) []byte {
	fixed := 8
	for _, e := range errs {
		fixed += 20 + 4*len(e.Infos)
	}
	var strs []byte
	str := func(s string) uint32 {
		off := uint32(fixed + len(strs))
		strs = append(append(strs, s...), 0)
		return off
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(errs)))
	b = binary.BigEndian.AppendUint32(b, 0)
	for _, e := range errs {
		b = binary.BigEndian.AppendUint32(b, str(e.Source))
		b = binary.BigEndian.AppendUint32(b, uint32(e.Line))
		b = binary.BigEndian.AppendUint32(b, str(e.Message))
		b = binary.BigEndian.AppendUint32(b, uint32(e.Code))
		b = binary.BigEndian.AppendUint32(b, uint32(len(e.Infos)))
		for _, in := range e.Infos {
			b = binary.BigEndian.AppendUint32(b, str(in))
		}
	}
	return append(b, strs...)
}

// ParseErrors reads an error block, salvaging what it can.
func ParseErrors(b []byte) []JobError {
	if errs, ok := parseErrors(b); ok {
		return errs
	}
	// Fallback: every printable NUL-separated string is a message.
	var errs []JobError
	for _, s := range bytes.Split(b, []byte{0}) {
		if t := strings.TrimSpace(string(s)); len(t) >= 3 && utf8.ValidString(t) && isText(t) {
			errs = append(errs, JobError{Message: t})
		}
	}
	return errs
}

func parseErrors(b []byte) ([]JobError, bool) {
	if len(b) < 8 {
		return nil, len(b) == 0
	}
	count := binary.BigEndian.Uint32(b)
	if uint64(count)*20 > uint64(len(b)-8) {
		return nil, false
	}
	errs := make([]JobError, 0, count)
	pos := 8
	word := func() (uint32, bool) {
		if pos+4 > len(b) {
			return 0, false
		}
		v := binary.BigEndian.Uint32(b[pos:])
		pos += 4
		return v, true
	}
	str := func(off uint32) (string, bool) {
		s, err := cstring(b, off)
		return s, err == nil
	}
	for range count {
		var w [5]uint32
		for i := range w {
			v, ok := word()
			if !ok {
				return nil, false
			}
			w[i] = v
		}
		e := JobError{Line: int32(w[1]), Code: int32(w[3])}
		var ok bool
		if e.Source, ok = str(w[0]); !ok {
			return nil, false
		}
		if e.Message, ok = str(w[2]); !ok {
			return nil, false
		}
		if uint64(w[4])*4 > uint64(len(b)-pos) {
			return nil, false
		}
		for range w[4] {
			off, _ := word()
			in, ok := str(off)
			if !ok {
				return nil, false
			}
			e.Infos = append(e.Infos, in)
		}
		errs = append(errs, e)
	}
	return errs, true
}

func isText(s string) bool {
	for _, r := range s {
		if r < 0x20 && r != '\t' && r != '\n' && r != '\r' {
			return false
		}
	}
	return true
}
