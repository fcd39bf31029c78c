package sync

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	gosync "sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
	"gopkg.in/yaml.v3"

	"github.com/kioskd/kioskd/docs"
	"github.com/kioskd/kioskd/models"
)

// Contract is docs/asyncapi.yaml compiled: the JSON schema of the message
// on every channel. The client checks every downlink message against it
// before use, so the document is what the kiosk accepts; the tests check
// every uplink message against it, so the document is what the kiosk sends.
type Contract struct {
	channels []contractChannel
	record   *jsonschema.Schema            // CentralUser: users checked one by one
	inner    map[string]*jsonschema.Schema // signed payloads by purpose
}

type contractChannel struct {
	name   string // the AsyncAPI channel, e.g. {prefix}/{site}/registry/users
	re     *regexp.Regexp
	down   bool // central publishes (the AsyncAPI "subscribe" operation)
	schema *jsonschema.Schema
	users  bool // carries user records in "users"
}

var loadContract = gosync.OnceValues(func() (*Contract, error) { return compileContract(docs.AsyncAPI) })

// LoadContract returns the compiled contract embedded in the binary.
func LoadContract() (*Contract, error) { return loadContract() }

const contractURL = "asyncapi.json"

func compileContract(doc []byte) (*Contract, error) {
	var y any
	if err := yaml.Unmarshal(doc, &y); err != nil {
		return nil, fmt.Errorf("asyncapi: %w", err)
	}
	j, err := json.Marshal(y)
	if err != nil {
		return nil, fmt.Errorf("asyncapi: %w", err)
	}
	root, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
	if err != nil {
		return nil, fmt.Errorf("asyncapi: %w", err)
	}
	comp := jsonschema.NewCompiler()
	comp.DefaultDraft(jsonschema.Draft7) // AsyncAPI 2.x schemas are a superset of draft 7
	comp.AssertFormat()
	comp.AssertContent()
	if err := comp.AddResource(contractURL, root); err != nil {
		return nil, fmt.Errorf("asyncapi: %w", err)
	}
	schema := func(name string) (*jsonschema.Schema, error) {
		s, err := comp.Compile(contractURL + "#/components/schemas/" + name)
		if err != nil {
			return nil, fmt.Errorf("asyncapi: schema %s: %w", name, err)
		}
		return s, nil
	}
	var raw struct {
		Channels map[string]map[string]struct {
			Message struct {
				Ref string `json:"$ref"`
			} `json:"message"`
		} `json:"channels"`
		Components struct {
			Messages map[string]struct {
				Payload struct {
					Ref string `json:"$ref"`
				} `json:"payload"`
			} `json:"messages"`
		} `json:"components"`
	}
	if err := json.Unmarshal(j, &raw); err != nil {
		return nil, fmt.Errorf("asyncapi: %w", err)
	}
	c := &Contract{inner: map[string]*jsonschema.Schema{}}
	for name, ops := range raw.Channels {
		for op, o := range ops {
			if op != "publish" && op != "subscribe" {
				continue
			}
			msg, ok := strings.CutPrefix(o.Message.Ref, "#/components/messages/")
			ref := raw.Components.Messages[msg].Payload.Ref
			sname, ok2 := strings.CutPrefix(ref, "#/components/schemas/")
			if !ok || !ok2 {
				return nil, fmt.Errorf("asyncapi: channel %s: message %q has no payload schema", name, o.Message.Ref)
			}
			s, err := schema(sname)
			if err != nil {
				return nil, err
			}
			pat := regexp.QuoteMeta(name)
			pat = regexp.MustCompile(`\\\{[a-z]+\\\}`).ReplaceAllString(pat, `[^/]+`)
			c.channels = append(c.channels, contractChannel{name: name, re: regexp.MustCompile("^" + pat + "$"),
				down: op == "subscribe", schema: s, users: sname == "UsersMessage" || sname == "SnapshotChunk"})
		}
	}
	if c.record, err = schema("CentralUser"); err != nil {
		return nil, err
	}
	for purpose, name := range map[string]string{DownCommand: "Command", DownAccount: "AccountPush", DownConfig: "Config", DownTimetable: "Timetable"} {
		if c.inner[purpose], err = schema(name); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (c *Contract) channel(topic string) *contractChannel {
	for i := range c.channels {
		if c.channels[i].re.MatchString(topic) {
			return &c.channels[i]
		}
	}
	return nil
}

// Check validates a whole message against the schema of its topic's
// channel. Errors: EINVALID naming the channel and the first violation.
func (c *Contract) Check(topic string, payload []byte) error {
	ch := c.channel(topic)
	if ch == nil {
		return models.Errorf(models.EINVALID, "topic %s: no channel in docs/asyncapi.yaml", topic)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(payload))
	if err != nil {
		return models.Errorf(models.EINVALID, "payload: not valid JSON")
	}
	return checkValue(ch.schema, ch.name, v)
}

// CheckDown validates a message central sent before the kiosk uses it.
// User records are checked one by one: a record that breaks the contract
// is returned in bad (by index) and refused alone, while the envelope
// breaking it (err) refuses the whole message. Larger than maxSize is
// ETOOLARGE, checked before parsing.
func (c *Contract) CheckDown(topic string, payload []byte, maxSize int) (bad map[int]error, err error) {
	if maxSize > 0 && len(payload) > maxSize {
		return nil, models.Errorf(models.ETOOLARGE, "payload: %d bytes, limit %d", len(payload), maxSize)
	}
	ch := c.channel(topic)
	if ch == nil || !ch.down {
		return nil, models.Errorf(models.EINVALID, "topic %s: central publishes no such channel", topic)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(payload))
	if err != nil {
		return nil, models.Errorf(models.EINVALID, "payload: not valid JSON")
	}
	if obj, ok := v.(map[string]any); ok && ch.users {
		if users, ok := obj["users"].([]any); ok {
			obj["users"] = users[:0:0] // the envelope is checked without its records
			defer func() { obj["users"] = users }()
			if err := checkValue(ch.schema, ch.name, obj); err != nil {
				return nil, err
			}
			if len(users) > MaxUsersPerMessage {
				return nil, models.Errorf(models.ETOOLARGE, "users: %d records, limit %d", len(users), MaxUsersPerMessage)
			}
			for i, u := range users {
				if err := checkValue(c.record, "user record", u); err != nil {
					if bad == nil {
						bad = map[int]error{}
					}
					bad[i] = err
				}
			}
			return bad, nil
		}
	}
	return nil, checkValue(ch.schema, ch.name, v)
}

// CheckInner validates the inner payload of a verified signed message.
func (c *Contract) CheckInner(purpose string, payload []byte) error {
	s := c.inner[purpose]
	if s == nil {
		return models.Errorf(models.EINVALID, "signed purpose %q has no schema", purpose)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(payload))
	if err != nil {
		return models.Errorf(models.EINVALID, "%s payload: not valid JSON", purpose)
	}
	return checkValue(s, purpose+" payload", v)
}

var printer = message.NewPrinter(language.English)

// checkValue validates v and reduces a failure to its first leaf: where in
// the message and what is wrong.
func checkValue(s *jsonschema.Schema, what string, v any) error {
	err := s.Validate(v)
	if err == nil {
		return nil
	}
	ve, ok := err.(*jsonschema.ValidationError)
	if !ok {
		return models.Errorf(models.EINVALID, "%s: %v", what, err)
	}
	for len(ve.Causes) > 0 {
		ve = ve.Causes[0]
	}
	return models.Errorf(models.EINVALID, "%s does not match docs/asyncapi.yaml: at /%s: %s",
		what, strings.Join(ve.InstanceLocation, "/"), ve.ErrorKind.LocalizedString(printer))
}
