package bolt_test

import (
	"bytes"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/kioskd/kioskd/models"
	"github.com/kioskd/kioskd/models/bolt"
	"github.com/kioskd/kioskd/models/bolt/bolttest"
)

// FuzzStoredEncoding feeds arbitrary stored bytes to the encoding decoder:
// it must fail cleanly, never panic, and only accept authentic records.
func FuzzStoredEncoding(f *testing.F) {
	key := bytes.Repeat([]byte{9}, bolt.KeySize)
	enc := &models.FaceEncoding{ID: "e", UserID: "u", Descriptor: bolttest.RandomDescriptor(rand.New(rand.NewPCG(1, 2))),
		Source: models.SourceLocal, Model: models.DefaultModelName, CreatedAt: bolttest.FixedNow}
	sealed, err := bolt.SealEncodingForTest(key, enc)
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte("u\x00e"), sealed)
	f.Add([]byte("u\x00e"), sealed[:20])
	f.Add([]byte("\x00"), []byte{1, 1})
	f.Add([]byte("u\x00x"), sealed)
	f.Fuzz(func(t *testing.T, k, v []byte) {
		got, err := bolt.OpenEncodingForTest(key, k, v)
		if err != nil {
			return
		}
		if !bytes.Equal(k, []byte("u\x00e")) || got.Descriptor != enc.Descriptor {
			t.Fatalf("accepted a forged record: key %q", k)
		}
	})
}

// FuzzStoredRecords runs every decoder of stored records over arbitrary
// bytes.
func FuzzStoredRecords(f *testing.F) {
	for _, s := range []string{`{"id":"u","email":"a@b.c"}`, `{"seq":1,"payload":"AA=="}`, `{"time":"2025-01-01T00:00:00Z"}`, `[`, "\x01\x02"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		bolt.DecodeStoredForTest(v)
	})
}

// FuzzBackup feeds arbitrary bytes to the backup parsers (the encrypted
// chunk layer and the record stream inside): they fail cleanly, never panic
// and never allocate more than a field's bound.
func FuzzBackup(f *testing.F) {
	db := bolttest.MustOpenDB(f)
	bolttest.MustAddEncoding(f, db, bolttest.MustCreateUser(f, db, nil).ID, bolttest.RandomDescriptor(rand.New(rand.NewPCG(1, 3))))
	var file bytes.Buffer
	if _, err := db.Backup(&file); err != nil {
		f.Fatal(err)
	}
	key, err := os.ReadFile(db.KeyPath)
	if err != nil {
		f.Fatal(err)
	}
	stream := db.DumpStreamForTest()
	if bolt.ParseBackupForTest(key, stream) == 0 {
		f.Fatal("the seed stream parses to no records")
	}
	f.Add(file.Bytes())
	f.Add(stream)
	f.Add([]byte("B\x05users\x00K\x01k\x01vE"))
	f.Fuzz(func(t *testing.T, data []byte) {
		bolt.ParseBackupForTest(key, data)
	})
}
