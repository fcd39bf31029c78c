package main

import (
	"context"
	"fmt"
	"os"

	"github.com/kioskd/kioskd/models"
)

// runRestore handles `kioskd restore BACKUP`: it writes the database held in
// an encrypted backup to the data dir's kioskd.db, decrypting it with the
// data dir's key file (the one the backup was made with). kioskd must be
// stopped and the current database moved aside first.
func (m *Main) runRestore(_ context.Context) error {
	if len(m.Args) != 1 {
		return fmt.Errorf("restore: usage: kioskd restore [-config FILE] BACKUP")
	}
	f, err := os.Open(m.Args[0])
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer f.Close()
	dbPath := m.dataPath("kioskd.db")
	if err := models.RestoreBackup(f, m.keyPath(), dbPath); err != nil {
		return err
	}
	fmt.Fprintf(m.Stdout, "restored %s into %s\n", m.Args[0], dbPath)
	return nil
}
