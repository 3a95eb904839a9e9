package enaio_test

import (
	"testing"

	"github.com/dmsfs/dmsfs/remote/enaio"
	"github.com/dmsfs/dmsfs/remote/enaio/enaiotest"
	"github.com/dmsfs/dmsfs/remote/remotetest"
)

// TestPollCost prints what a change poll costs on enaio: two result lists
// (live objects and the recycle bin) per object type of the cabinets.
func TestPollCost(t *testing.T) {
	srv := enaiotest.Start(t, enaiotest.Options{})
	remotetest.PollCost(t, connect(t, srv, enaio.Config{}), func() int { return srv.Jobs("") })
}
