package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestProgressToAPipeIsAtMostALineASecond: dmsfs sync | tee log gets a
// line when a second has passed since the last one, and the last line
// always; a terminal would get every line redrawn in place.
func TestProgressToAPipeIsAtMostALineASecond(t *testing.T) {
	for _, tc := range []struct {
		name string
		step time.Duration // the clock's advance per line
		want string
	}{
		{"reports faster than a second", 400 * time.Millisecond, "3 upload(s) pending\n0 upload(s) pending\nall uploads done\nunmounted\n"},
		{"all within a second", time.Millisecond, "3 upload(s) pending\nall uploads done\nunmounted\n"},
		{"reports slower than a second", 2 * time.Second, "3 upload(s) pending\n2 upload(s) pending\n1 upload(s) pending\n0 upload(s) pending\nall uploads done\nunmounted\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var clock time.Time
			now := func() time.Time { clock = clock.Add(tc.step); return clock }
			in := "3 upload(s) pending\n2 upload(s) pending\nerror: a.txt refused\n1 upload(s) pending\n0 upload(s) pending\nall uploads done\nunmounted\n"
			var out bytes.Buffer
			failure, err := streamLines(strings.NewReader(in), &out, now, quietLines)
			require.NoError(t, err)
			require.Equal(t, []string{"a.txt refused"}, failure)
			require.Equal(t, tc.want, out.String())
		})
	}
}
