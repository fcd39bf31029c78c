package sync_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/kioskd/kioskd/models"
	"github.com/kioskd/kioskd/models/bolt/bolttest"
	ksync "github.com/kioskd/kioskd/sync"
	"github.com/kioskd/kioskd/sync/registrysim"
	"github.com/kioskd/kioskd/sync/synctest"
)

// Over TLS with client certificates and the ACL pattern file from configs/,
// a kiosk works end to end, but what it publishes under another kiosk's
// device id never reaches central, and it cannot read another kiosk's
// downlink.
func TestTLSAndACL(t *testing.T) {
	certs := synctest.MustCerts(t, "central", "kiosk-a", "kiosk-b")
	acl, _ := filepath.Abs("../configs/mosquitto-acl.conf")
	b := synctest.MustMosquitto(t, synctest.WithTLS(certs), synctest.WithACL(acl))
	reg := mustRegistry(t, b.URL, func(c *registrysim.Config) {
		c.ClientID, c.CAFile, c.CertFile, c.KeyFile = "central", certs.CAFile, certs.Clients["central"][0], certs.Clients["central"][1]
	})
	cfg := testConfig(b.URL, "kiosk-a")
	cfg.CAFile, cfg.CertFile, cfg.KeyFile = certs.CAFile, certs.Clients["kiosk-a"][0], certs.Clients["kiosk-a"][1]
	db := bolttest.MustOpenDB(t)
	k := mustKiosk(t, cfg, db)
	waitConnected(t, k)
	ctx := context.Background()

	// End to end over TLS: a user in, an attendance event out and acked.
	if err := reg.Push(ctx, []models.UserRecord{randomUser("tls-user", 1, 1, 1)}, 1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "user applied over TLS", func() bool { return k.matcher.Len() == 1 })
	ev := &models.AttendanceEvent{UserID: "tls-user", Time: time.Now().UTC(), KioskID: "kiosk-a", Distance: 0.3}
	if err := db.RecordAttendance(ctx, ev); err != nil {
		t.Fatal(err)
	}
	k.client.Notify()
	waitFor(t, 15*time.Second, "event acked over TLS", func() bool {
		n, _ := db.OutboxLen(ctx)
		return n == 0 && reg.Received()[ev.ID] > 0
	})

	// kiosk-a, with its own certificate, impersonates kiosk-b.
	rogue := tlsClient(t, b.URL, certs, "kiosk-a", "kiosk-a-rogue")
	got := make(chan string, 10)
	rogue.Subscribe("kiosk/site1/device/kiosk-b/down/#", 1, func(_ mqtt.Client, m mqtt.Message) { got <- m.Topic() }).Wait()
	// Another site's registry (its users and descriptors) is not readable.
	rogue.Subscribe("kiosk/+/registry/#", 1, func(_ mqtt.Client, m mqtt.Message) {
		if !strings.HasPrefix(m.Topic(), "kiosk/site1/") {
			got <- m.Topic()
		}
	}).Wait()
	if err := reg.PublishRaw(ctx, "kiosk/site2/registry/users", false, []byte(`{"schema":1}`)); err != nil {
		t.Fatal(err)
	}
	forged, _ := json.Marshal(ksync.UplinkMessage{Schema: 1, Type: "attendance", Site: testSite, Device: "kiosk-b", Key: "forged-1", Seq: 1, Payload: json.RawMessage(`{}`)})
	rogue.Publish("kiosk/site1/device/kiosk-b/up/attendance", 1, false, forged).Wait()
	rogue.Publish("kiosk/site1/registry/users", 1, false, []byte(`{"schema":1}`)).Wait()
	// Its own topic works, which proves the publishes above were delivered
	// to the broker and dropped by the ACL, not lost.
	own, _ := json.Marshal(ksync.UplinkMessage{Schema: 1, Type: "attendance", Site: testSite, Device: "kiosk-a", Key: "own-1", Seq: 1, Payload: json.RawMessage(`{}`)})
	rogue.Publish("kiosk/site1/device/kiosk-a/up/attendance", 1, false, own).Wait()
	waitFor(t, 10*time.Second, "own publish received", func() bool { return reg.Received()["own-1"] > 0 })
	// Central writes to kiosk-b's downlink; kiosk-a must not see it.
	if err := reg.PublishRaw(ctx, "kiosk/site1/device/kiosk-b/down/ack", false, []byte(`{"schema":1,"type":"ack","device":"kiosk-b","keys":[]}`)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if reg.Received()["forged-1"] != 0 {
		t.Fatal("central received a message kiosk-a published as kiosk-b")
	}
	select {
	case topic := <-got:
		t.Fatalf("kiosk-a read %s", topic)
	default:
	}
	if s := k.client.Status(); s.SiteSeq != 1 || s.Rejected[ksync.RejectMalformed] != 0 {
		t.Fatalf("the rogue registry message reached the kiosk: %+v", s)
	}
}

func tlsClient(t *testing.T, url string, certs *synctest.Certs, cn, clientID string) mqtt.Client {
	t.Helper()
	cfg := ksync.DefaultConfig()
	cfg.Broker, cfg.DeviceID, cfg.SiteID = url, cn, testSite
	cfg.CAFile, cfg.CertFile, cfg.KeyFile = certs.CAFile, certs.Clients[cn][0], certs.Clients[cn][1]
	tc, err := ksync.TLSConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(url).SetClientID(clientID).SetTLSConfig(tc))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("rogue connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}
