// Package sync keeps a kiosk in step with the central registry over MQTT
// (paho.mqtt.golang): users, face encodings, local accounts, configuration
// and commands flow in; attendance events, enrolments, unknown-face counts,
// status and heartbeats flow out.
//
// The wire contract (topics, payloads, signatures, sequencing) is written
// down in docs/mqtt.md and docs/asyncapi.yaml; this package is its kiosk
// side and package sync/registrysim is a central side for demos and tests.
//
// Guarantees, and where they come from:
//   - Nothing uplink is lost: every message waits in the bbolt outbox until
//     central acknowledges its key on the device's ack topic (a PUBACK from
//     the broker is not enough), and is resent after reconnects.
//   - Nothing downlink is lost: messages are acknowledged to the broker
//     (manual QoS 1 acks) only after their effect is committed, so a crash
//     or a stalled apply leaves them with the broker for redelivery.
//   - The user cache converges: updates apply only when newer (versions and
//     tombstones); a per-site sequence exposes gaps, which a snapshot heals.
//   - Nobody but central commands the kiosk: commands, account pushes and
//     configuration carry an Ed25519 signature over device, topic, sequence,
//     issue and expiry times and the payload hash, checked against a pinned
//     public key.
//
// The package is named sync after its folder; inside it the standard
// library's sync is imported as gosync.
package sync
