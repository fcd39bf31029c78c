package sync

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/kioskd/kioskd/models"
)

// DownTimetable is the purpose (and down topic kind) of central's signed
// class timetable.
const DownTimetable = "timetable"

// Limits on a timetable.
const (
	MaxTimetableSessions = 10000
	MaxSessionLength     = 24 * time.Hour
)

// Timetable is the inner payload of a signed timetable message: the class
// sessions central schedules for the kiosk. Each message replaces the
// previous timetable whole (the signed sequence orders them).
type Timetable struct {
	Sessions []ClassSession `json:"sessions"`
}

// ClassSession is one scheduled class: attendance recorded in Room between
// Start and End belongs to it, and is late from LateAfter on.
type ClassSession struct {
	ID         string    `json:"id"`
	ClassGroup string    `json:"class_group"`
	Room       string    `json:"room,omitempty"`
	Trainer    string    `json:"trainer,omitempty"`
	Start      time.Time `json:"start"`
	End        time.Time `json:"end"`
	LateAfter  time.Time `json:"late_after"`
}

// Validate checks every session; errors are EINVALID and name the session.
func (t *Timetable) Validate() error {
	if len(t.Sessions) > MaxTimetableSessions {
		return models.Errorf(models.EINVALID, "timetable: %d sessions, limit %d", len(t.Sessions), MaxTimetableSessions)
	}
	ids := make(map[string]bool, len(t.Sessions))
	for i := range t.Sessions {
		s := &t.Sessions[i]
		var msg string
		switch {
		case s.ID == "" || len(s.ID) > models.MaxIDLen:
			msg = fmt.Sprintf("id required, at most %d characters", models.MaxIDLen)
		case ids[s.ID]:
			msg = "id appears twice"
		case s.ClassGroup == "":
			msg = "class_group required"
		case !s.Start.Before(s.End):
			msg = "start must be before end"
		case s.End.Sub(s.Start) > MaxSessionLength:
			msg = "longer than 24 hours"
		case s.LateAfter.Before(s.Start) || s.LateAfter.After(s.End):
			msg = "late_after must lie between start and end"
		}
		if msg != "" {
			return models.Errorf(models.EINVALID, "timetable: session %d (%q): %s", i, s.ID, msg)
		}
		ids[s.ID] = true
	}
	return nil
}

// SessionFor returns the session an attendance at t in room belongs to:
// among the sessions open at t in that room (every room when room is
// empty), the one of the person's class group, else the earliest started.
// member says whether the person belongs to the session's class group.
func (t *Timetable) SessionFor(room, classGroup string, at time.Time) (s ClassSession, member, ok bool) {
	if t == nil {
		return s, false, false
	}
	for _, c := range t.Sessions {
		if (room != "" && c.Room != room) || at.Before(c.Start) || !at.Before(c.End) {
			continue
		}
		m := classGroup != "" && c.ClassGroup == classGroup
		if !ok || (m && !member) || (m == member && c.Start.Before(s.Start)) {
			s, member, ok = c, m, true
		}
	}
	return s, member, ok
}

// Late reports whether an attendance at t is late for the session.
func (s *ClassSession) Late(at time.Time) bool { return !at.Before(s.LateAfter) }

// Timetable returns the latest timetable central sent (nil when none).
func (c *Client) Timetable() *Timetable { return c.timetable.Load() }

// loadTimetable reads the stored timetable at Open.
func (c *Client) loadTimetable(ctx context.Context) error {
	b, err := c.store.GetMeta(ctx, c.metaKey("timetable"))
	if models.ErrorCode(err) == models.ENOTFOUND {
		return nil
	} else if err != nil {
		return fmt.Errorf("load timetable: %w", err)
	}
	var t Timetable
	if err := json.Unmarshal(b, &t); err != nil {
		c.logger.Error("stored timetable unreadable; waiting for central's next", "err", err)
		return nil
	}
	c.timetable.Store(&t)
	return nil
}

// applyTimetable checks, stores and installs a verified timetable.
func (c *Client) applyTimetable(payload []byte) error {
	var t Timetable
	if err := decodeInner(payload, &t); err != nil {
		return err
	}
	if err := t.Validate(); err != nil {
		return err
	}
	for i := range t.Sessions {
		s := &t.Sessions[i]
		s.Start, s.End, s.LateAfter = s.Start.UTC(), s.End.UTC(), s.LateAfter.UTC()
	}
	slices.SortFunc(t.Sessions, func(a, b ClassSession) int { return cmp.Or(a.Start.Compare(b.Start), cmp.Compare(a.ID, b.ID)) })
	if err := c.store.SetMeta(c.opCtx, c.metaKey("timetable"), mustJSON(t)); err != nil {
		c.rl.Log(slog.LevelError, "meta", "store timetable failed", "err", err)
		return err
	}
	c.timetable.Store(&t)
	c.logger.Info("timetable applied", "sessions", len(t.Sessions))
	return nil
}
