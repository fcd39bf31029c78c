package sync_test

import (
	"crypto/ed25519"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/kioskd/kioskd/models"
	ksync "github.com/kioskd/kioskd/sync"
)

func testDescriptor(seed int) models.Descriptor {
	var d models.Descriptor
	var s float64
	for i := range d {
		v := math.Sin(float64(seed*131+i*7)) + 0.01
		d[i] = float32(v)
		s += v * v
	}
	n := float32(math.Sqrt(s))
	for i := range d {
		d[i] /= n
	}
	return d
}

func TestDecodeDescriptorEncodings(t *testing.T) {
	d := testDescriptor(1)
	for name, raw := range map[string]json.RawMessage{
		"json":    ksync.EncodeDescriptorArray(&d),
		"float32": ksync.EncodeDescriptorBase64(&d, ksync.DtypeFloat32),
		"float64": ksync.EncodeDescriptorBase64(&d, ksync.DtypeFloat64),
	} {
		dtype := name
		if name == "json" {
			dtype = ""
		}
		got, err := ksync.DecodeDescriptor(raw, dtype)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got != d {
			t.Fatalf("%s: round trip changed the descriptor", name)
		}
	}
}

func TestDecodeDescriptorRejects(t *testing.T) {
	d := testDescriptor(2)
	nan := d
	nan[5] = float32(math.NaN())
	inf := d
	inf[0] = float32(math.Inf(1))
	var zero models.Descriptor
	big := d
	for i := range big {
		big[i] *= 10
	}
	arr := string(ksync.EncodeDescriptorArray(&d))
	for name, c := range map[string]struct {
		raw   string
		dtype string
	}{
		"nan float32":    {string(ksync.EncodeDescriptorBase64(&nan, ksync.DtypeFloat32)), ksync.DtypeFloat32},
		"inf float32":    {string(ksync.EncodeDescriptorBase64(&inf, ksync.DtypeFloat32)), ksync.DtypeFloat32},
		"zero norm":      {string(ksync.EncodeDescriptorArray(&zero)), ""},
		"norm too big":   {string(ksync.EncodeDescriptorArray(&big)), ""},
		"127 values":     {"[" + strings.Repeat("0.08,", 126) + "0.08]", ""},
		"129 values":     {"[" + strings.Repeat("0.08,", 128) + "0.08]", ""},
		"strings":        {`["a","b"]`, ""},
		"NaN literal":    {strings.Replace(arr, "[", "[NaN,", 1), ""},
		"overflow":       {"[" + strings.Repeat("0.08,", 127) + "1e39]", ""},
		"huge exponent":  {"[" + strings.Repeat("0.08,", 127) + "1e400]", ""},
		"wrong dtype":    {string(ksync.EncodeDescriptorBase64(&d, ksync.DtypeFloat32)), "int8"},
		"dtype mismatch": {string(ksync.EncodeDescriptorBase64(&d, ksync.DtypeFloat32)), ksync.DtypeFloat64},
		"not base64":     {`"!!!"`, ksync.DtypeFloat32},
		"object":         {`{"x":1}`, ""},
		"empty":          {``, ""},
		"null":           {`null`, ""},
	} {
		if _, err := ksync.DecodeDescriptor(json.RawMessage(c.raw), c.dtype); models.ErrorCode(err) != models.EINVALID {
			t.Errorf("%s: got %v, want EINVALID", name, err)
		}
	}
}

func TestDecodeUsersMessage(t *testing.T) {
	ok := `{"schema":1,"type":"users","site":"s1","seq":3,"issued_at":"2025-01-01T00:00:00Z","users":[{"op":"delete","id":"u1","version":2}]}`
	m, err := ksync.DecodeUsersMessage([]byte(ok), 1<<20)
	if err != nil || m.Seq != 3 || len(m.Users) != 1 {
		t.Fatalf("valid message: %v %+v", err, m)
	}
	for name, c := range map[string]struct {
		payload string
		code    string
	}{
		"schema 2":       {strings.Replace(ok, `"schema":1`, `"schema":2`, 1), models.EINVALID},
		"no schema":      {strings.Replace(ok, `"schema":1,`, ``, 1), models.EINVALID},
		"wrong type":     {strings.Replace(ok, `"type":"users"`, `"type":"head"`, 1), models.EINVALID},
		"seq as string":  {strings.Replace(ok, `"seq":3`, `"seq":"3"`, 1), models.EINVALID},
		"negative seq":   {strings.Replace(ok, `"seq":3`, `"seq":-3`, 1), models.EINVALID},
		"users object":   {strings.Replace(ok, `"users":[`, `"users":{"a":[`, 1) + "}", models.EINVALID},
		"version string": {strings.Replace(ok, `"version":2`, `"version":"2"`, 1), models.EINVALID},
		"trailing":       {ok + "{}", models.EINVALID},
		"not json":       {"hello", models.EINVALID},
		"oversized":      {ok + strings.Repeat(" ", 2000), models.ETOOLARGE},
	} {
		if _, err := ksync.DecodeUsersMessage([]byte(c.payload), len(ok)+100); models.ErrorCode(err) != c.code {
			t.Errorf("%s: got %v, want %s", name, err, c.code)
		}
	}
}

func TestDecodeUserRecord(t *testing.T) {
	d := testDescriptor(3)
	w := ksync.WireUser{Op: "upsert", ID: "u1", Version: 4, Email: " Ada@Example.org ", FullName: "Ada", Role: "trainee",
		Encodings: []ksync.WireEncoding{{Descriptor: ksync.EncodeDescriptorArray(&d)}}}
	rec, err := ksync.DecodeUserRecord(&w)
	if err != nil {
		t.Fatal(err)
	}
	if rec.User.Email != "ada@example.org" || rec.User.Status != models.UserActive || len(rec.Encodings) != 1 || rec.Encodings[0].Source != models.SourceCentral {
		t.Fatalf("record %+v", rec)
	}
	bad := []func(w *ksync.WireUser){
		func(w *ksync.WireUser) { w.ID = "" },
		func(w *ksync.WireUser) { w.Version = 0 },
		func(w *ksync.WireUser) { w.Op = "merge" },
		func(w *ksync.WireUser) { w.Email = "not-an-email" },
		func(w *ksync.WireUser) { w.Role = "janitor" },
		func(w *ksync.WireUser) { w.Status = "zombie" },
		func(w *ksync.WireUser) { w.FullName = "Ada\x00Lovelace" },
		func(w *ksync.WireUser) { w.FullName = "Ada \x1b[2JLovelace" },
		func(w *ksync.WireUser) { w.FullName = "Ada \u202egpj.exe" },
		func(w *ksync.WireUser) { w.Department = "Maths\u2066" },
		func(w *ksync.WireUser) { w.Encodings[0].Model = "facenet" },
		func(w *ksync.WireUser) { w.Encodings[0].Descriptor = json.RawMessage(`[1,2]`) },
		func(w *ksync.WireUser) {
			w.Encodings = make([]ksync.WireEncoding, models.MaxEncodingsPerUser+1)
			for i := range w.Encodings {
				w.Encodings[i].Descriptor = ksync.EncodeDescriptorArray(&d)
			}
		},
	}
	for i, mutate := range bad {
		c := w
		c.Encodings = append([]ksync.WireEncoding(nil), w.Encodings...)
		mutate(&c)
		if _, err := ksync.DecodeUserRecord(&c); models.ErrorCode(err) != models.EINVALID {
			t.Errorf("case %d: got %v, want EINVALID", i, err)
		}
	}
	del := ksync.WireUser{Op: "delete", ID: "u1", Version: 9}
	if rec, err := ksync.DecodeUserRecord(&del); err != nil || !rec.Deleted || rec.User.Version != 9 {
		t.Fatalf("delete: %v %+v", err, rec)
	}
}

func TestVerifySigned(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	_, other, _ := ed25519.GenerateKey(nil)
	now := time.Unix(1_700_000_000, 0)
	topics := ksync.Topics{Prefix: "kiosk", Site: "s1", Device: "k1"}
	mk := func(mut func(m *ksync.SignedMessage), key ed25519.PrivateKey) *ksync.SignedMessage {
		m := &ksync.SignedMessage{Purpose: ksync.DownCommand, Device: "k1", Topic: topics.Down(ksync.DownCommand), Seq: 5,
			IssuedAt: now.Add(-time.Minute).Unix(), ExpiresAt: now.Add(time.Hour).Unix(), Payload: []byte(`{"name":"publish_status"}`)}
		if mut != nil {
			mut(m)
		}
		ksync.Sign(m, key)
		return m
	}
	verify := func(m *ksync.SignedMessage) string {
		r, _ := ksync.VerifySigned(m, pub, "k1", ksync.DownCommand, topics.Down(ksync.DownCommand), 4, now, 5*time.Minute)
		return r
	}
	if r := verify(mk(nil, priv)); r != "" {
		t.Fatalf("valid message rejected: %s", r)
	}
	tampered := mk(nil, priv)
	tampered.Payload = []byte(`{"name":"reboot"}`)
	cases := map[string]struct {
		m    *ksync.SignedMessage
		want string
	}{
		"other key":    {mk(nil, other), ksync.RejectForged},
		"tampered":     {tampered, ksync.RejectForged},
		"other device": {mk(func(m *ksync.SignedMessage) { m.Device = "k2" }, priv), ksync.RejectOtherDevice},
		"other topic":  {mk(func(m *ksync.SignedMessage) { m.Topic = topics.Down(ksync.DownAccount) }, priv), ksync.RejectOtherDevice},
		"replay":       {mk(func(m *ksync.SignedMessage) { m.Seq = 4 }, priv), ksync.RejectReplay},
		"expired":      {mk(func(m *ksync.SignedMessage) { m.ExpiresAt = now.Add(-time.Second).Unix() }, priv), ksync.RejectExpired},
		"future": {mk(func(m *ksync.SignedMessage) {
			m.IssuedAt = now.Add(time.Hour).Unix()
			m.ExpiresAt = now.Add(2 * time.Hour).Unix()
		}, priv), ksync.RejectExpired},
		"eternal": {mk(func(m *ksync.SignedMessage) { m.ExpiresAt = now.Add(365 * 24 * time.Hour).Unix() }, priv), ksync.RejectMalformed},
		// The lifetime in nanoseconds overflows int64 and wraps to a small or
		// negative duration.
		"2^62 s": {mk(func(m *ksync.SignedMessage) { m.ExpiresAt = m.IssuedAt + 1<<62 }, priv), ksync.RejectMalformed},
		"wrapped": {mk(func(m *ksync.SignedMessage) {
			m.IssuedAt = -1 << 63
			m.ExpiresAt = now.Add(time.Hour).Unix()
		}, priv), ksync.RejectMalformed},
	}
	for name, c := range cases {
		if got := verify(c.m); got != c.want {
			t.Errorf("%s: got %q, want %q", name, got, c.want)
		}
	}
	// The envelope survives JSON (payload and signature as base64).
	b, _ := json.Marshal(mk(nil, priv))
	m, err := ksync.DecodeSigned(b, 1<<16)
	if err != nil || verify(m) != "" {
		t.Fatalf("decoded envelope: %v", err)
	}
}

func TestTopicsAndConfig(t *testing.T) {
	tp := ksync.Topics{Prefix: "kiosk", Site: "s1", Device: "k1"}
	if got := tp.Up("attendance"); got != "kiosk/s1/device/k1/up/attendance" {
		t.Fatal(got)
	}
	dt, ok := ksync.ParseDeviceTopic("kiosk", tp.Down(ksync.DownAck))
	if !ok || dt.Device != "k1" || dt.Dir != "down" || dt.Kind != "ack" {
		t.Fatalf("%+v %v", dt, ok)
	}
	if _, ok := ksync.ParseDeviceTopic("kiosk", tp.Users()); ok {
		t.Fatal("users topic parsed as a device topic")
	}
	cfg := ksync.DefaultConfig()
	cfg.Broker, cfg.DeviceID, cfg.SiteID = "tcp://localhost:1883", "k1", "s1"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	for field, mut := range map[string]func(c *ksync.Config){
		"sync.broker":              func(c *ksync.Config) { c.Broker = "http://x" },
		"sync.device_id":           func(c *ksync.Config) { c.DeviceID = "a/b" },
		"sync.site_id":             func(c *ksync.Config) { c.SiteID = "" },
		"sync.topic_prefix":        func(c *ksync.Config) { c.TopicPrefix = "#" },
		"sync.registry_public_key": func(c *ksync.Config) { c.RegistryPublicKey = "abc" },
		"sync.inflight":            func(c *ksync.Config) { c.Inflight = 0 },
		"sync.ack_timeout":         func(c *ksync.Config) { c.AckTimeout = 0 },
		"sync.cert_file":           func(c *ksync.Config) { c.CertFile = "x.pem" },
	} {
		c := cfg
		mut(&c)
		err := c.Validate()
		if models.ErrorDetails(err)["field"] != field {
			t.Errorf("%s: got %v", field, err)
		}
	}
}

func nanNaN() float64 { return math.NaN() }
