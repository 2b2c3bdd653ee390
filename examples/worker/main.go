// Command worker is an example edgeq worker written with package client:
// it takes the jobs of one queue and runs each, here by printing it.
//
//	go run ./examples/worker -queue mail        # against http://127.0.0.1:7070
//	edgeq enqueue mail '{"to":"ops@example.com","subject":"hello"}'
//
// $EDGEQ_ADDR and $EDGEQ_TOKEN are read as the edgeq command line reads them.
// Ctrl-C stops it gracefully: no new job is leased, the running ones get
// -grace to finish, then are released for another worker.
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/edgeq/edgeq/client"
)

// mail is the payload this worker expects.
type mail struct {
	To      string `json:"to"`
	Subject string `json:"subject"`
}

func main() {
	queue := flag.String("queue", "mail", "the queue to work")
	concurrency := flag.Int("concurrency", 4, "jobs at once")
	grace := flag.Duration("grace", 30*time.Second, "how long running jobs may finish at a stop")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	c := client.New(cmp.Or(os.Getenv("EDGEQ_ADDR"), "http://127.0.0.1:7070"), os.Getenv("EDGEQ_TOKEN"))
	w := &client.Worker{Client: c, Queue: *queue, Concurrency: *concurrency, Grace: *grace, Logger: log}
	log.Info("working", "queue", *queue, "concurrency", *concurrency)
	if err := w.Run(ctx, send); err != nil {
		log.Error("worker stopped", "err", err)
		os.Exit(1)
	}
}

// send handles one job. A payload that is not a mail can never succeed:
// client.Dead sends it to the dead-letter set instead of retrying it. Any
// other error would retry it after the queue's backoff.
func send(ctx context.Context, j *client.Job) error {
	var m mail
	if err := json.Unmarshal(j.Body(), &m); err != nil || m.To == "" {
		return client.Dead(errors.New("not a mail: want {\"to\": ..., \"subject\": ...}"))
	}
	select {
	case <-ctx.Done(): // the lease was lost, or the worker stops hard
		return ctx.Err()
	case <-time.After(100 * time.Millisecond): // the work itself
	}
	fmt.Printf("job %s (attempt %d): mail to %s: %q\n", j.ID, j.Attempt, m.To, m.Subject)
	return nil
}
