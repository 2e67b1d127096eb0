# make test: everything CI runs (installs the npm packages the interop tests use).
GO ?= go

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

# Each fuzz target for a count of executions (about 15 s each here; go test
# allows one -fuzz target per run). Counts, not durations: Go 1.26's fuzz
# coordinator can report "context deadline exceeded" as a failure when a
# duration budget ends while a worker is mid-call (golang/go#75804), which
# failed CI once with no failing input.
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecoder$$' -fuzztime 300000x -fuzzminimizetime 200x ./parser
	$(GO) test -run '^$$' -fuzz '^FuzzRoundTrip$$' -fuzztime 200000x -fuzzminimizetime 200x ./parser
	$(GO) test -run '^$$' -fuzz '^FuzzDecodePayload$$' -fuzztime 150000x -fuzzminimizetime 200x ./engineio
	$(GO) test -run '^$$' -fuzz '^FuzzValidJSON$$' -fuzztime 500000x -fuzzminimizetime 200x ./parser

run:
	$(GO) run ./cmd/switchboard
