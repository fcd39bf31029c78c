package sync

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/kioskd/kioskd/models"
)

// Command is a signed command from central, after verification.
type Command struct {
	Name     string          `json:"name"`
	Args     json.RawMessage `json:"args,omitempty"`
	Seq      uint64          `json:"-"`
	IssuedAt time.Time       `json:"-"`
}

// Commands the client runs itself; others go to Client.OnCommand.
const (
	CmdRequestSnapshot = "request_snapshot" // ask central for a snapshot now
	CmdPublishStatus   = "publish_status"   // republish the retained status
	CmdResendOutbox    = "resend_outbox"    // resend every unacked outbox message
)

// AccountPush is the inner payload of a signed account message. Central
// sends its Django password hash (pbkdf2_sha256$, argon2$argon2id$,
// bcrypt_sha256$, bcrypt$); only accounts whose email central has verified
// are accepted.
type AccountPush struct {
	Op            string `json:"op"` // upsert or delete
	Email         string `json:"email"`
	Role          string `json:"role,omitempty"`
	PasswordHash  string `json:"password_hash,omitempty"`
	EmailVerified bool   `json:"email_verified"`
	Disabled      bool   `json:"disabled,omitempty"`
	Version       int64  `json:"version"`
}

// CommandResult reports the outcome of a signed message to central.
type CommandResult struct {
	Schema  int       `json:"schema"`
	Type    string    `json:"type"`
	Device  string    `json:"device"`
	Purpose string    `json:"purpose"`
	Seq     uint64    `json:"seq"`
	Name    string    `json:"name,omitempty"`
	OK      bool      `json:"ok"`
	Error   string    `json:"error,omitempty"`
	Time    time.Time `json:"time"`
}

func (c *Client) handleSigned(m mqtt.Message, purpose string) {
	_, err := c.contract.CheckDown(m.Topic(), m.Payload(), c.cfg.MaxPayload)
	var sm *SignedMessage
	if err == nil {
		sm, err = DecodeSigned(m.Payload(), c.cfg.MaxPayload)
	}
	if err != nil {
		c.rejectDecode(err, m.Topic())
		return
	}
	reason, err := VerifySigned(sm, c.pubKey, c.cfg.DeviceID, purpose, m.Topic(), c.ds.sigSeq[purpose], c.Now(), c.cfg.MaxClockSkew)
	if reason != "" {
		c.reject(reason, "signed message refused", "topic", m.Topic(), "seq", sm.Seq, "err", models.ErrorMessage(err))
		return
	}
	// Persist the sequence before acting: a command runs at most once even
	// when the kiosk dies half-way.
	c.ds.sigSeq[purpose] = sm.Seq
	if err := c.setMetaUint("sync/signed/"+c.cfg.DeviceID+"/"+purpose, sm.Seq); err != nil {
		c.rl.Log(slog.LevelError, "meta", "store signed sequence failed", "err", err)
	}
	c.mu.Lock()
	c.counters.Commands++
	c.mu.Unlock()
	res := CommandResult{Schema: SchemaVersion, Type: TypeCommandResult, Device: c.cfg.DeviceID, Purpose: purpose, Seq: sm.Seq, OK: true}
	err = c.contract.CheckInner(purpose, sm.Payload)
	switch {
	case err != nil:
	case purpose == DownCommand:
		var cmd Command
		err = decodeInner(sm.Payload, &cmd)
		if err == nil {
			cmd.Seq, cmd.IssuedAt = sm.Seq, time.Unix(sm.IssuedAt, 0)
			res.Name = cmd.Name
			err = c.runCommand(cmd)
		}
	case purpose == DownAccount:
		var ap AccountPush
		if err = decodeInner(sm.Payload, &ap); err == nil {
			res.Name = ap.Op
			err = c.applyAccount(&ap)
		}
	case purpose == DownTimetable:
		res.Name = DownTimetable
		err = c.applyTimetable(sm.Payload)
	case purpose == DownConfig:
		// The configuration file is the kiosk's one source of configuration.
		res.Name = "config"
		err = models.Errorf(models.EUNAVAILABLE, "config: not accepted by this kiosk")
	}
	if err != nil {
		res.OK, res.Error = false, models.ErrorMessage(err)
		c.logger.Warn("signed message failed", "purpose", purpose, "seq", sm.Seq, "name", res.Name, "err", err)
	} else {
		c.logger.Info("signed message applied", "purpose", purpose, "seq", sm.Seq, "name", res.Name)
	}
	res.Time = c.Now().UTC()
	if ok, _ := c.isConnected(); ok {
		c.mqtt.Publish(c.topics.Up(UpCommandResult), 1, false, mustJSON(res))
	}
}

func decodeInner(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		return models.Errorf(models.EINVALID, "payload: %s", jsonErr(err))
	}
	return nil
}

func (c *Client) runCommand(cmd Command) error {
	switch cmd.Name {
	case CmdRequestSnapshot:
		c.wantSnapshot("command")
		return nil
	case CmdPublishStatus:
		c.publishStatus()
		return nil
	case CmdResendOutbox:
		c.mu.Lock()
		c.connGen++ // the publisher starts over from the oldest message
		c.mu.Unlock()
		c.Notify()
		return nil
	}
	if c.OnCommand == nil {
		return models.Errorf(models.EINVALID, "command %q is not known to this kiosk", cmd.Name)
	}
	ctx, cancel := context.WithTimeout(c.opCtx, 30*time.Second)
	defer cancel()
	return c.OnCommand(ctx, cmd)
}

// disableUnverified applies an upsert whose email central no longer
// verifies: a stored central account is disabled at once under the push's
// version (its sessions end with it); none is created for such an email.
func (c *Client) disableUnverified(email string, version int64) error {
	old, err := c.store.GetAccount(c.opCtx, email)
	if models.ErrorCode(err) == models.ENOTFOUND {
		return models.Errorf(models.EFORBIDDEN, "account: email %s is not verified by central", email)
	} else if err != nil {
		return err
	}
	if old.Source != models.SourceCentral {
		return models.Errorf(models.EFORBIDDEN, "account: %s was created on the device; central may not change it", email)
	}
	a := *old
	a.Disabled, a.Version, a.UpdatedAt = true, version, c.Now().UTC()
	if err := c.store.PutAccount(c.opCtx, &a); err != nil && models.ErrorCode(err) != models.ESTALE {
		return err
	}
	return nil
}

// applyAccount upserts or deletes a central account. A newer version
// replaces any local override (an admin's disable or role, the holder's
// password); an unverified or disabled one disables the account at once.
func (c *Client) applyAccount(ap *AccountPush) error {
	email := strings.ToLower(strings.TrimSpace(ap.Email))
	switch {
	case !models.ValidEmail(email) || len(email) > models.MaxEmailLen:
		return models.Errorf(models.EINVALID, "account: email %q is not valid", ap.Email)
	case ap.Version <= 0:
		return models.Errorf(models.EINVALID, "account: version must be positive")
	}
	switch ap.Op {
	case OpDelete:
		old, err := c.store.GetAccount(c.opCtx, email)
		if models.ErrorCode(err) == models.ENOTFOUND {
			return nil
		} else if err != nil {
			return err
		}
		if old.Source != models.SourceCentral {
			return models.Errorf(models.EFORBIDDEN, "account: %s was created on the device; central may not delete it", email)
		}
		if old.Version >= ap.Version {
			return nil // stale delete
		}
		if err := c.store.DeleteAccount(c.opCtx, email); err != nil && models.ErrorCode(err) != models.ENOTFOUND {
			return err
		}
		return nil
	case OpUpsert:
	default:
		return models.Errorf(models.EINVALID, "account: op %q is not upsert or delete", ap.Op)
	}
	role := models.AccountRole(ap.Role)
	if !ap.EmailVerified {
		return c.disableUnverified(email, ap.Version)
	}
	switch {
	case !role.Valid():
		return models.Errorf(models.EINVALID, "account: role %q is not technician or admin", ap.Role)
	case ap.PasswordHash == "" || len(ap.PasswordHash) > 512 || c.PasswordHashSupported == nil || !c.PasswordHashSupported(ap.PasswordHash):
		return models.Errorf(models.EINVALID, "account: password hash format not supported")
	}
	a := &models.LocalAccount{Email: email, Role: role, PasswordHash: ap.PasswordHash, Disabled: ap.Disabled,
		Source: models.SourceCentral, Version: ap.Version, UpdatedAt: c.Now().UTC()}
	if err := c.store.PutAccount(c.opCtx, a); err != nil && models.ErrorCode(err) != models.ESTALE {
		return err
	}
	return nil
}
