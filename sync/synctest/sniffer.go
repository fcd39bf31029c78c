package synctest

import (
	"slices"
	gosync "sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// Message is one message a Sniffer saw.
type Message struct {
	Topic    string
	Payload  []byte
	Retained bool
}

// Sniffer is a plain MQTT client recording every message on a filter, as
// an observer (or central) would see them.
type Sniffer struct {
	mu   gosync.Mutex
	msgs []Message
}

// MustSniffer connects a clean-session client to url and subscribes to
// filter with QoS 1; it disconnects when the test ends.
func MustSniffer(tb testing.TB, url, clientID, filter string) *Sniffer {
	tb.Helper()
	s := &Sniffer{}
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(url).SetClientID(clientID).SetCleanSession(true).
		SetOrderMatters(true))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		tb.Fatalf("sniffer connect: %v", tok.Error())
	}
	tok := c.Subscribe(filter, 1, func(_ mqtt.Client, m mqtt.Message) {
		s.mu.Lock()
		s.msgs = append(s.msgs, Message{Topic: m.Topic(), Payload: slices.Clone(m.Payload()), Retained: m.Retained()})
		s.mu.Unlock()
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		tb.Fatalf("sniffer subscribe: %v", tok.Error())
	}
	tb.Cleanup(func() { c.Disconnect(100) })
	return s
}

// Messages returns a copy of the messages seen so far, in arrival order.
func (s *Sniffer) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.msgs)
}
