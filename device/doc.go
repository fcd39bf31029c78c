// Package device turns camera frames into attendance: it reads frames from a
// camera, stream, video file or folder of images, gates every frame (exactly
// one face, close enough, sharp, well exposed, frontal), follows the face
// across frames, checks liveness, identifies the person once K of the last M
// encodings agree, commits the attendance event and only then announces it on
// an in-process feedback bus.
//
// The HOG face detector and the 68-point shape predictor come from dlib
// through the shared binding in internal/dlib (dlib.go adapts Mats to it);
// frames come from OpenCV through gocv. A frame's route through the files
// is described at the top of pipeline.go.
package device
