package reftest

import (
	"context"
	"math/rand/v2"
	"strings"
	"sync"

	"github.com/dmsfs/dmsfs/remote"
)

// Lossy is a repository whose saves (Insert, Replace, Append) sometimes
// lose their answer after the change was made, as a cut connection does:
// the caller gets ErrUnavailable, the repository has the new document or
// content. Config.Lossy tells the harness, which then takes
// a save that failed so for the writer being told, and drains the upload
// queue with no answer lost.
type Lossy struct {
	remote.Repository
	rate float64

	mu     sync.Mutex // guards the fields below
	rng    *rand.Rand
	paused bool
	lost   int
}

var _ remote.Wrapper = (*Lossy)(nil)

// NewLossy loses the answers of a rate of repo's saves, drawn from seed.
func NewLossy(repo remote.Repository, seed uint64, rate float64) *Lossy {
	return &Lossy{Repository: repo, rate: rate, rng: rand.New(rand.NewPCG(seed, seed^0x1055))}
}

func (l *Lossy) Unwrap() remote.Repository { return l.Repository }

// Insert loses the answers of creates, but not of conflict copies.
func (l *Lossy) Insert(ctx context.Context, parent remote.ID, name string, c remote.Content) (remote.Node, error) {
	n, err := l.Repository.Insert(ctx, parent, name, c)
	if strings.Contains(name, " (conflict ") {
		// The model resolves a conflict at the save; a conflict copy
		// whose answer was lost is resolved at the retry instead
		// (upload.TestASaveEndingInANewDocumentWhoseAnswerWasLostMakesOne).
		return n, err
	}
	return l.answer(n, err)
}

func (l *Lossy) Replace(ctx context.Context, doc remote.ID, token, file string, c remote.Content) (remote.Node, error) {
	n, err := l.Repository.Replace(ctx, doc, token, file, c)
	return l.answer(n, err)
}

func (l *Lossy) Append(ctx context.Context, doc remote.ID, token, name string, c remote.Content) (remote.Node, error) {
	n, err := l.Repository.Append(ctx, doc, token, name, c)
	return l.answer(n, err)
}

// answer is a made change's answer, or none.
func (l *Lossy) answer(n remote.Node, err error) (remote.Node, error) {
	if err != nil {
		return n, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.paused || l.rng.Float64() >= l.rate {
		return n, nil
	}
	l.lost++
	return remote.Node{}, remote.ErrUnavailable
}

// Lost is how many answers were lost so far.
func (l *Lossy) Lost() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lost
}

func (l *Lossy) pause(p bool) {
	l.mu.Lock()
	l.paused = p
	l.mu.Unlock()
}
