// Command mqbench measures QoS 1 fan-in through an MQTT broker: to a plain
// subscriber (-mode sub) or to edgeq (-mode edgeq, counted over its HTTP
// API). scripts/mqtt-bench.sh runs both against a local mosquitto; see
// docs/BENCHMARKS.md.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

func main() {
	broker := flag.String("broker", "tcp://127.0.0.1:18830", "")
	mode := flag.String("mode", "sub", "sub or edgeq")
	pubs := flag.Int("pubs", 1, "publishers")
	n := flag.Int("n", 20000, "messages in all")
	api := flag.String("api", "http://127.0.0.1:18080", "edgeq HTTP API")
	queue := flag.String("queue", "bench", "")
	clean := flag.Bool("clean", true, "subscriber clean session")
	flag.Parse()
	total := int64(*n)
	var got atomic.Int64
	done := make(chan struct{})
	topic := "bench/" + *queue
	if *mode == "sub" {
		sub := subscribe(*broker, topic, *clean, total, &got, done)
		defer sub.Disconnect(0)
	} else {
		topic = "edgeq/jobs/" + *queue
		go watchReady(*api, *queue, total, &got, done)
	}
	clients := make([]mqtt.Client, *pubs)
	for i := range clients {
		clients[i] = mqtt.NewClient(mqtt.NewClientOptions().AddBroker(*broker).SetClientID(fmt.Sprintf("bench-pub-%d", i)))
		if t := clients[i].Connect(); t.Wait() && t.Error() != nil {
			log.Fatal(t.Error())
		}
	}
	start := time.Now()
	publish(clients, topic, *n / *pubs)
	pubDur := time.Since(start)
	select {
	case <-done:
	case <-time.After(120 * time.Second):
		log.Fatalf("timeout: got %d of %d", got.Load(), total)
	}
	d := time.Since(start)
	fmt.Printf("mode=%s pubs=%d n=%d publish=%.2fs total=%.2fs rate=%.0f msg/s\n", *mode, *pubs, *n, pubDur.Seconds(), d.Seconds(), float64(total)/d.Seconds())
}

// subscribe connects a subscriber to topic that counts messages in got and
// closes done at the total-th.
func subscribe(broker, topic string, clean bool, total int64, got *atomic.Int64, done chan struct{}) mqtt.Client {
	sub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker).SetClientID("bench-sub").SetCleanSession(clean).
		SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) {
			if got.Add(1) == total {
				close(done)
			}
		}))
	if t := sub.Connect(); t.Wait() && t.Error() != nil {
		log.Fatal(t.Error())
	}
	if t := sub.Subscribe(topic, 1, nil); t.Wait() && t.Error() != nil {
		log.Fatal(t.Error())
	}
	return sub
}

// watchReady polls edgeq's queue until it holds total ready jobs, then
// stores the count in got and closes done.
func watchReady(api, queue string, total int64, got *atomic.Int64, done chan struct{}) {
	for {
		resp, err := http.Get(api + "/v1/queues/" + queue)
		if err == nil {
			var q struct {
				Ready int64 `json:"ready"`
			}
			json.NewDecoder(resp.Body).Decode(&q)
			resp.Body.Close()
			if q.Ready >= total {
				got.Store(q.Ready)
				close(done)
				return
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// publish sends per messages at QoS 1 from each client, at most 100 in
// flight each, and returns when all are acknowledged.
func publish(clients []mqtt.Client, topic string, per int) {
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Go(func() {
			toks := make([]mqtt.Token, 0, 100)
			for k := range per {
				toks = append(toks, c.Publish(topic, 1, false, fmt.Sprintf(`{"p":%d,"k":%d}`, i, k)))
				if len(toks) == cap(toks) {
					for _, t := range toks {
						t.Wait()
					}
					toks = toks[:0]
				}
			}
			for _, t := range toks {
				t.Wait()
			}
		})
	}
	wg.Wait()
}
