package synctest

import (
	"fmt"
	"net"
	gosync "sync"
	"testing"
)

// Proxy forwards loopback TCP connections to a target and can make the
// target unreachable: while paused it accepts connections but moves no
// bytes (a silent network, not a refused port), so clients only notice
// through their keepalive, as on a real outage.
type Proxy struct {
	URL    string // tcp://127.0.0.1:port
	target string

	l      net.Listener
	mu     gosync.Mutex
	paused bool
	conns  map[net.Conn]struct{}
	wg     gosync.WaitGroup
}

// MustProxy starts a proxy to target (host:port) and closes it at cleanup.
func MustProxy(tb testing.TB, target string) *Proxy {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &Proxy{URL: fmt.Sprintf("tcp://%s", l.Addr()), target: target, l: l, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	tb.Cleanup(p.Close)
	return p
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.conns[c] = struct{}{}
		paused := p.paused
		p.mu.Unlock()
		if paused {
			continue // held open, silent, until Resume closes it
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

func (p *Proxy) serve(c net.Conn) {
	defer p.wg.Done()
	t, err := net.Dial("tcp", p.target)
	if err != nil {
		p.drop(c)
		return
	}
	p.mu.Lock()
	p.conns[t] = struct{}{}
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			// While paused the bytes vanish, as on a blackholed network.
			if n > 0 && !p.isPaused() {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		done <- struct{}{}
	}
	go pipe(t, c)
	go pipe(c, t)
	<-done
	if !p.isPaused() {
		p.drop(c)
		p.drop(t)
	}
}

func (p *Proxy) isPaused() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.paused
}

func (p *Proxy) drop(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

// Pause makes the target unreachable: no more bytes move in either
// direction on existing or new connections.
func (p *Proxy) Pause() {
	p.mu.Lock()
	p.paused = true
	p.mu.Unlock()
}

// Resume closes every connection held during the outage (as a recovered
// network would reset them) and forwards again.
func (p *Proxy) Resume() {
	p.mu.Lock()
	p.paused = false
	conns := p.conns
	p.conns = map[net.Conn]struct{}{}
	p.mu.Unlock()
	for c := range conns {
		c.Close()
	}
}

// Close stops the proxy.
func (p *Proxy) Close() {
	p.l.Close()
	p.Resume()
}
