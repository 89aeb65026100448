package heraldtest

import (
	"io"
	"net"
	"strings"
	"sync"
	"testing"
)

// Proxy is a TCP proxy on loopback for tests of clients that must survive
// a broken network: it can cut every connection, or keep them open and
// silently stop forwarding (a dead peer, a laptop's sleep, a NAT that
// forgot the flow), and its target can change (a server restarted on
// another port).
type Proxy struct {
	// URL is "http://" and the proxy's address.
	URL string

	ln     net.Listener
	mu     sync.Mutex
	target string
	frozen bool
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

// NewProxy starts a proxy to target (host:port, or a URL such as a
// Server's). It is closed when the test ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{URL: "http://" + ln.Addr().String(), ln: ln, target: hostPort(target), conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.Close)
	return p
}

func hostPort(target string) string {
	target = strings.TrimPrefix(strings.TrimPrefix(target, "http://"), "https://")
	return strings.TrimSuffix(target, "/")
}

// SetTarget sends new connections to target; open ones stay as they are.
func (p *Proxy) SetTarget(target string) {
	p.mu.Lock()
	p.target = hostPort(target)
	p.mu.Unlock()
}

// Freeze keeps every connection, open and new, but forwards nothing more
// in either direction, until Thaw.
func (p *Proxy) Freeze() {
	p.mu.Lock()
	p.frozen = true
	p.mu.Unlock()
}

// Thaw makes new connections work again and cuts the frozen ones, as a
// network that comes back does to flows that timed out.
func (p *Proxy) Thaw() {
	p.mu.Lock()
	p.frozen = false
	p.mu.Unlock()
	p.Cut()
}

// Cut closes every open connection at once.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// Close stops the proxy and cuts its connections.
func (p *Proxy) Close() {
	p.ln.Close()
	p.Cut()
	p.wg.Wait()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		target := p.target
		p.conns[c] = struct{}{}
		p.mu.Unlock()
		up, err := net.Dial("tcp", target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[up] = struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(c, up)
		go p.pipe(up, c)
	}
}

// pipe copies from src to dst until either closes, holding data back
// (without reading further) while the proxy is frozen.
func (p *Proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			frozen := p.frozen
			p.mu.Unlock()
			if frozen {
				// Swallow everything from now on: the peer sees silence.
				_, _ = io.Copy(io.Discard, src)
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
