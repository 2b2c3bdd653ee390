package resource

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string // substring of the error; "" for valid
	}{
		{"zero is the defaults", Config{}, ""},
		{"spec example", Config{CPU: Thresholds{90, 75}, Memory: Thresholds{85, 75}, MinConcurrency: 1}, ""},
		{"cpu enter below default exit", Config{CPU: Thresholds{Enter: 70}}, "governor.cpu: enter 70 is below exit 75"},
		{"cpu enter below exit", Config{CPU: Thresholds{Enter: 60, Exit: 80}}, "governor.cpu: enter 60 is below exit 80"},
		{"cpu enter equals exit", Config{CPU: Thresholds{Enter: 80, Exit: 80}}, "governor.cpu: enter 80 equals exit 80"},
		{"cpu enter above 100", Config{CPU: Thresholds{Enter: 120}}, "governor.cpu.enter: 120 is not a percentage"},
		{"cpu exit negative", Config{CPU: Thresholds{Exit: -5}}, "governor.cpu.exit: -5 is not a percentage"},
		{"memory enter below exit", Config{Memory: Thresholds{Enter: 70, Exit: 80}}, "governor.memory: enter 70 is below exit 80"},
		{"memory enter into the interlock", Config{Memory: Thresholds{Enter: 98}}, "governor.memory.enter: 98 is above 95"},
		{"memory enter negative", Config{Memory: Thresholds{Enter: -1}}, "governor.memory.enter: -1 is not a percentage"},
		{"negative interval", Config{Interval: -time.Second}, "governor.interval: -1s is negative"},
		{"negative dwell", Config{Dwell: -time.Second}, "governor.dwell: -1s is negative"},
		{"min above max", Config{MinConcurrency: 8, MaxConcurrency: 4}, "governor.concurrency: min 8 is above max 4"},
		{"min above default max", Config{MinConcurrency: 2*runtime.NumCPU() + 1}, "governor.concurrency: min"},
		{"negative min", Config{MinConcurrency: -1}, "governor.concurrency.min: -1 is negative"},
		{"negative max", Config{MaxConcurrency: -2}, "governor.concurrency.max: -2 is negative"},
		{"negative commit latency", Config{CommitLatency: -time.Millisecond}, "governor.commit_latency"},
		{"negative wait latency", Config{WaitLatency: -time.Millisecond}, "governor.wait_latency"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tt.want != "" && err == nil:
				t.Fatalf("Validate() = nil, want an error containing %q", tt.want)
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Fatalf("Validate() = %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	c := Config{}.withDefaults()
	if c.Interval != time.Second || c.Dwell != 15*time.Second || c.CPU != (Thresholds{90, 75}) ||
		c.Memory != (Thresholds{85, 75}) || c.DiskMinFree != 256*MiB || c.MinConcurrency != 1 ||
		c.MaxConcurrency != 2*runtime.NumCPU() || c.Logger == nil || c.Clock == nil {
		t.Fatalf("defaults = %+v", c)
	}
}
