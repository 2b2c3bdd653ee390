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

FUZZTIME         ?= 10s
FUZZMINIMIZETIME ?= 2s
# package:target, each run for FUZZTIME.
FUZZ_TARGETS := \
	./storage:FuzzKeyCodec \
	./storage:FuzzRecord \
	./transport/httpapi:FuzzDecodeBatch \
	./transport/httpapi:FuzzAppendJSONString \
	.:FuzzParseConfig

BENCHTIME  ?= 1s
BENCHCOUNT ?= 5

# os/arch[/GOARM], static (CGO off).
PLATFORMS := linux/amd64 linux/arm64 linux/arm/7 linux/arm/6

PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
UNITDIR    ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR ?= /etc
DESTDIR    ?=

.PHONY: help build run test lint bench fuzz cross install clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z][a-zA-Z_-]*:.*## / {printf "  make %-8s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo "  variables: VERSION=$(VERSION) FUZZTIME=$(FUZZTIME) PREFIX=$(PREFIX) DESTDIR=$(DESTDIR)"

build: ## build ./edgeq, static, version-stamped
	CGO_ENABLED=0 go build -trimpath -ldflags "$(LDFLAGS)" -o $(BINARY) .

run: ## run the daemon on built-in defaults (ARGS="--log-level debug" adds flags)
	go run . serve $(ARGS)

test: ## run every test, with the race detector when cgo is available
	@[ -n "$(RACE)" ] || echo "note: cgo is off (no C compiler): testing without -race" >&2
	go test $(RACE) -count=1 -timeout 8m ./...

lint: ## fail on unformatted files (listing them), then go vet
	@files=$$(find . -name '*.go' -not -path './.git/*' -not -path '*/testdata/*' -print0 | xargs -0 gofmt -l); \
	if [ -n "$$files" ]; then echo "gofmt -l lists files that need formatting:"; echo "$$files"; exit 1; fi
	go vet ./...

bench: ## run the benchmarks BENCHCOUNT times into bench.txt
	go test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) -count $(BENCHCOUNT) -timeout 30m ./... | tee bench.txt

fuzz: ## run each fuzz target for FUZZTIME (default 10s)
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

install: build ## install the binary, the systemd unit and (if absent) /etc/edgeq/edgeq.yaml under DESTDIR
	install -D -m 0755 $(BINARY) $(DESTDIR)$(BINDIR)/$(BINARY)
	@if [ -f systemd/edgeq.service ]; then \
		install -D -m 0644 systemd/edgeq.service $(DESTDIR)$(UNITDIR)/edgeq.service; \
		echo "installed $(DESTDIR)$(UNITDIR)/edgeq.service"; \
	fi
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/edgeq/edgeq.yaml ]; then \
		echo "kept existing $(DESTDIR)$(SYSCONFDIR)/edgeq/edgeq.yaml"; \
	else \
		install -D -m 0644 configs/edgeq.yaml $(DESTDIR)$(SYSCONFDIR)/edgeq/edgeq.yaml; \
		echo "installed $(DESTDIR)$(SYSCONFDIR)/edgeq/edgeq.yaml"; \
	fi

clean: ## remove the binary, dist/ and bench.txt
	rm -rf $(BINARY) dist bench.txt
