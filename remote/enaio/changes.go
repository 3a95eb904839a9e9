package enaio

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dmsfs/dmsfs/remote"
	"github.com/dmsfs/dmsfs/remote/enaio/dmsxml"
)

// Other clients' changes: per object type, a dms.GetResultList of the
// objects whose OBJECT_MODIFYTIME is at or after the cursor, live ones and
// those in the recycle bin (GarbageMode=1: deleted since). enaio queries
// one object type at a time (spec §3.2), so a poll costs two requests per
// type of the mounted cabinets. The times have whole seconds: the cursor is
// the newest time seen with the objects seen at it and their concurrency
// timestamps; those are not reported again unless they changed since.
//
// Unverified on a real server (as the rest of facts.go): that a deletion
// to the recycle bin moves OBJECT_MODIFYTIME, and that a condition on it
// takes "dd.mm.yyyy HH:MM:SS" in UTC.

var _ remote.Changes = (*Repo)(nil)

// A cursor is "<unix seconds>;<id>:<token>,…": the newest modification
// time seen and the objects seen at it.
func parseChangeCursor(c string) (time.Time, []string, error) {
	ts, list, _ := strings.Cut(c, ";")
	secs, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return time.Time{}, nil, fmt.Errorf("enaio: cursor %q: %w", c, remote.ErrInvalidName)
	}
	var seen []string
	if list != "" {
		seen = strings.Split(list, ",")
	}
	return time.Unix(secs, 0), seen, nil
}

// seenAs is how a cursor names an object in one state.
func seenAs(o object) string { return strconv.Itoa(o.id) + ":" + o.Token }

func changeCursor(t time.Time, seen []string) string {
	return strconv.FormatInt(t.Unix(), 10) + ";" + strings.Join(seen, ",")
}

func (r *Repo) Changes(ctx context.Context, cursor string, known []remote.ID) (remote.ChangeSet, error) {
	if cursor == "" {
		return r.startCursor(ctx)
	}
	since, seen, err := parseChangeCursor(cursor)
	if err != nil {
		return remote.ChangeSet{}, err
	}
	newest, atNewest := since, slices.Clone(seen)
	at := cond(dmsxml.ObjectModify, since.UTC().Format("02.01.2006 15:04:05"))
	at.Operator = ">="
	var out remote.ChangeSet
	folders := map[remote.ID]bool{}
	for _, c := range r.def.Cabinets {
		for _, def := range c.Objects {
			for _, garbage := range []bool{false, true} {
				objs, err := r.queryWith(ctx, c, def, queryOpts{garbage: garbage}, at)
				if err != nil {
					return remote.ChangeSet{}, fmt.Errorf("enaio: changes of %s since %s: %w", def.Name, since.UTC().Format(time.DateTime), err)
				}
				for _, o := range objs {
					if o.ModTime.Equal(since) && slices.Contains(seen, seenAs(o)) {
						continue // reported by the last poll, unchanged since
					}
					switch {
					case o.ModTime.After(newest):
						newest, atNewest = o.ModTime, []string{seenAs(o)}
					case o.ModTime.Equal(newest):
						atNewest = append(atNewest, seenAs(o))
					}
					out.Changed = append(out.Changed, o.ID)
					if !folders[o.Parent] {
						folders[o.Parent] = true
						out.Folders = append(out.Folders, o.Parent)
					}
				}
			}
		}
	}
	out.Cursor = changeCursor(newest, atNewest)
	return out, nil
}

// startCursor is the newest OBJECT_MODIFYTIME of any object (a one-hit
// query per type, sorted by it) with the objects changed in that second.
func (r *Repo) startCursor(ctx context.Context) (remote.ChangeSet, error) {
	newest := time.Unix(0, 0)
	for _, c := range r.def.Cabinets {
		for _, def := range c.Objects {
			objs, err := r.queryWith(ctx, c, def, queryOpts{sortDesc: dmsxml.ObjectModify, limit: 1})
			if err != nil {
				return remote.ChangeSet{}, fmt.Errorf("enaio: starting point for changes: %w", err)
			}
			for _, o := range objs {
				if o.ModTime.After(newest) {
					newest = o.ModTime
				}
			}
		}
	}
	// Everything changed in that second is seen already.
	all, err := r.Changes(ctx, changeCursor(newest, nil), nil)
	if err != nil {
		return remote.ChangeSet{}, err
	}
	return remote.ChangeSet{Cursor: all.Cursor}, nil
}
