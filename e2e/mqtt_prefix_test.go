package e2e

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// TestMQTTPrefixPerBox: two boxes on one broker with the samples' prefix,
// edgeq/{client_id}, each take the messages published to their own topics
// and none of the other's (issue 13, item 25).
func TestMQTTPrefixPerBox(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary; skipped in -short")
	}
	broker := "tcp://" + startMochi(t)

	// The test's own client waits for both boxes' retained online status.
	var mu sync.Mutex
	online := map[string]bool{}
	watcher := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker).SetClientID("e2e-watch").
		SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) {
			mu.Lock()
			defer mu.Unlock()
			online[m.Topic()] = string(m.Payload()) == "online"
		}))
	if tok := watcher.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("watcher connect: %v", tok.Error())
	}
	defer watcher.Disconnect(0)
	if tok := watcher.Subscribe("edgeq/+/status/+", 1, nil); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("watcher subscribe: %v", tok.Error())
	}

	boxes := map[string]*daemon{}
	for _, id := range []string{"box-a", "box-b"} {
		conf := filepath.Join(t.TempDir(), "edgeq.yaml")
		yaml := fmt.Sprintf("mqtt:\n  broker: %s\n  client_id: %s\n  prefix: \"edgeq/{client_id}\"\n", broker, id)
		if err := os.WriteFile(conf, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		boxes[id] = startDaemon(t, t.TempDir(), "--config", conf)
	}
	for deadline := time.Now().Add(20 * time.Second); ; {
		mu.Lock()
		up := online["edgeq/box-a/status/box-a"] && online["edgeq/box-b/status/box-b"]
		mu.Unlock()
		if up {
			break
		}
		if time.Now().After(deadline) {
			mu.Lock()
			t.Fatalf("both boxes not online under their own prefix within 20s: %v\n%s\n%s", online, boxes["box-a"].log, boxes["box-b"].log)
		}
		time.Sleep(20 * time.Millisecond)
	}

	pub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker).SetClientID("e2e-pub").SetCleanSession(true))
	if tok := pub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publisher connect: %v", tok.Error())
	}
	defer pub.Disconnect(0)
	for id := range boxes {
		if tok := pub.Publish("edgeq/"+id+"/jobs/mail", 1, false, "for "+id); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}

	client := &http.Client{Timeout: 10 * time.Second}
	for id, d := range boxes {
		var got []string
		for _, wait := range []string{"5s", "1s"} { // the box's own job, then nothing more
			var lr struct{ Jobs []apiJob }
			code, err := call(t.Context(), client, "POST", d.base+"/v1/queues/mail/lease?max=10&wait="+wait, nil, &lr)
			if err != nil || code != 200 {
				t.Fatalf("%s: lease: %d %v", id, code, err)
			}
			for _, j := range lr.Jobs {
				b, err := base64.StdEncoding.DecodeString(j.B64)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, string(b))
			}
			if len(got) == 0 {
				break
			}
		}
		if len(got) != 1 || got[0] != "for "+id {
			t.Errorf("%s took %q, want only its own message %q", id, got, "for "+id)
		}
	}
}
