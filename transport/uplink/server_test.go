package uplink

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// freePort answers a port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// jsServer runs an in-process JetStream server on 127.0.0.1:port (0: any)
// with its store in dir, shut down at cleanup.
func jsServer(t *testing.T, port int, dir string) *server.Server {
	t.Helper()
	return startServer(t, &server.Options{Host: "127.0.0.1", Port: cmpPort(port), JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true})
}

func cmpPort(p int) int {
	if p == 0 {
		return -1
	}
	return p
}

func startServer(t *testing.T, o *server.Options) *server.Server {
	t.Helper()
	s, err := server.NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		t.Fatalf("nats server %s not ready", o.ServerName)
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

// jsCluster runs a 3-node JetStream cluster on 127.0.0.1.
func jsCluster(t *testing.T) []*server.Server {
	t.Helper()
	ports := []int{freePort(t), freePort(t), freePort(t)}
	var routes []*url.URL
	for _, p := range ports {
		routes = append(routes, &url.URL{Scheme: "nats-route", Host: "127.0.0.1:" + strconv.Itoa(p)})
	}
	servers := make([]*server.Server, 3)
	errs := make(chan error, 3)
	for i := range servers {
		o := &server.Options{
			ServerName: fmt.Sprintf("n%d", i), Host: "127.0.0.1", Port: -1,
			JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
			Cluster: server.ClusterOpts{Name: "edge", Host: "127.0.0.1", Port: ports[i]},
			Routes:  routes,
		}
		s, err := server.NewServer(o)
		if err != nil {
			t.Fatal(err)
		}
		servers[i] = s
		t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
		go func() { s.Start(); errs <- nil }()
	}
	for range servers {
		<-errs
	}
	for _, s := range servers {
		if !s.ReadyForConnections(10 * time.Second) {
			t.Fatal("cluster node not ready")
		}
	}
	return servers
}

// createStream creates stream EDGE on edge.> with a long dedupe window and
// replicas copies, retrying while a cluster elects its meta leader.
func createStream(t *testing.T, urls string, replicas int, maxMsgSize int32) jetstream.Stream {
	t.Helper()
	return createStreamWith(t, urls, replicas, maxMsgSize)
}

// createStreamTLS creates stream EDGE over mutual TLS.
func createStreamTLS(t *testing.T, url, ca, cert, key string) jetstream.Stream {
	t.Helper()
	return createStreamWith(t, url, 1, 0, nats.RootCAs(ca), nats.ClientCert(cert, key))
}

func createStreamWith(t *testing.T, urls string, replicas int, maxMsgSize int32, opts ...nats.Option) jetstream.Stream {
	t.Helper()
	nc, err := nats.Connect(urls, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		s, err := js.CreateStream(ctx, jetstream.StreamConfig{
			Name: "EDGE", Subjects: []string{"edge.>"}, Duplicates: 10 * time.Minute,
			Replicas: replicas, MaxMsgSize: maxMsgSize, Storage: jetstream.FileStorage,
		})
		cancel()
		if err == nil {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("create stream: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// streamIDs answers how many messages the stream holds and their distinct
// Nats-Msg-Id values.
func streamIDs(t *testing.T, s jetstream.Stream) (msgs uint64, ids map[string]int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ids = map[string]int{}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("get %d: %v", seq, err)
		}
		ids[m.Header.Get(HeaderMsgID)]++
	}
	return info.State.Msgs, ids
}
