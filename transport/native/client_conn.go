package native

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"

	"github.com/edgeq/edgeq/transport/httpapi"
)

// clientConn is one connection of a Client: callers queue frames in out
// and wait in FIFO order; the writer goroutine sends out, the reader hands
// each answer to the oldest waiting call.
type clientConn struct {
	nc   net.Conn
	kick chan struct{} // cap 1: out has frames to send

	mu      sync.Mutex
	out     []byte         // guarded by mu: frames not yet written
	waiting []*pendingCall // guarded by mu: calls without an answer, oldest first
	err     error          // guarded by mu: set once the connection broke
	done    chan struct{}  // closed once err is set
}

type pendingCall struct {
	done  chan struct{}
	hello bool
	body  []byte
	err   error
}

func newClientConn(nc net.Conn, wg *sync.WaitGroup) *clientConn {
	cc := &clientConn{nc: nc, kick: make(chan struct{}, 1), done: make(chan struct{})}
	wg.Go(cc.writeLoop)
	wg.Go(cc.readLoop)
	return cc
}

func (cc *clientConn) broken() bool {
	select {
	case <-cc.done:
		return true
	default:
		return false
	}
}

// send queues a request frame and its waiting call.
func (cc *clientConn) send(op byte, target string, params []param, data []byte, hello bool) (*pendingCall, error) {
	pc := &pendingCall{done: make(chan struct{}), hello: hello}
	cc.mu.Lock()
	if cc.err != nil {
		err := cc.err
		cc.mu.Unlock()
		return nil, err
	}
	cc.out = appendRequest(cc.out, op, target, params, data)
	cc.waiting = append(cc.waiting, pc)
	cc.mu.Unlock()
	select {
	case cc.kick <- struct{}{}:
	default:
	}
	return pc, nil
}

// close breaks the connection with err, answering it to every waiting call.
func (cc *clientConn) close(err error) {
	cc.mu.Lock()
	if cc.err != nil {
		cc.mu.Unlock()
		return
	}
	cc.err = err
	waiting := cc.waiting
	cc.waiting = nil
	close(cc.done)
	cc.mu.Unlock()
	_ = cc.nc.Close()
	for _, pc := range waiting {
		pc.err = err
		close(pc.done)
	}
}

// writeLoop sends what callers queued, all of it in one write.
func (cc *clientConn) writeLoop() {
	var buf []byte
	for {
		select {
		case <-cc.done:
			return
		case <-cc.kick:
		}
		cc.mu.Lock()
		buf, cc.out = cc.out, buf[:0]
		cc.mu.Unlock()
		if len(buf) == 0 {
			continue
		}
		if _, err := cc.nc.Write(buf); err != nil {
			cc.close(fmt.Errorf("native: write: %w", err))
			return
		}
		if cap(buf) > 1<<20 {
			buf = nil // do not keep one large batch's buffer
		}
	}
}

// readLoop answers the waiting calls in order.
func (cc *clientConn) readLoop() {
	br := bufio.NewReaderSize(cc.nc, 16<<10)
	var hdr [frameHeader]byte
	for {
		n, err := readFrameLen(br, &hdr, 1<<31-1)
		var frame []byte
		if err == nil {
			frame = make([]byte, n)
			_, err = io.ReadFull(br, frame)
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			cc.close(fmt.Errorf("native: read: %w", err))
			return
		}
		cc.mu.Lock()
		if len(cc.waiting) == 0 {
			cc.mu.Unlock()
			cc.close(errors.New("native: an answer to no request"))
			return
		}
		pc := cc.waiting[0]
		cc.waiting[0] = nil
		cc.waiting = cc.waiting[1:]
		cc.mu.Unlock()
		switch frame[0] {
		case statusOK:
			pc.body = frame[1:]
		case statusError:
			pc.err = decodeError(frame[1:])
		default:
			pc.err = fmt.Errorf("native: answer of unknown status %d", frame[0])
		}
		close(pc.done)
		if pc.hello && pc.err != nil {
			cc.close(pc.err) // the calls behind it get the same refusal
			return
		}
	}
}

func decodeError(body []byte) error {
	d := decoder{b: body}
	code, msg := d.str("code"), d.str("message")
	retry := d.uvarint("retry_after_s")
	if d.err != nil {
		return fmt.Errorf("native: decode error answer: %w", d.err)
	}
	return httpapi.ErrorForCode(code, msg, int(min(retry, 1<<31)))
}
