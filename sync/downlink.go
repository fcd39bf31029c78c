package sync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/google/uuid"

	"github.com/kioskd/kioskd/internal/backoff"
	"github.com/kioskd/kioskd/models"
)

// downState belongs to the downlink worker goroutine alone.
type downState struct {
	seen       map[uint64]struct{} // sequences above siteSeq already applied
	gapSince   time.Time           // when siteSeq < headSeq was first seen without progress
	gapAt      uint64              // siteSeq when gapSince was set
	reqIDs     []string            // snapshot requests of the current episode, newest last
	reqSentAt  time.Time
	reqTries   int
	asm        *snapAssembly
	since      []seqRecords // applied while a snapshot is pending, re-applied after it
	sinceN     int
	sinceOver  bool
	sigSeq     map[string]uint64
	wantReason string
}

type snapAssembly struct {
	id, requestID string
	seq           uint64
	chunks        int
	got           map[int][]models.UserRecord
	users         int
}

type seqRecords struct {
	seq  uint64
	recs []models.UserRecord
}

// maxSeen bounds the out-of-order sequence set; beyond it a snapshot heals.
const maxSeen = 100000

// loadState reads the site sequence, snapshot state and signed sequences.
func (c *Client) loadState(ctx context.Context) error {
	c.ds = &downState{seen: map[uint64]struct{}{}, sigSeq: map[string]uint64{}}
	seq, err := c.metaUint(ctx, c.metaKey("seq"))
	if err != nil {
		return err
	}
	c.siteSeq = seq
	at, err := c.store.GetMeta(ctx, c.metaKey("snapshot_at"))
	switch {
	case models.ErrorCode(err) == models.ENOTFOUND:
		c.snapshotWanted, c.ds.wantReason = true, "initial"
	case err != nil:
		return fmt.Errorf("load sync state: %w", err)
	default:
		if t, err := time.Parse(time.RFC3339Nano, string(at)); err == nil {
			c.lastSnapshot = t
		}
	}
	if need, err := c.metaUint(ctx, c.metaKey("snapshot_needed")); err != nil {
		return err
	} else if need != 0 {
		c.snapshotWanted, c.ds.wantReason = true, "gap"
	}
	for _, p := range []string{DownCommand, DownAccount, DownConfig, DownTimetable} {
		v, err := c.metaUint(ctx, "sync/signed/"+c.cfg.DeviceID+"/"+p)
		if err != nil {
			return err
		}
		c.ds.sigSeq[p] = v
	}
	return nil
}

func (c *Client) metaUint(ctx context.Context, key string) (uint64, error) {
	b, err := c.store.GetMeta(ctx, key)
	if models.ErrorCode(err) == models.ENOTFOUND {
		return 0, nil
	} else if err != nil {
		return 0, fmt.Errorf("load sync state %s: %w", key, err)
	}
	v, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("load sync state %s: %q is not a number", key, b)
	}
	return v, nil
}

func (c *Client) setMetaUint(key string, v uint64) error {
	return c.store.SetMeta(c.opCtx, key, []byte(strconv.FormatUint(v, 10)))
}

// downLoop applies downlink messages in arrival order.
func (c *Client) downLoop() {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		c.beat.Store(time.Now().UnixNano())
		select {
		case <-c.ctx.Done():
			for c.down.len() > 0 && c.opCtx.Err() == nil { // flush what was handed over
				c.processDown(c.down.pop(256))
			}
			return
		case <-c.down.notify:
		case <-tick.C:
		}
		for c.down.len() > 0 && c.ctx.Err() == nil {
			c.processDown(c.down.pop(256))
		}
		c.checkSequence()
		if c.down.len() == 0 && c.acks.len() == 0 {
			c.recoverOverflow()
		}
	}
}

// downKind returns the kind of a downlink topic: "users", "head" or a Down* kind.
func (c *Client) downKind(topic string) string {
	switch topic {
	case c.topics.Users():
		return TypeUsers
	case c.topics.Head():
		return TypeHead
	}
	if k, ok := strings.CutPrefix(topic, c.topics.DeviceRoot()+"/"+dirDown+"/"); ok {
		return k
	}
	return ""
}

func (c *Client) processDown(msgs []mqtt.Message) {
	for i := 0; i < len(msgs); {
		kind := c.downKind(msgs[i].Topic())
		if kind == TypeUsers {
			j, n := i, 0
			for j < len(msgs) && c.downKind(msgs[j].Topic()) == TypeUsers && n < 2*MaxUsersPerMessage {
				n += len(msgs[j].Payload()) / 512 // rough record count; bounds a batch
				j++
			}
			if !c.applyUsersMessages(msgs[i:j]) {
				return // stopping; unacked messages stay with the broker
			}
			i = j
			continue
		}
		m := msgs[i]
		switch kind {
		case TypeHead:
			c.handleHead(m)
		case DownSnapshot:
			if !c.handleSnapshotChunk(m) {
				return
			}
		case DownCommand, DownAccount, DownConfig, DownTimetable:
			c.handleSigned(m, kind)
		default:
			c.reject(RejectMalformed, "message on an unknown topic", "topic", m.Topic())
		}
		m.Ack()
		i++
	}
}

func (c *Client) rejectDecode(err error, topic string) {
	reason := RejectMalformed
	if models.ErrorCode(err) == models.ETOOLARGE {
		reason = RejectOversized
	}
	c.reject(reason, "downlink message refused", "topic", topic, "err", models.ErrorMessage(err))
}

// applyUsersMessages applies a run of users messages in one store
// transaction and acks them after the commit. It returns false when the
// client is stopping before the commit.
func (c *Client) applyUsersMessages(msgs []mqtt.Message) bool {
	type parsed struct {
		seq  uint64
		recs []models.UserRecord
	}
	var ps []parsed
	var all []models.UserRecord
	for _, m := range msgs {
		bad, err := c.contract.CheckDown(m.Topic(), m.Payload(), c.cfg.MaxPayload)
		var um *UsersMessage
		if err == nil {
			um, err = DecodeUsersMessage(m.Payload(), c.cfg.MaxPayload)
		}
		if err == nil && um.Site != c.cfg.SiteID {
			err = models.Errorf(models.EINVALID, "users: for site %q", um.Site)
		}
		if err != nil {
			c.rejectDecode(err, m.Topic())
			continue
		}
		p := parsed{seq: um.Seq}
		for i := range um.Users {
			err := bad[i]
			var rec models.UserRecord
			if err == nil {
				rec, err = DecodeUserRecord(&um.Users[i])
			}
			if err != nil {
				c.reject(RejectMalformed, "user record refused", "seq", um.Seq, "err", models.ErrorMessage(err))
				continue
			}
			p.recs = append(p.recs, rec)
		}
		all = append(all, p.recs...)
		ps = append(ps, p)
	}
	if len(all) > 0 {
		if _, ok := c.applyRecords(all); !ok {
			return false
		}
	}
	for _, p := range ps {
		c.noteSeq(p.seq, p.recs)
	}
	c.persistSeq()
	for _, m := range msgs {
		m.Ack()
	}
	return true
}

// applyRecords applies records, retrying internal errors with backoff until
// the client stops (the messages stay unacked meanwhile). A batch the store
// refuses as invalid is retried record by record so one bad record does not
// sink its neighbours. ok is false when stopping.
func (c *Client) applyRecords(recs []models.UserRecord) (applied []bool, ok bool) {
	b := backoff.Backoff{Min: 100 * time.Millisecond, Max: 10 * time.Second}
	for {
		applied, err := c.gallery.ApplyUserRecords(c.opCtx, recs)
		if err == nil {
			c.countApplied(applied)
			return applied, true
		}
		if code := models.ErrorCode(err); code != models.EINTERNAL && len(recs) > 1 {
			applied = make([]bool, len(recs))
			for i := range recs {
				a, ok := c.applyRecords(recs[i : i+1])
				if !ok {
					return nil, false
				}
				applied[i] = len(a) == 1 && a[0]
			}
			return applied, true
		} else if code != models.EINTERNAL {
			c.reject(RejectMalformed, "user record refused by the store", "user", recs[0].User.ID, "err", models.ErrorMessage(err))
			return []bool{false}, true
		}
		if c.opCtx.Err() != nil || errors.Is(err, context.Canceled) {
			return nil, false
		}
		c.setErr(fmt.Errorf("apply users: %w", err))
		c.rl.Log(slog.LevelError, "apply", "apply users failed; retrying", "err", err)
		if !sleepCtx(c.opCtx, b.Next()) {
			return nil, false
		}
	}
}

func (c *Client) countApplied(applied []bool) {
	var n int64
	for _, a := range applied {
		if a {
			n++
		}
	}
	c.mu.Lock()
	c.counters.UsersApplied += n
	c.counters.UsersIgnored += int64(len(applied)) - n
	c.mu.Unlock()
}

// noteSeq records that message seq was applied.
func (c *Client) noteSeq(seq uint64, recs []models.UserRecord) {
	ds := c.ds
	c.mu.Lock()
	if seq > c.headSeq {
		c.headSeq = seq
	}
	if seq > c.siteSeq {
		ds.seen[seq] = struct{}{}
		for {
			if _, ok := ds.seen[c.siteSeq+1]; !ok {
				break
			}
			delete(ds.seen, c.siteSeq+1)
			c.siteSeq++
		}
	}
	wanted := c.snapshotWanted
	c.mu.Unlock()
	if len(ds.seen) > maxSeen {
		clear(ds.seen)
		c.wantSnapshot("gap")
	}
	if wanted {
		if ds.sinceN+len(recs) > c.cfg.MaxSnapshotUsers {
			ds.since, ds.sinceN, ds.sinceOver = nil, 0, true
		} else {
			ds.since = append(ds.since, seqRecords{seq: seq, recs: recs})
			ds.sinceN += len(recs)
		}
	}
}

func (c *Client) persistSeq() {
	c.mu.Lock()
	seq := c.siteSeq
	c.mu.Unlock()
	if err := c.setMetaUint(c.metaKey("seq"), seq); err != nil {
		c.rl.Log(slog.LevelError, "meta", "store site sequence failed", "err", err)
	}
}

func (c *Client) handleHead(m mqtt.Message) {
	_, err := c.contract.CheckDown(m.Topic(), m.Payload(), c.cfg.MaxPayload)
	var h *HeadMessage
	if err == nil {
		h, err = DecodeHead(m.Payload(), c.cfg.MaxPayload)
	}
	if err == nil && h.Site != c.cfg.SiteID {
		err = models.Errorf(models.EINVALID, "head: for site %q", h.Site)
	}
	if err != nil {
		c.rejectDecode(err, m.Topic())
		return
	}
	c.mu.Lock()
	if h.Seq > c.headSeq {
		c.headSeq = h.Seq
	}
	c.mu.Unlock()
}

// wantSnapshot marks that a snapshot is needed (persistently, so a restart
// asks again); checkSequence sends the request.
func (c *Client) wantSnapshot(reason string) {
	c.mu.Lock()
	already := c.snapshotWanted
	c.snapshotWanted = true
	c.mu.Unlock()
	if already {
		return
	}
	c.ds.wantReason = reason
	c.ds.reqIDs, c.ds.reqTries, c.ds.reqSentAt = nil, 0, time.Time{}
	c.logger.Info("snapshot needed", "reason", reason)
	if err := c.setMetaUint(c.metaKey("snapshot_needed"), 1); err != nil {
		c.rl.Log(slog.LevelError, "meta", "store snapshot flag failed", "err", err)
	}
}

// checkSequence detects gaps that stay open and (re)sends snapshot requests.
func (c *Client) checkSequence() {
	ds := c.ds
	now := c.Now()
	c.mu.Lock()
	site, head, wanted, connected := c.siteSeq, c.headSeq, c.snapshotWanted, c.connected
	c.mu.Unlock()
	if head > site && !wanted {
		if ds.gapSince.IsZero() || ds.gapAt != site {
			ds.gapSince, ds.gapAt = now, site
		} else if now.Sub(ds.gapSince) >= c.cfg.GapGrace {
			c.logger.Warn("sequence gap", "have", site, "head", head)
			c.wantSnapshot("gap")
			wanted = true
		}
	} else {
		ds.gapSince = time.Time{}
	}
	if !wanted || !connected {
		return
	}
	wait := backoff.Delay(c.cfg.SnapshotTimeout, 4*c.cfg.SnapshotTimeout, ds.reqTries-1)
	if len(ds.reqIDs) > 0 && now.Sub(ds.reqSentAt) < wait {
		return
	}
	id := uuid.NewString()
	req := SnapshotRequest{Schema: SchemaVersion, Type: TypeSnapshotRequest, Site: c.cfg.SiteID, Device: c.cfg.DeviceID,
		RequestID: id, HaveSeq: site, Reason: ds.wantReason, Time: now.UTC()}
	t := c.mqtt.Publish(c.topics.Up(UpSnapshotRequest), 1, false, mustJSON(req))
	if !waitToken(c.ctx, t, c.cfg.ConnectTimeout) || t.Error() != nil {
		return
	}
	ds.reqIDs = append(ds.reqIDs, id)
	if len(ds.reqIDs) > 8 {
		ds.reqIDs = ds.reqIDs[len(ds.reqIDs)-8:]
	}
	ds.reqSentAt = now
	ds.reqTries++
	c.logger.Info("snapshot requested", "request_id", id, "have_seq", site, "reason", ds.wantReason)
}

// handleSnapshotChunk collects chunks of a requested snapshot and applies the
// snapshot once all have arrived. It returns false when stopping before the
// final commit (the chunk then stays with the broker).
func (c *Client) handleSnapshotChunk(m mqtt.Message) bool {
	ds := c.ds
	bad, err := c.contract.CheckDown(m.Topic(), m.Payload(), c.cfg.MaxPayload)
	var ch *SnapshotChunk
	if err == nil {
		ch, err = DecodeSnapshotChunk(m.Payload(), c.cfg.MaxPayload)
	}
	if err == nil && (ch.Site != c.cfg.SiteID || ch.Device != c.cfg.DeviceID) {
		err = models.Errorf(models.EINVALID, "snapshot: for %s/%s", ch.Site, ch.Device)
	}
	if err != nil {
		c.rejectDecode(err, m.Topic())
		return true
	}
	requested := false
	for _, id := range ds.reqIDs {
		requested = requested || id == ch.RequestID
	}
	if !requested {
		c.logger.Debug("snapshot chunk for no open request; ignored", "request_id", ch.RequestID)
		return true
	}
	if ds.asm == nil || ds.asm.id != ch.SnapshotID {
		ds.asm = &snapAssembly{id: ch.SnapshotID, requestID: ch.RequestID, seq: ch.Seq, chunks: ch.Chunks, got: map[int][]models.UserRecord{}}
	}
	a := ds.asm
	if ch.Chunks != a.chunks || ch.Seq != a.seq {
		c.reject(RejectMalformed, "snapshot chunk disagrees with its snapshot", "snapshot_id", ch.SnapshotID)
		return true
	}
	if _, dup := a.got[ch.Chunk]; dup {
		return true
	}
	if a.users+len(ch.Users) > c.cfg.MaxSnapshotUsers {
		c.reject(RejectOversized, "snapshot larger than max_snapshot_users; dropped", "limit", c.cfg.MaxSnapshotUsers)
		ds.asm = nil
		return true
	}
	recs := make([]models.UserRecord, 0, len(ch.Users))
	for i := range ch.Users {
		if ch.Users[i].Op == OpDelete {
			continue // a snapshot lists the living; tombstones are implied
		}
		err := bad[i]
		var rec models.UserRecord
		if err == nil {
			rec, err = DecodeUserRecord(&ch.Users[i])
		}
		if err != nil {
			c.reject(RejectMalformed, "snapshot record refused", "err", models.ErrorMessage(err))
			continue
		}
		recs = append(recs, rec)
	}
	a.got[ch.Chunk] = recs
	a.users += len(recs)
	if len(a.got) < a.chunks {
		return true
	}
	return c.applySnapshot(a)
}

func (c *Client) applySnapshot(a *snapAssembly) bool {
	ds := c.ds
	all := make([]models.UserRecord, 0, a.users)
	for i := 0; i < a.chunks; i++ {
		all = append(all, a.got[i]...)
	}
	// Updates applied while the snapshot was on its way may be newer than
	// it: merge them in (newer version wins, tombstones included) so that
	// one transaction installs the registry's state as of the latest
	// sequence seen. Re-applying them afterwards would not do: the snapshot
	// tombstones users it does not list at their stored version.
	idx := make(map[string]int, len(all))
	for i := range all {
		idx[all[i].User.ID] = i
	}
	seen := map[uint64]struct{}{}
	later := 0
	for _, s := range ds.since {
		if s.seq <= a.seq {
			continue
		}
		seen[s.seq] = struct{}{}
		for _, rec := range s.recs {
			i, ok := idx[rec.User.ID]
			if !ok {
				idx[rec.User.ID] = len(all)
				all = append(all, rec)
				later++
			} else if rec.User.Version > all[i].User.Version {
				all[i] = rec
				later++
			}
		}
	}
	if err := c.gallery.ReplaceAllUsers(c.opCtx, all); err != nil {
		if c.opCtx.Err() != nil {
			return false
		}
		c.setErr(fmt.Errorf("apply snapshot: %w", err))
		c.logger.Error("apply snapshot failed; will ask again", "err", err, "users", len(all))
		ds.asm, ds.reqIDs = nil, nil
		return true
	}
	c.mu.Lock()
	for s := range ds.seen {
		if s > a.seq {
			seen[s] = struct{}{}
		}
	}
	ds.seen = seen
	c.siteSeq = a.seq
	for {
		if _, ok := ds.seen[c.siteSeq+1]; !ok {
			break
		}
		delete(ds.seen, c.siteSeq+1)
		c.siteSeq++
	}
	if a.seq > c.headSeq {
		c.headSeq = a.seq
	}
	c.snapshotWanted = false
	c.lastSnapshot = c.Now()
	c.counters.Snapshots++
	at := c.lastSnapshot
	c.mu.Unlock()
	over := ds.sinceOver
	ds.asm, ds.reqIDs, ds.since, ds.sinceN, ds.sinceOver, ds.reqTries = nil, nil, nil, 0, false, 0
	c.persistSeq()
	if err := c.setMetaUint(c.metaKey("snapshot_needed"), 0); err != nil {
		c.rl.Log(slog.LevelError, "meta", "store snapshot flag failed", "err", err)
	}
	if err := c.store.SetMeta(c.opCtx, c.metaKey("snapshot_at"), []byte(at.UTC().Format(time.RFC3339Nano))); err != nil {
		c.rl.Log(slog.LevelError, "meta", "store snapshot time failed", "err", err)
	}
	c.logger.Info("snapshot applied", "snapshot_id", a.id, "seq", a.seq, "users", a.users, "later_records", later)
	if over {
		c.wantSnapshot("overflow")
	}
	return true
}
