package sync_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/kioskd/kioskd/models"
	ksync "github.com/kioskd/kioskd/sync"
)

// The decoders parse what arrives from the broker: they must never panic,
// and whatever they accept must be valid.

func FuzzDecodeUsersMessage(f *testing.F) {
	d := testDescriptor(1)
	f.Add([]byte(`{"schema":1,"type":"users","site":"s1","seq":1,"users":[{"op":"upsert","id":"u1","version":1,"email":"a@b.co","full_name":"A","role":"trainee","encodings":[{"descriptor":` + string(ksync.EncodeDescriptorArray(&d)) + `}]}]}`))
	f.Add([]byte(`{"schema":1,"type":"users","site":"s1","seq":2,"users":[{"op":"delete","id":"u1","version":2}]}`))
	f.Add([]byte(`{"schema":1,"type":"users","seq":1,"users":[{"id":"u","version":1,"encodings":[{"dtype":"float32","descriptor":` + string(ksync.EncodeDescriptorBase64(&d, ksync.DtypeFloat32)) + `}]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ksync.DecodeUsersMessage(b, 1<<20)
		if err != nil {
			return
		}
		for i := range m.Users {
			rec, err := ksync.DecodeUserRecord(&m.Users[i])
			if err != nil {
				continue
			}
			for _, e := range rec.Encodings {
				if err := e.Descriptor.Validate(); err != nil {
					t.Fatalf("accepted an invalid descriptor: %v", err)
				}
			}
			if !rec.Deleted {
				if err := rec.User.Validate(); err != nil {
					t.Fatalf("accepted an invalid user: %v", err)
				}
			}
		}
	})
}

func FuzzDecodeDescriptor(f *testing.F) {
	d := testDescriptor(2)
	f.Add([]byte(ksync.EncodeDescriptorArray(&d)), "")
	f.Add([]byte(ksync.EncodeDescriptorBase64(&d, ksync.DtypeFloat32)), ksync.DtypeFloat32)
	f.Add([]byte(ksync.EncodeDescriptorBase64(&d, ksync.DtypeFloat64)), ksync.DtypeFloat64)
	f.Add([]byte(`[1e400]`), "")
	f.Fuzz(func(t *testing.T, b []byte, dtype string) {
		got, err := ksync.DecodeDescriptor(json.RawMessage(b), dtype)
		if err == nil {
			if err := got.Validate(); err != nil {
				t.Fatalf("accepted an invalid descriptor: %v", err)
			}
		}
	})
}

func FuzzDecodeSigned(f *testing.F) {
	f.Add([]byte(`{"schema":1,"type":"signed","purpose":"command","device":"k1","topic":"kiosk/s1/device/k1/down/command","seq":1,"issued_at":1,"expires_at":2,"payload":"e30=","sig":"` + string(make([]byte, 0)) + `"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ksync.DecodeSigned(b, 1<<20)
		if err == nil && len(m.Sig) != 64 {
			t.Fatal("accepted a signature of the wrong size")
		}
	})
}

func FuzzDecodeSnapshotChunk(f *testing.F) {
	f.Add([]byte(`{"schema":1,"type":"snapshot","site":"s1","device":"k1","request_id":"r","snapshot_id":"s","seq":3,"chunk":0,"chunks":1,"total":0,"users":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ksync.DecodeSnapshotChunk(b, 1<<20)
		if err == nil && (m.Chunk < 0 || m.Chunk >= m.Chunks) {
			t.Fatal("accepted a chunk index out of range")
		}
	})
}

func FuzzDecodeAck(f *testing.F) {
	f.Add([]byte(`{"schema":1,"type":"ack","device":"k1","keys":["a","b"]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ksync.DecodeAck(b, 1<<20)
		if err == nil && len(m.Keys) > ksync.MaxAckKeys {
			t.Fatal("accepted too many keys")
		}
	})
}

// FuzzCheckDown: the contract check never panics, and a users message it
// accepts whole the decoder accepts too (the schema is not looser than the
// code that uses the message), except integers written with a fraction or
// an exponent (1e3, 2.0), which JSON Schema calls integers and docs/mqtt.md
// rules out.
func FuzzCheckDown(f *testing.F) {
	c, err := ksync.LoadContract()
	if err != nil {
		f.Fatal(err)
	}
	tp := ksync.Topics{Prefix: "kiosk", Site: "s1", Device: "k1"}
	d := testDescriptor(3)
	f.Add([]byte(`{"schema":1,"type":"users","site":"s1","seq":1,"users":[{"op":"upsert","id":"u1","version":1,"email":"a@b.co","full_name":"A","role":"trainee","encodings":[{"descriptor":` + string(ksync.EncodeDescriptorArray(&d)) + `}]}]}`))
	f.Add([]byte(`{"schema":1,"type":"users","site":"s1","seq":2,"users":[{"op":"delete","id":"u1","version":2},{"id":"x"}]}`))
	f.Add([]byte(`{"schema":1,"type":"users","site":"s1","seq":1.5,"users":[]}`))
	f.Add([]byte(`{"schema":1,"type":"users","site":"s1","seq":1e3,"users":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		bad, err := c.CheckDown(tp.Users(), b, 1<<20)
		if err != nil {
			return
		}
		m, err := ksync.DecodeUsersMessage(b, 1<<20)
		if err != nil && !strings.Contains(models.ErrorMessage(err), ": number ") {
			t.Fatalf("the contract accepts what the decoder refuses: %v", err)
		}
		if err != nil {
			return
		}
		if len(m.Users) < len(bad) {
			t.Fatalf("%d bad records of %d", len(bad), len(m.Users))
		}
	})
}
