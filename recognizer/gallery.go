package recognizer

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/kioskd/kioskd/models"
)

// GalleryStore is what Gallery needs of the store.
type GalleryStore interface {
	models.EnrolmentStore
	GetUser(ctx context.Context, id string) (*models.User, error)
	ListEncodings(ctx context.Context, userID string) ([]*models.FaceEncoding, error)
	ForEachEncoding(ctx context.Context, fn func(enc *models.FaceEncoding) error) error
	CountEncodings(ctx context.Context) (int, error)
	UpsertLocalUsers(ctx context.Context, recs []models.UserRecord) ([]models.UpsertResult, error)
	ApplyUserRecords(ctx context.Context, recs []models.UserRecord) ([]bool, error)
	ReplaceAllUsers(ctx context.Context, recs []models.UserRecord) error
}

// Gallery implements models.Enroller: every change to users and faces,
// made on the device or pushed by central, writes the store and then
// brings the matcher in step through Refresh. The store is the source of
// truth; the matcher is rebuilt from it, never edited from the request.
type Gallery struct {
	store   GalleryStore
	matcher *Matcher
	logger  *slog.Logger
}

var _ models.Enroller = (*Gallery)(nil)

// NewGallery returns a gallery over store and matcher; it does no I/O.
// logger (nil discards) reports refreshes that failed after central's
// changes were written: those are not retried by re-applying them.
func NewGallery(store GalleryStore, matcher *Matcher, logger *slog.Logger) *Gallery {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Gallery{store: store, matcher: matcher, logger: logger}
}

// Matcher returns the matcher the gallery keeps in step.
func (g *Gallery) Matcher() *Matcher { return g.matcher }

// Load fills the matcher with every stored descriptor of active users,
// straight from the store walk into the matcher's contiguous storage (no
// per-user copies, which would double startup's peak memory). Call it once,
// on an empty matcher, before anything else changes the store.
func (g *Gallery) Load(ctx context.Context) error {
	n, err := g.store.CountEncodings(ctx)
	if err != nil {
		return fmt.Errorf("count descriptors: %w", err)
	}
	g.matcher.Grow(n)
	if err := g.store.ForEachEncoding(ctx, func(enc *models.FaceEncoding) error {
		g.matcher.AddDescriptors(enc.UserID, enc.Descriptor)
		return nil
	}); err != nil {
		return fmt.Errorf("load descriptors: %w", err)
	}
	return nil
}

// Refresh makes the matcher hold exactly each user's stored descriptors
// when the user is active, none otherwise. It is the one place the matcher
// follows a change of the store.
func (g *Gallery) Refresh(ctx context.Context, userIDs ...string) error {
	for _, id := range userIDs {
		u, err := g.store.GetUser(ctx, id)
		if models.ErrorCode(err) == models.ENOTFOUND || (err == nil && u.Status != models.UserActive) {
			g.matcher.RemoveUser(id)
			continue
		} else if err != nil {
			return err
		}
		encs, err := g.store.ListEncodings(ctx, id)
		if err != nil {
			return err
		}
		ds := make([]models.Descriptor, len(encs))
		for i, e := range encs {
			ds[i] = e.Descriptor
		}
		g.matcher.SetUser(id, ds)
	}
	return nil
}

// Enrol writes a change made on the device with its outbox message (one
// transaction, see models.EnrolmentStore) and refreshes the user.
func (g *Gallery) Enrol(ctx context.Context, e *models.Enrolment) (*models.User, error) {
	u, err := g.store.Enrol(ctx, e)
	if err != nil {
		return nil, err
	}
	return u, g.Refresh(ctx, u.ID)
}

// UpsertLocalUsers writes a bulk-import batch (each user with its outbox
// message) and refreshes every written user.
func (g *Gallery) UpsertLocalUsers(ctx context.Context, recs []models.UserRecord) ([]models.UpsertResult, error) {
	res, err := g.store.UpsertLocalUsers(ctx, recs)
	var ids []string
	for _, r := range res {
		if r.Err == nil && r.UserID != "" {
			ids = append(ids, r.UserID)
		}
	}
	if rerr := g.Refresh(ctx, ids...); err == nil {
		err = rerr
	}
	return res, err
}

// ApplyUserRecords applies central's upserts and tombstones and refreshes
// every user an applied record touched (a re-keyed local user included).
func (g *Gallery) ApplyUserRecords(ctx context.Context, recs []models.UserRecord) ([]bool, error) {
	applied, err := g.store.ApplyUserRecords(ctx, recs)
	if err != nil {
		return applied, err
	}
	var ids []string
	for i := range recs {
		if i < len(applied) && applied[i] {
			ids = append(ids, recs[i].User.ID)
			if lid := recs[i].LocalID; lid != "" {
				ids = append(ids, lid) // re-keyed to User.ID: gone
			}
		}
	}
	if err := g.Refresh(ctx, ids...); err != nil {
		g.logger.Error("matcher refresh failed", "err", err)
	}
	return applied, nil
}

// ReplaceAllUsers applies central's snapshot and makes the matcher hold
// exactly the store's active users.
func (g *Gallery) ReplaceAllUsers(ctx context.Context, recs []models.UserRecord) error {
	before := map[string]bool{}
	if err := g.store.ForEachEncoding(ctx, func(e *models.FaceEncoding) error {
		before[e.UserID] = true
		return nil
	}); err != nil {
		return err
	}
	if err := g.store.ReplaceAllUsers(ctx, recs); err != nil {
		return err
	}
	after := map[string][]models.Descriptor{}
	if err := g.store.ForEachEncoding(ctx, func(e *models.FaceEncoding) error {
		after[e.UserID] = append(after[e.UserID], e.Descriptor)
		return nil
	}); err != nil {
		g.logger.Error("matcher reload failed", "err", err)
		return nil
	}
	for id := range before {
		if _, ok := after[id]; !ok {
			g.matcher.RemoveUser(id)
		}
	}
	for id, ds := range after {
		g.matcher.SetUser(id, ds)
	}
	return nil
}
