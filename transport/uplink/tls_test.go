package uplink

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/job"
)

// pki is a CA and the certificates it signed, written as PEM files.
type pki struct {
	dir    string
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	caPath string
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "edge test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	p := &pki{dir: t.TempDir(), ca: ca, caKey: key}
	p.caPath = p.write(t, "ca.pem", "CERTIFICATE", der)
	return p
}

func (p *pki) write(t *testing.T, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// issue signs a certificate for name, a server's (with 127.0.0.1) or a
// client's, and answers its PEM files.
func (p *pki) issue(t *testing.T, name string, usage x509.ExtKeyUsage) (cert, key string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &k.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return p.write(t, name+".pem", "CERTIFICATE", der), p.write(t, name+"-key.pem", "EC PRIVATE KEY", kd)
}

// TestNATSMutualTLS: the server wants a client certificate signed by its
// CA; the uplink presents tls.cert and tls.key and trusts tls.ca. Without
// the client certificate the server never lets it in.
func TestNATSMutualTLS(t *testing.T) {
	p := newPKI(t)
	scert, skey := p.issue(t, "server", x509.ExtKeyUsageServerAuth)
	ccert, ckey := p.issue(t, "client", x509.ExtKeyUsageClientAuth)
	tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: scert, KeyFile: skey, CaFile: p.caPath, Verify: true})
	if err != nil {
		t.Fatal(err)
	}
	tc.MinVersion = tls.VersionTLS12
	s := startServer(t, &server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
		TLSConfig: tc, TLSVerify: true, TLSTimeout: 2})
	url := "tls://" + s.Addr().String()

	u := startUplink(t, Config{URL: url, TLS: TLSFiles{CA: p.caPath}, Timeout: time.Second})
	if st := u.Stats(); st.Connected {
		t.Fatalf("connected without a client certificate: %+v", st)
	}
	u.Stop()

	// The stream is created over TLS by the uplink's own settings'
	// equivalent, then the uplink with its certificate publishes.
	stream := createStreamTLS(t, url, p.caPath, ccert, ckey)
	u = startUplink(t, Config{URL: url, TLS: TLSFiles{CA: p.caPath, Cert: ccert, Key: ckey}})
	if o := u.Handler(job.ClassNormal).Handle(t.Context(), newJob("telemetry", []byte("x"))); o.Verdict != engine.Ack {
		t.Fatalf("over mutual TLS: %+v, want ack", o)
	}
	if msgs, _ := streamIDs(t, stream); msgs != 1 {
		t.Errorf("stream holds %d, want 1", msgs)
	}
}
