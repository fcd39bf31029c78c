package sync

import (
	"context"
	"encoding/json"
	"time"

	"github.com/google/uuid"

	"github.com/kioskd/kioskd/models"
)

// EnrolmentPayload is the outbox payload of models.OutboxEnrolment: the user
// record enrolled on the device in the same wire shape central sends
// (WireUser), descriptors as base64 float32, so central can store it and
// fan it out to the site's other kiosks.
func EnrolmentPayload(u *models.User, encs []models.FaceEncoding) ([]byte, error) {
	rec := models.UserRecord{User: *u, Encodings: encs}
	return json.Marshal(EncodeUserRecord(&rec, DtypeFloat32))
}

// EnqueueEnrolment puts an enrolment in the outbox under a fresh key.
func EnqueueEnrolment(ctx context.Context, ob models.Outbox, u *models.User, encs []models.FaceEncoding) error {
	p, err := EnrolmentPayload(u, encs)
	if err != nil {
		return err
	}
	return ob.Enqueue(ctx, &models.OutboxMessage{Kind: models.OutboxEnrolment, Key: uuid.NewString(), Payload: p, UserID: u.ID})
}

// UnknownFaces is the outbox payload of models.OutboxUnknown: how many
// unknown faces the kiosk saw in [From, To).
type UnknownFaces struct {
	From  time.Time `json:"from"`
	To    time.Time `json:"to"`
	Count int       `json:"count"`
}

// EnqueueUnknownFaces puts an unknown-face count in the outbox.
func EnqueueUnknownFaces(ctx context.Context, ob models.Outbox, uf UnknownFaces) error {
	p, err := json.Marshal(uf)
	if err != nil {
		return err
	}
	return ob.Enqueue(ctx, &models.OutboxMessage{Kind: models.OutboxUnknown, Key: uuid.NewString(), Payload: p})
}
