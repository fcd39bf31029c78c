package sync

import (
	"errors"
	"strings"
)

// Topic levels after {prefix}/{site}/device/{device}/.
const (
	dirUp   = "up"
	dirDown = "down"
)

// Downlink kinds, published by central under {prefix}/{site}/device/{device}/down/.
const (
	DownSnapshot = "snapshot" // snapshot chunks answering a snapshot request
	DownAck      = "ack"      // keys of uplink messages central has stored
	DownCommand  = "command"  // signed commands
	DownAccount  = "account"  // signed local-account upserts and deletes
	DownConfig   = "config"   // signed configuration
)

// Uplink kinds, published by the kiosk under {prefix}/{site}/device/{device}/up/.
// Outbox kinds (models.OutboxAttendance, ...) are uplink kinds too.
const (
	UpStatus          = "status"           // retained; the Will sets it offline
	UpHeartbeat       = "heartbeat"        // QoS 0, periodic
	UpSnapshotRequest = "snapshot_request" // ask central for the full state
	UpCommandResult   = "command_result"   // outcome of a signed command
)

// Topics is the topic layout of one kiosk. Site-wide registry messages live
// under {prefix}/{site}/registry/; everything of one device lives under
// {prefix}/{site}/device/{device}/, split into up/ (the kiosk publishes,
// nothing else) and down/ (central publishes), so a broker ACL pattern on
// the device id confines each kiosk to its own topics.
type Topics struct {
	Prefix, Site, Device string
}

// Users is the site-wide topic of sequenced user upserts and deletes.
func (t Topics) Users() string { return t.Prefix + "/" + t.Site + "/registry/users" }

// Head is the site-wide retained topic carrying the registry's latest
// sequence number, so a kiosk notices a gap even when nothing follows it.
func (t Topics) Head() string { return t.Prefix + "/" + t.Site + "/registry/head" }

// Device is the root of this device's topics.
func (t Topics) DeviceRoot() string { return t.Prefix + "/" + t.Site + "/device/" + t.Device }

// Up returns the uplink topic of kind.
func (t Topics) Up(kind string) string { return t.DeviceRoot() + "/" + dirUp + "/" + kind }

// Down returns the downlink topic of kind.
func (t Topics) Down(kind string) string { return t.DeviceRoot() + "/" + dirDown + "/" + kind }

// DownFilter is the subscription filter for every downlink kind.
func (t Topics) DownFilter() string { return t.DeviceRoot() + "/" + dirDown + "/+" }

// UpFilterAll is central's subscription filter for every kiosk's uplink
// under prefix (use $share/<group>/ in front on a cluster).
func UpFilterAll(prefix string) string { return prefix + "/+/device/+/" + dirUp + "/+" }

// DeviceTopic is a parsed device topic.
type DeviceTopic struct {
	Site, Device, Dir, Kind string
}

// ParseDeviceTopic splits {prefix}/{site}/device/{device}/{up|down}/{kind}.
func ParseDeviceTopic(prefix, topic string) (DeviceTopic, bool) {
	rest, ok := strings.CutPrefix(topic, prefix+"/")
	if !ok {
		return DeviceTopic{}, false
	}
	p := strings.Split(rest, "/")
	if len(p) != 5 || p[1] != "device" || (p[3] != dirUp && p[3] != dirDown) {
		return DeviceTopic{}, false
	}
	return DeviceTopic{Site: p[0], Device: p[2], Dir: p[3], Kind: p[4]}, true
}

// validTopicLevel refuses ids that would break the topic layout or an ACL.
func validTopicLevel(s string) error {
	switch {
	case s == "":
		return errors.New("required")
	case len(s) > 64:
		return errors.New("longer than 64 characters")
	case strings.ContainsAny(s, "/+#$\x00 "):
		return errors.New("must not contain '/', '+', '#', '$', spaces or NUL")
	}
	return nil
}
