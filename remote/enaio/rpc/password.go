package rpc

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
)

// The login job takes the password obfuscated (not encrypted) the way
// ECMind's client does it (spec §2.1.8): 'A'+L, 'A'+offset, offset random
// octal digits, each character as three octal digits of offset+code, then
// random octal digits up to 8·L characters. Whether the server reads code
// points or a code page is UNVERIFIED; code points are what we send.

// ObfuscatePassword encodes a password for krn.SessionLogin.
func ObfuscatePassword(pw string) (string, error) {
	rs := []rune(pw)
	l := len(rs)
	if l == 0 {
		return "", errors.New("empty password")
	}
	if l > 62 {
		return "", errors.New("passwords longer than 62 characters cannot be sent to enaio")
	}
	n := 8 * l
	for range 200 {
		ioff := rand.IntN(max(1, n-3*l-3))
		if ioff > 62 {
			continue // 'A'+ioff must stay ASCII
		}
		b := []byte{byte('A' + l), byte('A' + ioff)}
		for range ioff {
			b = append(b, byte('0'+rand.IntN(8)))
		}
		fits := true
		for _, r := range rs {
			v := ioff + int(r)
			if v > 0o777 {
				fits = false
				break
			}
			b = fmt.Appendf(b, "%03o", v)
		}
		if !fits {
			continue
		}
		for len(b) < n {
			b = append(b, byte('0'+rand.IntN(8)))
		}
		return string(b), nil
	}
	return "", errors.New("the password holds characters that enaio's login cannot carry (beyond U+01FF)")
}

// RevealPassword decodes an obfuscated password (the server's side).
func RevealPassword(s string) (string, error) {
	bad := errors.New("malformed obfuscated password")
	if len(s) < 2 {
		return "", bad
	}
	l, ioff := int(s[0])-'A', int(s[1])-'A'
	if l <= 0 || ioff < 0 || 2+ioff+3*l > len(s) {
		return "", bad
	}
	rs := make([]rune, l)
	for i := range l {
		p := 2 + ioff + 3*i
		v, err := strconv.ParseUint(s[p:p+3], 8, 16)
		if err != nil || int(v) < ioff {
			return "", bad
		}
		rs[i] = rune(int(v) - ioff)
	}
	return string(rs), nil
}
