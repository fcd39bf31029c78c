package device

import (
	"context"
	"image"

	"gocv.io/x/gocv"

	"github.com/kioskd/kioskd/models"
)

// Fakes for tests where no face is ever shown (source handling, leaks):
// reaching them is a test failure in itself.

type nopEncoder struct{}

func (nopEncoder) EncodeMat(context.Context, gocv.Mat) ([]models.Face, error) { return nil, nil }
func (nopEncoder) EncodeFace(context.Context, gocv.Mat, image.Rectangle) (*models.Face, error) {
	return nil, nil
}

type nopMatcher struct{}

func (nopMatcher) Identify(*models.Descriptor) models.Match { return models.Match{} }
func (nopMatcher) SetUser(string, []models.Descriptor)      {}
func (nopMatcher) RemoveUser(string)                        {}
func (nopMatcher) Len() int                                 { return 0 }

type nopStore struct{}

func (nopStore) RecordAttendance(context.Context, *models.AttendanceEvent) error {
	return models.Errorf(models.EINTERNAL, "unexpected")
}
func (nopStore) GetUser(context.Context, string) (*models.User, error) {
	return nil, models.Errorf(models.ENOTFOUND, "no users")
}
func (nopStore) LastAttendance(context.Context, string) (*models.AttendanceEvent, error) {
	return nil, models.Errorf(models.ENOTFOUND, "no events")
}
