package main

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/edgeq/edgeq/transport/httpapi"
)

// ANSI sequences that --watch uses to redraw in place: cursor home, then
// clear the screen.
const ansiHomeClear = "\x1b[H\x1b[2J"

// ansiClearLine clears from the cursor to the end of the line.
const ansiClearLine = "\x1b[K"

func statsCommand(e env) *cli.Command {
	return &cli.Command{
		Name:  "stats",
		Usage: "show the governor and every queue of a running daemon",
		Description: "The table has, for each queue, its jobs by state, the payload bytes of its ready,\n" +
			"delayed and leased jobs (BYTES, what max_bytes bounds), the age of its oldest ready job,\n" +
			"its in and out rates (jobs per second over the last minute) and the time to drain\n" +
			"its backlog at the current rates (\"-\" when the backlog is not shrinking).\n" +
			"--json prints the daemon's GET /v1/stats document (one a line with --watch).",
		Flags: clientCommandFlags(
			&cli.BoolFlag{Name: "watch", Aliases: []string{"w"}, Usage: "redraw every --interval until interrupted"},
			&cli.DurationFlag{Name: "interval", Value: time.Second, Usage: "refresh interval of --watch"},
		),
		Action: func(c *cli.Context) error { return stats(c, e) },
	}
}

func stats(c *cli.Context, e env) error {
	if _, err := wantArgs(c); err != nil {
		return err
	}
	interval := c.Duration("interval")
	if interval <= 0 {
		return usageErrorf("--interval: must be positive")
	}
	cl := newClient(c, e)
	defer cl.CloseIdleConnections()
	asJSON := c.Bool("json")
	once := func(ctx context.Context, clear bool) error {
		ctx, cancel := context.WithTimeout(ctx, clientTimeout)
		defer cancel()
		doc, err := cl.Stats(ctx)
		if err != nil {
			return clientError("stats", err)
		}
		if asJSON {
			if clear {
				return printJSONLine(c.App.Writer, doc)
			}
			return printJSON(c.App.Writer, doc)
		}
		var b bytes.Buffer
		if clear {
			b.WriteString(ansiHomeClear)
			fmt.Fprintf(&b, "edgeq stats  every %s  %s\n\n", interval, time.Now().Format(time.TimeOnly))
		}
		printStats(&b, doc)
		_, err = c.App.Writer.Write(b.Bytes())
		return err
	}
	if !c.Bool("watch") {
		return once(c.Context, false)
	}
	ctx, stop := signalContext(c.Context)
	defer stop()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := once(ctx, true); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			// A daemon that restarts should not end the watch: say so and go on.
			fmt.Fprintf(c.App.ErrWriter, "edgeq: %v\n", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func printJSONLine(w io.Writer, v any) error {
	var b bytes.Buffer
	if err := printJSON(&b, v); err != nil {
		return err
	}
	// One document a line, for tools that read a stream.
	line := strings.Join(strings.Fields(b.String()), " ")
	_, err := fmt.Fprintln(w, line)
	return err
}

// printStats writes the governor line and the queue table. RUNNING counts
// the jobs of in-process handlers; LEASED includes them and pull workers'.
// FLAGS: paused, shed, breaker-open or breaker-half-open, alert (a backlog
// alert is raised).
func printStats(w io.Writer, doc httpapi.StatsDoc) {
	fmt.Fprintln(w, governorLine(doc.Governor))
	if doc.StoreShort {
		fmt.Fprintln(w, "store: SHORT (acknowledged writes were lost; see the daemon's log)")
	}
	fmt.Fprintf(w, "uptime: %s\n", fmtSeconds(doc.UptimeS))
	if s := doc.Schedules; s != nil && s.Count > 0 {
		fmt.Fprintf(w, "schedules: %d  fired %d  skipped %d  refused %d\n", s.Count, s.Runs["fired"],
			s.Runs["skipped_overlap"]+s.Runs["skipped_missed"], s.Runs["refused"])
	}
	fmt.Fprintln(w)
	if len(doc.Queues) == 0 {
		fmt.Fprintln(w, "no queues")
		return
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "QUEUE\tCLASS\tREADY\tDELAYED\tLEASED\tRUNNING\tDEAD\tBYTES\tOLDEST\tIN/S\tOUT/S\tDRAIN\tFLAGS")
	for _, q := range doc.Queues {
		eta := "-"
		if q.DrainETAS != nil {
			eta = fmtSeconds(*q.DrainETAS)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n",
			q.Name, q.Class, q.Ready, q.Delayed, q.Leased, q.Running, q.Dead, fmtKnownBytes(q.Bytes),
			fmtSeconds(q.OldestReadyAgeS), fmtRate(q.InRate), fmtRate(q.OutRate), eta, queueFlags(q))
	}
	_ = tw.Flush()
	printGroups(w, doc.Queues)
	printUplinks(w, doc.Uplinks)
}

// printGroups writes the ordered groups of the queues that have any with
// work: how many, the oldest (its head's age) and the cap per group.
func printGroups(w io.Writer, qs []httpapi.QueueStats) {
	var tw *tabwriter.Writer
	for _, q := range qs {
		if q.Groups == 0 {
			continue
		}
		if tw == nil {
			fmt.Fprintln(w)
			tw = newTable(w)
			fmt.Fprintln(tw, "QUEUE\tGROUPS\tOLDEST GROUP\tAGE\tPER GROUP")
		}
		oldest := q.OldestGroup
		if oldest == "" {
			oldest = "-"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\n", q.Name, q.Groups, oldest, fmtSeconds(q.OldestGroupAgeS), q.GroupConcurrency)
	}
	if tw != nil {
		_ = tw.Flush()
	}
}

// printUplinks writes the uplink table: state (up, down for how long,
// ALERT past alert_after), the backlog of its queues, what it sent, its
// rates against their caps ("-": no cap), its last acknowledgement.
func printUplinks(w io.Writer, ups []httpapi.UplinkStats) {
	if len(ups) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw := newTable(w)
	fmt.Fprintln(tw, "UPLINK	TYPE	STATE	BACKLOG	BACKLOG-BYTES	OLDEST	SENT	BYTES	BATCHES	JOBS/S	MAX	BYTES/S	MAX	LAST OK")
	for _, u := range ups {
		state := "up"
		if !u.Connected {
			state = "down " + fmtSeconds(u.DownForS)
		}
		if u.Alerting {
			state += " ALERT"
		}
		last := cmp.Or(u.LastSuccess, "never")
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\n",
			u.Name, u.Type, state, u.BacklogJobs, fmtKnownBytes(u.BacklogBytes), fmtSeconds(u.OldestAgeS), u.JobsSent, u.BytesSent, u.Batches,
			fmtRate(u.Rate), capOrDash(u.MaxRate), fmtRate(u.Bandwidth), capOrDash(float64(u.MaxBandwidth)), last)
	}
	_ = tw.Flush()
}

func capOrDash(v float64) string {
	if v <= 0 {
		return "-"
	}
	return fmtRate(v)
}

func queueFlags(q httpapi.QueueStats) string {
	var f []string
	if q.Paused {
		f = append(f, "paused")
	}
	if q.Shed {
		f = append(f, "shed")
	}
	if q.Breaker != "" && q.Breaker != "closed" {
		f = append(f, "breaker-"+q.Breaker)
	}
	if q.Alerting {
		f = append(f, "alert")
	}
	if len(f) == 0 {
		return "-"
	}
	return strings.Join(f, ",")
}

// governorLine is one line: the level, the worker limit, the host figures
// (those the governor knows), the reason and a running drill.
func governorLine(g *httpapi.GovernorStats) string {
	if g == nil {
		return "governor: none"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "governor: %s  concurrency %d", g.Level, g.Concurrency)
	if g.CPUPercent != nil {
		fmt.Fprintf(&b, "  cpu %.1f%%", *g.CPUPercent)
	}
	if g.MemoryPercent != nil {
		fmt.Fprintf(&b, "  memory %.1f%%", *g.MemoryPercent)
	}
	if g.DiskFreeBytes != nil {
		fmt.Fprintf(&b, "  disk free %s", fmtBytes(*g.DiskFreeBytes))
	}
	if g.Reason != "" {
		fmt.Fprintf(&b, "  reason %q", g.Reason)
	}
	if g.Drill != nil {
		fmt.Fprintf(&b, "  drill %s until %s", g.Drill.Level, g.Drill.Until.Local().Format(time.TimeOnly))
	}
	return b.String()
}

// fmtSeconds prints an age or ETA briefly: 0s, 42s, 3m05s, 2h10m, 3d4h.
func fmtSeconds(s float64) string {
	if s < 0 || math.IsNaN(s) {
		return "-"
	}
	d := time.Duration(s * float64(time.Second)).Round(time.Second)
	switch {
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + "s"
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", d/time.Minute, (d%time.Minute)/time.Second)
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%02dm", d/time.Hour, (d%time.Hour)/time.Minute)
	}
	return fmt.Sprintf("%dd%dh", d/(24*time.Hour), (d%(24*time.Hour))/time.Hour)
}

// fmtRate prints jobs per second with the precision that matters.
func fmtRate(r float64) string {
	switch {
	case r == 0:
		return "0"
	case r < 10:
		return strconv.FormatFloat(r, 'f', 2, 64)
	case r < 100:
		return strconv.FormatFloat(r, 'f', 1, 64)
	}
	return strconv.FormatFloat(r, 'f', 0, 64)
}

// fmtBytes prints a byte count in binary units with one decimal.
func fmtBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatUint(n, 10) + "B"
	}
	f, i := float64(n), -1
	for f >= unit && i < 4 {
		f /= unit
		i++
	}
	return strconv.FormatFloat(f, 'f', 1, 64) + []string{"KiB", "MiB", "GiB", "TiB", "PiB"}[i]
}

// signalContext is ctx cancelled also by SIGINT or SIGTERM, for commands
// that run until interrupted.
func signalContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
}

// fmtKnownBytes formats a byte count the daemon may not know ("-": not
// counted at its start, as no max_bytes asked for it).
func fmtKnownBytes(n *int64) string {
	if n == nil {
		return "-"
	}
	return fmtBytes(uint64(max(0, *n)))
}
