// Package docs embeds the documents code checks itself against: the MQTT
// contract (asyncapi.yaml) that package sync validates messages with.
package docs

import _ "embed"

// AsyncAPI is docs/asyncapi.yaml, the MQTT contract with central.
//
//go:embed asyncapi.yaml
var AsyncAPI []byte
