package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/edgeq/edgeq/transport/httpapi"
	"github.com/edgeq/edgeq/transport/native"
)

// edgeq over HTTP.
type edgeqClient struct {
	hc    *http.Client
	base  string
	queue string
	body  bytes.Buffer
}

func newEdgeqClient(o options) *edgeqClient {
	tr := &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}
	return &edgeqClient{hc: &http.Client{Transport: tr, Timeout: 60 * time.Second},
		base: "http://" + o.addr, queue: o.queue}
}

func (e *edgeqClient) close() { e.hc.CloseIdleConnections() }

func (e *edgeqClient) post(path, ctype string, body []byte, want int) ([]byte, error) {
	resp, err := e.hc.Post(e.base+path, ctype, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != want {
		return nil, fmt.Errorf("%s: %s: %s", path, resp.Status, strings.TrimSpace(string(b)))
	}
	return b, nil
}

func (e *edgeqClient) put(payloads [][]byte) error {
	if len(payloads) == 1 {
		_, err := e.post("/v1/queues/"+e.queue+"/jobs", "application/octet-stream", payloads[0], http.StatusCreated)
		return err
	}
	e.body.Reset()
	for _, p := range payloads {
		e.body.WriteString(`{"payload_b64":"`)
		e.body.WriteString(base64.StdEncoding.EncodeToString(p))
		e.body.WriteString("\"}\n")
	}
	_, err := e.post("/v1/queues/"+e.queue+"/batch", "application/x-ndjson", e.body.Bytes(), http.StatusCreated)
	return err
}

func (e *edgeqClient) take() (bool, error) {
	b, err := e.post("/v1/queues/"+e.queue+"/lease?max=1&wait=1s", "", nil, http.StatusOK)
	if err != nil {
		return false, err
	}
	var l struct {
		Jobs []struct {
			ID    string `json:"id"`
			Lease struct {
				ID string `json:"id"`
			} `json:"lease"`
		} `json:"jobs"`
	}
	if err := json.Unmarshal(b, &l); err != nil {
		return false, fmt.Errorf("lease: %w", err)
	}
	if len(l.Jobs) == 0 {
		return false, nil
	}
	j := l.Jobs[0]
	_, err = e.post("/v1/jobs/"+j.ID+"/ack?lease="+j.Lease.ID, "", nil, http.StatusOK)
	return err == nil, err
}

// edgeq over its native protocol (docs/protocol.md): one connection per
// client for enqueues and acks, one more for its long polls.
type nativeClient struct {
	c     *native.Client
	queue string
}

func newNativeClient(o options) (*nativeClient, error) {
	c, err := native.NewClient(o.addr, native.ClientConfig{Conns: 1, MaxIdlePolls: 1})
	if err != nil {
		return nil, err
	}
	return &nativeClient{c: c, queue: o.queue}, nil
}

func (n *nativeClient) close() { n.c.Close() }

func (n *nativeClient) put(payloads [][]byte) error {
	ctx := context.Background()
	if len(payloads) == 1 {
		_, err := n.c.Enqueue(ctx, n.queue, payloads[0], httpapi.EnqueueOptions{})
		return err
	}
	lines := make([]httpapi.BatchLine, len(payloads))
	for i, p := range payloads {
		lines[i].Payload = p
	}
	_, err := n.c.EnqueueBatch(ctx, n.queue, lines)
	return err
}

func (n *nativeClient) take() (bool, error) {
	ctx := context.Background()
	jobs, err := n.c.Lease(ctx, n.queue, 1, time.Second, 0)
	if err != nil || len(jobs) == 0 {
		return false, err
	}
	err = n.c.Ack(ctx, jobs[0].ID, jobs[0].Lease.ID)
	return err == nil, err
}

// Redis over RESP: LPUSH to enqueue; BLMOVE to a processing list and LREM
// to take and ack, the reliable-queue pattern.
type redisClient struct {
	c    net.Conn
	r    *bufio.Reader
	w    *bufio.Writer
	list string
}

func (r *redisClient) close() { r.c.Close() }

func (r *redisClient) cmd(args ...[]byte) ([]byte, error) {
	fmt.Fprintf(r.w, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(r.w, "$%d\r\n", len(a))
		r.w.Write(a)
		r.w.WriteString("\r\n")
	}
	if err := r.w.Flush(); err != nil {
		return nil, err
	}
	line, err := r.r.ReadSlice('\n')
	if err != nil {
		return nil, err
	}
	if len(line) < 3 {
		return nil, fmt.Errorf("redis: short reply %q", line)
	}
	switch line[0] {
	case '-':
		return nil, fmt.Errorf("redis: %s", bytes.TrimSpace(line[1:]))
	case '$':
		n, err := strconv.Atoi(string(bytes.TrimSpace(line[1:])))
		if err != nil || n < 0 {
			return nil, err
		}
		b := make([]byte, n+2)
		if _, err := io.ReadFull(r.r, b); err != nil {
			return nil, err
		}
		return b[:n], nil
	case '+', ':':
		return nil, nil
	}
	return nil, fmt.Errorf("redis: unexpected reply %q", line)
}

func (r *redisClient) put(payloads [][]byte) error {
	args := append([][]byte{[]byte("LPUSH"), []byte(r.list)}, payloads...)
	_, err := r.cmd(args...)
	return err
}

func (r *redisClient) take() (bool, error) {
	v, err := r.cmd([]byte("BLMOVE"), []byte(r.list), []byte(r.list+":processing"), []byte("RIGHT"), []byte("LEFT"), []byte("1"))
	if err != nil || v == nil {
		return false, err
	}
	_, err = r.cmd([]byte("LREM"), []byte(r.list+":processing"), []byte("1"), v)
	return err == nil, err
}

// beanstalkd: put; reserve-with-timeout and delete. A batch is pipelined:
// every put written, then every reply read.
type beanClient struct {
	c net.Conn
	r *bufio.Reader
	w *bufio.Writer
}

func (b *beanClient) close() { b.c.Close() }

func (b *beanClient) line() (string, error) {
	s, err := b.r.ReadString('\n')
	return strings.TrimSpace(s), err
}

func (b *beanClient) useTube(t string) error {
	fmt.Fprintf(b.w, "use %s\r\nwatch %s\r\nignore default\r\n", t, t)
	if err := b.w.Flush(); err != nil {
		return err
	}
	for range 3 {
		if _, err := b.line(); err != nil {
			return err
		}
	}
	return nil
}

func (b *beanClient) put(payloads [][]byte) error {
	for _, p := range payloads {
		fmt.Fprintf(b.w, "put 0 0 60 %d\r\n", len(p))
		b.w.Write(p)
		b.w.WriteString("\r\n")
	}
	if err := b.w.Flush(); err != nil {
		return err
	}
	for range payloads {
		s, err := b.line()
		if err != nil {
			return err
		}
		if !strings.HasPrefix(s, "INSERTED ") {
			return fmt.Errorf("beanstalkd: put: %s", s)
		}
	}
	return nil
}

func (b *beanClient) take() (bool, error) {
	b.w.WriteString("reserve-with-timeout 1\r\n")
	if err := b.w.Flush(); err != nil {
		return false, err
	}
	s, err := b.line()
	if err != nil {
		return false, err
	}
	if s == "TIMED_OUT" {
		return false, nil
	}
	f := strings.Fields(s)
	if len(f) != 3 || f[0] != "RESERVED" {
		return false, fmt.Errorf("beanstalkd: reserve: %s", s)
	}
	n, err := strconv.Atoi(f[2])
	if err != nil {
		return false, fmt.Errorf("beanstalkd: reserve: %s", s)
	}
	if _, err := b.r.Discard(n + 2); err != nil {
		return false, err
	}
	fmt.Fprintf(b.w, "delete %s\r\n", f[1])
	if err := b.w.Flush(); err != nil {
		return false, err
	}
	if s, err = b.line(); err != nil {
		return false, err
	}
	if s != "DELETED" {
		return false, fmt.Errorf("beanstalkd: delete: %s", s)
	}
	return true, nil
}
