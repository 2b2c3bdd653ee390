# edgeq — `make` or `make help` lists the targets.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

BINARY  := edgeq
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short --verify -q HEAD 2>/dev/null)
DATE    ?= $(shell git log -1 --format=%cI 2>/dev/null)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.date=$(DATE)

# The race detector needs cgo, hence a C compiler; without one, test without it.
RACE := $(if $(filter 1,$(shell go env CGO_ENABLED)),-race,)

# A count, not a duration: with a duration, Go before 1.27 can fail a fuzz
# run with "context deadline exceeded" at the deadline (go.dev/issue/75804).
FUZZTIME         ?= 50000x
FUZZMINIMIZETIME ?= 2s
# package:target, each run for FUZZTIME.
FUZZ_TARGETS := \
	./storage:FuzzKeyCodec \
	./storage:FuzzRecord \
	./transport/httpapi:FuzzDecodeBatch \
	./transport/native:FuzzFrame \
	./transport/wire:FuzzAppendJSONString \
	./transport/wire:FuzzBatchLineFast \
	./transport/mqttapi:FuzzTopicQueue \
	./transport/mqttapi:FuzzEnvelope \
	.:FuzzParseConfig

# Pinned: a new staticcheck brings new checks; raise it on purpose.
STATICCHECK_VERSION := v0.8.2
TOOLSDIR    ?= $(CURDIR)/.tools
STATICCHECK := $(TOOLSDIR)/staticcheck-$(STATICCHECK_VERSION)

# make torture: power cuts (e2e TestPowerCutTorture on internal/crashfs).
# MODES: crashfs modes, comma-separated (drop, tear, reorder). TARGETS: the
# cut points aimed at (random, wal, vlog, table, flushed, compacted, gc,
# checkpoint, manifest); empty, all in turn.
ROUNDS ?= 30
MODES  ?= drop,tear,reorder
TARGETS ?=

BENCHTIME  ?= 1s
BENCHCOUNT ?= 5

# make bench-pi (scripts/bench-pi.sh) takes these when set, else the
# script's defaults: PI_SYSTEMS ("edgeq redis asynq beanstalkd"; native, edgeq
# over its native protocol, and base with BASE_BIN on request), PI_WORKLOADS
# ("a b c d e"; f, the wear stream, on request), PI_DURATION (seconds of a,
# b, d: 10), PI_RUNS (interleaved rounds: 3), PI_BACKLOG (c: 40000), PI_FILL
# (e: 300000), PI_WEAR (f: 200000), PI_TIMEOUT (seconds bounding c, e and f:
# 120); PI_SMOKE=1: edgeq only, a few seconds each; PI_TRACE=1: edgeq under
# strace, what a group commit costs by file.
PI_VARS := SYSTEMS WORKLOADS DURATION RUNS BACKLOG FILL WEAR TIMEOUT SMOKE TRACE

# os/arch[/GOARM], static (CGO off).
PLATFORMS := linux/amd64 linux/arm64 linux/arm/7 linux/arm/6

PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
UNITDIR    ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
SYSCONFDIR ?= /etc
DESTDIR    ?=

# Debian architecture:GOARCH[/GOARM]. armhf is built for ARMv6: Raspberry Pi
# OS's armhf runs on the ARMv6 Pi Zero and Pi 1, and ARMv7 boards run it too.
DEB_PLATFORMS := amd64:amd64 arm64:arm64 armhf:arm/6
# Debian versions start with a digit: v1.2.3-4-gabc → 1.2.3+4.gabc; untagged → 0.0.0~git<describe>.
DEB_VERSION := $(shell echo '$(VERSION)' | sed -E '/^v?[0-9]+\./!s/^/0.0.0~git/; s/^v//; s/-/+/; s/-/./g')

# test-arm: GOARCH/GOARM:qemu binary. The storage and engine suites run with
# -short on arm64 and arm/v7; arm/v6 runs the 32-bit proofs (the backlog
# test and ristretto's allocator test). engine/handler/exec is left out: it
# runs host processes, nothing architecture-specific, and its timing-based
# tests flake under qemu.
ARM_TARGETS ?= arm64:qemu-aarch64 arm/7:qemu-arm
ARM_PKGS    := ./storage/ ./engine/ ./engine/ring/ ./engine/storetest/ ./engine/handler/ ./engine/handler/http/
ARM_BACKLOG ?= 60000

.PHONY: help build run test test-python torture test-arm smoke-arm lint bench bench-pi bench-peers fuzz cross deb install clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z][a-zA-Z_-]*:.*## / {printf "  make %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo "  variables: VERSION=$(VERSION) FUZZTIME=$(FUZZTIME) PREFIX=$(PREFIX) DESTDIR=$(DESTDIR)"

build: ## build ./edgeq, static, version-stamped
	CGO_ENABLED=0 go build -trimpath -ldflags "$(LDFLAGS)" -o $(BINARY) .

run: ## run the daemon on built-in defaults (ARGS="--log-level debug" adds flags)
	go run . serve $(ARGS)

test: ## run every test, with the race detector when cgo is available
	@[ -n "$(RACE)" ] || echo "note: cgo is off (no C compiler): testing without -race" >&2
	go test $(RACE) -count=1 -timeout 30m ./... # a hang's bound, not a budget: at a load of 55 on 2 cores ./storage took 15 minutes and ./e2e 13
	go test -count=1 -run 'Allocs$$' ./transport/... # allocation bounds: the race detector's sync.Pool drops items, so they skip under -race
	cd third_party/ristretto && go test -count=1 -run Edgeq ./z
	cd third_party/badger && go test -count=1 -run Edgeq . ./table/

torture: ## ROUNDS power cuts (default 30) under load, each checked (e2e TestPowerCutTorture; skips, saying why, without /dev/fuse or root)
	TORTURE_ROUNDS=$(ROUNDS) TORTURE_MODES=$(MODES) TORTURE_TARGETS=$(TARGETS) go test -count=1 -timeout 60m -run '^TestPowerCutTorture$$' -v ./e2e/

test-python: ## test the Python client and worker (clients/python) against the real daemon
	@command -v python3 >/dev/null || { echo "python3 not found: the Python client's tests need Python 3.9 or later" >&2; exit 1; }
	cd clients/python && python3 -m unittest discover -s tests -t . -v

test-arm: ## run the storage and engine tests on arm64 and arm/v7, and the 32-bit proofs on arm/v6, under qemu-user
	@for q in qemu-aarch64 qemu-arm; do command -v $$q >/dev/null || { echo "$$q not found: apt-get install qemu-user" >&2; exit 1; }; done
	@for t in $(ARM_TARGETS); do \
		IFS=/ read -r arch arm <<< "$${t%%:*}"; q=$${t##*:}; \
		echo "test $(ARM_PKGS) on $$arch$${arm:+/v$$arm} ($$q)"; \
		EDGEQ_QEMU=1 EDGEQ_BACKLOG_JOBS=$(ARM_BACKLOG) CGO_ENABLED=0 GOARCH=$$arch GOARM=$$arm \
			go test -count=1 -short -timeout 10m -exec $$q $(ARM_PKGS); \
	done
	@for arm in 7 6; do \
		echo "test the ristretto allocator fix on arm/v$$arm"; \
		(cd third_party/ristretto && CGO_ENABLED=0 GOARCH=arm GOARM=$$arm GOFLAGS=-mod=readonly \
			go test -count=1 -exec qemu-arm -run Edgeq ./z); \
	done
	@echo "test the store backlog on arm/v6"
	EDGEQ_BACKLOG_JOBS=$(ARM_BACKLOG) CGO_ENABLED=0 GOARCH=arm GOARM=6 \
		go test -count=1 -timeout 10m -exec qemu-arm -run 'BacklogReopen' ./storage/

smoke-arm: ## run the arm64, arm/v7 and arm/v6 binaries under qemu-user: serve, take jobs, keep them across a restart
	scripts/arm-smoke.sh

lint: $(STATICCHECK) ## fail on unformatted files (listing them), go vet, and staticcheck findings not in .ci/staticcheck.known
	@files=$$(find . -name '*.go' -not -path './.git/*' -not -path '*/testdata/*' -print0 | xargs -0 gofmt -l); \
	if [ -n "$$files" ]; then echo "gofmt -l lists files that need formatting:"; echo "$$files"; exit 1; fi
	go vet ./...
	@$(STATICCHECK) -fail none ./... | awk 'NR == FNR { if ($$0 !~ /^(#|$$)/) known[$$0]++; next } \
		{ k = $$0; sub(/:[0-9]+:[0-9]+:/, ":", k) } known[k] > 0 { known[k]--; next } \
		{ if (!n++) print "staticcheck $(STATICCHECK_VERSION) finds what .ci/staticcheck.known does not list:"; print } \
		END { for (k in known) if (known[k] > 0) print "note: .ci/staticcheck.known lists what staticcheck no longer finds: " k; exit (n > 0) }' \
		.ci/staticcheck.known -

# staticcheck, built once per version through the module proxy into TOOLSDIR.
$(STATICCHECK):
	GOBIN=$(TOOLSDIR) go install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	mv $(TOOLSDIR)/staticcheck $@

bench: ## run the benchmarks BENCHCOUNT times into bench.txt
	go test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) -count $(BENCHCOUNT) -timeout 60m ./... | tee bench.txt

bench-pi: ## as root: edgeq and its peers in a simulated 256 MiB appliance with an SD card (docs/BENCHMARKS.md)
	$(foreach v,$(PI_VARS),$(if $(PI_$(v)),$(v)="$(PI_$(v))")) scripts/bench-pi.sh

bench-peers: ## issue 17's ingest and drain targets against asynq, beanstalkd and Redis on this disk (docs/BENCHMARKS.md)
	scripts/bench-peers.sh

fuzz: ## run each fuzz target for FUZZTIME executions (default 50000x)
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		if ! grep -qs "^func $$name(" $$pkg/*_test.go; then echo "fuzz target $$name not found in $$pkg" >&2; exit 1; fi; \
		echo "fuzz $$pkg $$name for $(FUZZTIME)"; \
		go test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZETIME) $$pkg; \
	done

cross: ## build static release binaries for linux amd64, arm64, armv7, armv6 into dist/
	@mkdir -p dist
	@for p in $(PLATFORMS); do \
		IFS=/ read -r os arch arm <<< "$$p"; \
		out=dist/$(BINARY)-$$os-$$arch$${arm:+v$$arm}; \
		echo "build $$out"; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch GOARM=$$arm go build -trimpath -ldflags "$(LDFLAGS)" -o $$out .; \
	done
	cd dist && sha256sum $(BINARY)-* > SHA256SUMS

install: build ## install the binary, the systemd unit, its user and (if absent) /etc/edgeq/edgeq.yaml under DESTDIR
	install -D -m 0755 $(BINARY) $(DESTDIR)$(BINDIR)/$(BINARY)
	install -d $(DESTDIR)$(UNITDIR)
	sed 's|/usr/bin/edgeq|$(BINDIR)/$(BINARY)|g' systemd/edgeq.service > $(DESTDIR)$(UNITDIR)/edgeq.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/edgeq.service
	install -D -m 0644 systemd/edgeq.sysusers.conf $(DESTDIR)$(SYSUSERSDIR)/edgeq.conf
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/edgeq/edgeq.yaml ]; then \
		echo "kept existing $(DESTDIR)$(SYSCONFDIR)/edgeq/edgeq.yaml"; \
	else \
		install -D -m 0644 configs/edgeq.yaml $(DESTDIR)$(SYSCONFDIR)/edgeq/edgeq.yaml; \
		echo "installed $(DESTDIR)$(SYSCONFDIR)/edgeq/edgeq.yaml"; \
	fi
	@if [ -z "$(DESTDIR)" ]; then \
		echo "next: systemd-sysusers && systemctl daemon-reload && systemctl enable --now edgeq"; \
	fi

deb: ## build Debian packages (amd64, arm64, armhf for ARMv6+) into dist/ with dpkg-deb
	@command -v dpkg-deb >/dev/null || { echo "dpkg-deb not found (Debian: apt-get install dpkg)" >&2; exit 1; }
	@mkdir -p dist
	@for p in $(DEB_PLATFORMS); do \
		debarch=$${p%%:*}; IFS=/ read -r arch arm <<< "$${p##*:}"; \
		root=$$(mktemp -d); chmod 0755 $$root; trap 'rm -rf "$$root"' EXIT; \
		CGO_ENABLED=0 GOOS=linux GOARCH=$$arch GOARM=$$arm go build -trimpath -ldflags "$(LDFLAGS)" \
			-o $$root/usr/bin/$(BINARY) .; \
		install -D -m 0644 systemd/edgeq.service $$root/lib/systemd/system/edgeq.service; \
		install -D -m 0644 systemd/edgeq.sysusers.conf $$root/usr/lib/sysusers.d/edgeq.conf; \
		install -D -m 0644 configs/edgeq.yaml $$root/etc/edgeq/edgeq.yaml; \
		install -D -m 0644 docs/deploy.md $$root/usr/share/doc/edgeq/deploy.md; \
		install -D -m 0644 third_party/ristretto/LICENSE $$root/usr/share/doc/edgeq/third_party/ristretto/LICENSE; \
		install -D -m 0644 third_party/badger/LICENSE $$root/usr/share/doc/edgeq/third_party/badger/LICENSE; \
		install -d $$root/DEBIAN; \
		for f in postinst prerm postrm; do install -m 0755 systemd/deb/$$f $$root/DEBIAN/$$f; done; \
		echo /etc/edgeq/edgeq.yaml > $$root/DEBIAN/conffiles; \
		sed -e "s/@VERSION@/$(DEB_VERSION)/" -e "s/@ARCH@/$$debarch/" \
			-e "s/@SIZE@/$$(du -sk --exclude=DEBIAN $$root | cut -f1)/" systemd/deb/control > $$root/DEBIAN/control; \
		out=dist/$(BINARY)_$(DEB_VERSION)_$$debarch.deb; \
		dpkg-deb --root-owner-group -Zxz --build $$root $$out >/dev/null; \
		rm -rf "$$root"; trap - EXIT; \
		echo "built $$out"; \
	done

clean: ## remove the binary, dist/, bench.txt, bench-pi/ and bench-peers/
	rm -rf $(BINARY) dist bench.txt bench-pi bench-peers
