package localapi

import (
	"archive/zip"
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/xuri/excelize/v2"
)

// FuzzImportFiles feeds arbitrary bytes to the two parsers of an import's
// uploads, the .xlsx sheet and the photos .zip: they must return rows or a
// coded error, never panic, and respect the row and unzip limits.
func FuzzImportFiles(f *testing.F) {
	x := excelize.NewFile()
	x.SetSheetRow("Sheet1", "A1", &[]any{"external id", "email", "full name", "role", "department", "class group", "photo"})
	x.SetSheetRow("Sheet1", "A2", &[]any{"S1", "ada@example.org", "Ada Lovelace", "trainee", "ICT", "2A", "ada.jpg"})
	x.SetSheetRow("Sheet1", "A3", &[]any{"S2", "=cmd|' /C calc'!A0", "Bob", "hod", "", "", "../../etc/passwd"})
	var sheet bytes.Buffer
	x.Write(&sheet)
	var zbuf bytes.Buffer
	zw := zip.NewWriter(&zbuf)
	w, _ := zw.Create("ada.jpg")
	w.Write([]byte{0xff, 0xd8, 0xff, 0xe0})
	zw.Create("../evil.jpg")
	zw.Close()
	f.Add(sheet.Bytes(), zbuf.Bytes())
	f.Add([]byte("PK\x03\x04"), []byte{})
	f.Add([]byte{}, []byte("not a zip"))

	cfg := DefaultConfig()
	cfg.MaxImportRows = 50
	cfg.MaxZipEntries = 50
	cfg.MaxUnzipBytes = 4 << 20
	s := NewServer(cfg, Deps{}, nil)
	f.Fuzz(func(t *testing.T, sheetBytes, zipBytes []byte) {
		dir := t.TempDir()
		sp, zp := filepath.Join(dir, "sheet.xlsx"), filepath.Join(dir, "photos.zip")
		os.WriteFile(sp, sheetBytes, 0o600)
		os.WriteFile(zp, zipBytes, 0o600)
		if rows, err := s.readImportSheet(sp, dir); err == nil && len(rows) > cfg.MaxImportRows {
			t.Fatalf("%d rows read past the limit of %d", len(rows), cfg.MaxImportRows)
		}
		if zr, err := s.openPhotosZip(zp); err == nil {
			if idx, err := indexPhotos(zr); err == nil {
				for name := range idx {
					if !safeZipName(name) {
						t.Fatalf("unsafe name %q indexed", name)
					}
				}
			}
			zr.Close()
		}
	})
}
