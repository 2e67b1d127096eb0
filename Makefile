# make test: everything CI runs (installs the npm packages the interop tests use).
GO ?= go
FUZZTIME ?= 20s

.PHONY: test deps unit js bench-smoke fuzz vet run

test: deps vet unit js bench-smoke fuzz

deps:
	npm ci --no-audit --no-fund --loglevel=error

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet ./...

unit:
	$(GO) test -race -count=1 -timeout 15m ./...

# The JS client's tests (node's test runner), against the Node reference
# server and the Go server.
js:
	node --test web/test/ web/e2e/

# The benchmark suite against Switchboard and Node in a seconds-long smoke
# mode, so that it keeps working (figures: docs/performance.md).
bench-smoke:
	bench/run.sh --smoke

# Each fuzz target for FUZZTIME (go test allows one -fuzz target per run).
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecoder$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 200x ./parser
	$(GO) test -run '^$$' -fuzz '^FuzzRoundTrip$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 200x ./parser
	$(GO) test -run '^$$' -fuzz '^FuzzDecodePayload$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 200x ./engineio
	$(GO) test -run '^$$' -fuzz '^FuzzValidJSON$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 200x ./parser

run:
	$(GO) run ./cmd/switchboard
