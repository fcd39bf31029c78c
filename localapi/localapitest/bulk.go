package localapitest

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"mime/multipart"
	"os"
	"path/filepath"
	"testing"

	"github.com/xuri/excelize/v2"

	"github.com/kioskd/kioskd/recognizer/recognizertest"
)

// SheetHeader is the import spreadsheet's header row.
var SheetHeader = []any{"External ID", "Email", "Full name", "Role", "Department", "Class group", "Photo file name"}

// BulkPhotos are the enrolment-sized shared photos (320x240 to 970x2204,
// what a phone or a webcam gives); the 3000x2000 ones in photos/ are left
// out so a sequential face_recognition peer finishes in minutes.
var BulkPhotos = []string{
	"people/obama/1.jpg", "people/obama/2.jpg", "people/obama/3_small.jpg", "people/biden/1.jpg", "people/biden/2.jpg",
	"people/kit_harington/1.jpg", "people/kit_harington/2.jpg", "people/rose_leslie/1.jpg", "people/rose_leslie/2.jpg",
	"people/alex_lacamoire/1.jpg", "people/alex_lacamoire/2.png", "people/lin_manuel_miranda/1.png",
}

// MustBulkUpload writes dir/photos.zip with n rows' photos (BulkPhotos
// cycled, each row its own stored entry, so every photo is encoded) and
// returns its path, the matching spreadsheet (external ids, emails and
// names made from prefix and the row number) and each row's source photo.
func MustBulkUpload(tb testing.TB, dir string, n int, prefix string) (zipPath string, sheet []byte, sources []string) {
	tb.Helper()
	zipPath = filepath.Join(dir, "photos.zip")
	zf, err := os.Create(zipPath)
	if err != nil {
		tb.Fatal(err)
	}
	defer zf.Close()
	zw := zip.NewWriter(zf)
	f := excelize.NewFile()
	defer f.Close()
	sw, err := f.NewStreamWriter("Sheet1")
	if err != nil {
		tb.Fatal(err)
	}
	sw.SetRow("A1", SheetHeader)
	data := map[string][]byte{}
	for i := 0; i < n; i++ {
		rel := BulkPhotos[i%len(BulkPhotos)]
		if data[rel] == nil {
			if data[rel], err = os.ReadFile(recognizertest.Testdata(tb, rel)); err != nil {
				tb.Fatal(err)
			}
		}
		name := fmt.Sprintf("p%05d%s", i, filepath.Ext(rel))
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store})
		if err != nil {
			tb.Fatal(err)
		}
		w.Write(data[rel])
		cell, _ := excelize.CoordinatesToCellName(1, i+2)
		sw.SetRow(cell, []any{fmt.Sprintf("%s%05d", prefix, i), fmt.Sprintf("%s%05d@example.com", prefix, i),
			fmt.Sprintf("Bulk %s %05d", prefix, i), "trainee", "", "", name})
		sources = append(sources, recognizertest.Testdata(tb, rel))
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	if err := sw.Flush(); err != nil {
		tb.Fatal(err)
	}
	var buf bytes.Buffer
	if err := f.Write(&buf); err != nil {
		tb.Fatal(err)
	}
	return zipPath, buf.Bytes(), sources
}

// ImportBody streams the multipart body of POST /api/v1/import: the sheet,
// then the zip read from disk as it is sent (a 1,000-photo upload is never
// held in memory). It returns the body and its Content-Type.
func ImportBody(sheet []byte, zipPath string) (io.Reader, string) {
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		w, err := mw.CreateFormFile("sheet", "class.xlsx")
		if err == nil {
			_, err = w.Write(sheet)
		}
		if err == nil {
			w, err = mw.CreateFormFile("photos", "photos.zip")
		}
		if err == nil {
			var f *os.File
			if f, err = os.Open(zipPath); err == nil {
				_, err = io.Copy(w, f)
				f.Close()
			}
		}
		if err == nil {
			err = mw.Close()
		}
		pw.CloseWithError(err)
	}()
	return pr, mw.FormDataContentType()
}
