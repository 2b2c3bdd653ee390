package uplink

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/job"
)

// TestNATSCredsFile: a server in operator mode lets in only users whose
// JWT its account signed; the uplink connects with creds_file (the user's
// JWT and NKey seed) and publishes, and cannot without it.
func TestNATSCredsFile(t *testing.T) {
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	okp, err := nkeys.CreateOperator()
	must(err)
	opub, _ := okp.PublicKey()
	oc := jwt.NewOperatorClaims(opub)
	// JetStream needs a system account.
	skp, err := nkeys.CreateAccount()
	must(err)
	spub, _ := skp.PublicKey()
	oc.SystemAccount = spub
	sjwt, err := jwt.NewAccountClaims(spub).Encode(okp)
	must(err)
	_, err = oc.Encode(okp)
	must(err)
	akp, err := nkeys.CreateAccount()
	must(err)
	apub, _ := akp.PublicKey()
	ac := jwt.NewAccountClaims(apub)
	ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1}
	ajwt, err := ac.Encode(okp)
	must(err)
	ukp, err := nkeys.CreateUser()
	must(err)
	upub, _ := ukp.PublicKey()
	useed, _ := ukp.Seed()
	ujwt, err := jwt.NewUserClaims(upub).Encode(akp)
	must(err)
	creds, err := jwt.FormatUserConfig(ujwt, useed)
	must(err)
	credsFile := filepath.Join(t.TempDir(), "site.creds")
	must(os.WriteFile(credsFile, creds, 0o600))

	resolver := &server.MemAccResolver{}
	must(resolver.Store(apub, ajwt))
	must(resolver.Store(spub, sjwt))
	s := startServer(t, &server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
		TrustedOperators: []*jwt.OperatorClaims{oc}, AccountResolver: resolver, SystemAccount: spub})

	u := startUplink(t, Config{URL: s.ClientURL(), Timeout: time.Second})
	if u.Stats().Connected {
		t.Fatal("connected without credentials")
	}
	u.Stop()

	stream := createStreamWith(t, s.ClientURL(), 1, 0, nats.UserCredentials(credsFile))
	u = startUplink(t, Config{URL: s.ClientURL(), CredsFile: credsFile})
	if o := u.Handler(job.ClassNormal).Handle(t.Context(), newJob("telemetry", []byte("x"))); o.Verdict != engine.Ack {
		t.Fatalf("with creds_file: %+v, want ack", o)
	}
	if msgs, _ := streamIDs(t, stream); msgs != 1 {
		t.Errorf("stream holds %d, want 1", msgs)
	}
}
