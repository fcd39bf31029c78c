package sync

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/kioskd/kioskd/models"
)

// OutboxSessionSummary is the outbox kind (and uplink topic) of the summary
// the kiosk sends when a session of central's timetable ends.
const OutboxSessionSummary = "session_summary"

// summaryWindow bounds how long after its end a session is still
// summarised (a kiosk that was off at the end reports on restart).
const summaryWindow = 24 * time.Hour

// SessionSummary is the end-of-session report of one timetable session:
// the members of its class group who came on time, late or not at all, and
// the people of other groups who came (guests). Each person counts once, by
// their first event of the session.
type SessionSummary struct {
	Session ClassSession  `json:"session"`
	OnTime  []Arrival     `json:"on_time"`
	Late    []Arrival     `json:"late"`
	Absent  []string      `json:"absent"` // user ids of members with no event
	Guests  []Arrival     `json:"guests"`
	Counts  SummaryCounts `json:"counts"`
}

// Arrival is one person's first attendance in a session.
type Arrival struct {
	UserID       string    `json:"user_id"`
	Time         time.Time `json:"time"`
	MinutesAfter int       `json:"minutes_after_start"`
}

// SummaryCounts are the sizes of a summary's lists.
type SummaryCounts struct {
	Members int `json:"members"` // active users of the class group
	OnTime  int `json:"on_time"`
	Late    int `json:"late"`
	Absent  int `json:"absent"`
	Guests  int `json:"guests"`
}

// Summarize builds the summary of session s from the store: its events
// (stamped with s.ID) and the active users of its class group.
func Summarize(ctx context.Context, store models.Store, s *ClassSession) (*SessionSummary, error) {
	sum := &SessionSummary{Session: *s, OnTime: []Arrival{}, Late: []Arrival{}, Absent: []string{}, Guests: []Arrival{}}
	first := map[string]time.Time{}
	err := store.ForEachAttendance(ctx, models.AttendanceFilter{SessionID: s.ID, Unlimited: true}, func(ev *models.AttendanceEvent) error {
		if t, ok := first[ev.UserID]; !ok || ev.Time.Before(t) {
			first[ev.UserID] = ev.Time
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	members := map[string]bool{}
	for off := 0; ; off += models.MaxPageSize {
		users, total, err := store.ListUsers(ctx, models.UserFilter{ClassGroup: s.ClassGroup, Offset: off, Limit: models.MaxPageSize})
		if err != nil {
			return nil, err
		}
		for _, u := range users {
			if u.ClassGroup == s.ClassGroup && u.Status == models.UserActive {
				members[u.ID] = true
			}
		}
		if len(users) == 0 || off+len(users) >= total {
			break
		}
	}
	for id, t := range first {
		a := Arrival{UserID: id, Time: t.UTC(), MinutesAfter: int(t.Sub(s.Start) / time.Minute)}
		switch {
		case !members[id]:
			sum.Guests = append(sum.Guests, a)
		case s.Late(t):
			sum.Late = append(sum.Late, a)
		default:
			sum.OnTime = append(sum.OnTime, a)
		}
	}
	for id := range members {
		if _, ok := first[id]; !ok {
			sum.Absent = append(sum.Absent, id)
		}
	}
	byTime := func(a, b Arrival) int { return a.Time.Compare(b.Time) }
	slices.SortFunc(sum.OnTime, byTime)
	slices.SortFunc(sum.Late, byTime)
	slices.SortFunc(sum.Guests, byTime)
	slices.Sort(sum.Absent)
	sum.Counts = SummaryCounts{Members: len(members), OnTime: len(sum.OnTime), Late: len(sum.Late), Absent: len(sum.Absent), Guests: len(sum.Guests)}
	return sum, nil
}

// summaryLoop summarises every session of the timetable that has ended
// (within summaryWindow) and is not summarised yet: the summary goes to the
// outbox, which keeps it until central acks it, and is stored under the
// meta key sync/{site}/summary/{session id}, which also marks it sent.
func (c *Client) summaryLoop() {
	c.every(c.cfg.SummaryPoll, func() {
		if err := c.summarizeEnded(c.ctx); err != nil && c.ctx.Err() == nil {
			c.setErr(err)
			c.rl.Log(slog.LevelError, "summary", "session summary failed; retrying", "err", err)
		}
	})
}

func (c *Client) summarizeEnded(ctx context.Context) error {
	tt := c.Timetable()
	if tt == nil {
		return nil
	}
	now := c.Now()
	for i := range tt.Sessions {
		s := &tt.Sessions[i]
		if s.End.After(now) || now.Sub(s.End) > summaryWindow {
			continue
		}
		key := c.metaKey("summary/" + s.ID)
		if _, err := c.store.GetMeta(ctx, key); err == nil {
			continue
		} else if models.ErrorCode(err) != models.ENOTFOUND {
			return err
		}
		sum, err := Summarize(ctx, c.store, s)
		if err != nil {
			return fmt.Errorf("summarise session %s: %w", s.ID, err)
		}
		// Queued before it is stored: a crash in between queues it again
		// under the same key, which central stores once.
		b := mustJSON(sum)
		msg := &models.OutboxMessage{Kind: OutboxSessionSummary, Key: "summary-" + s.ID + "-" + s.End.UTC().Format("20060102T150405Z"), Payload: b}
		if err := c.store.Enqueue(ctx, msg); err != nil {
			return err
		}
		if err := c.store.SetMeta(ctx, key, b); err != nil {
			return fmt.Errorf("store summary of session %s: %w", s.ID, err)
		}
		c.logger.Info("session summary queued", "session", s.ID, "on_time", sum.Counts.OnTime, "late", sum.Counts.Late, "absent", sum.Counts.Absent)
		c.Notify()
	}
	return nil
}
