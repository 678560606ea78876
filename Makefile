# mediaguard: `make run` and `make test` are all a newcomer needs.
GO      ?= go
CADDY   := bin/caddy
PKGS    := ./...
# nodynamic: the AVIF/HEIC decoders (hashing/picture) run only their built-in
# WebAssembly, never a system libavif/libheif, and the binary stays static.
# Tests build with the same tags as bin/caddy.
TAGS    := nodynamic
# How much each fuzz target runs in `make fuzz`: a count of inputs, not a
# duration. A duration races Go's fuzz coordinator at its deadline and fails
# with a bare "context deadline exceeded" and no crasher (go.dev/issue/75804,
# fixed only in Go 1.27); a count has no deadline to race. 20000 inputs take
# 1-15 s per target here. FUZZTIME=5m works for a long local run (on Go 1.27+).
FUZZTIME ?= 20000x
# FuzzVariants runs every deep variant per input (~300 inputs/s here).
VARIANTFUZZ ?= 3000x

.PHONY: build run demo test dendrite test-short bench load fpcorpus fuzz vet fmt clean

## build: compile Caddy with mediaguard into bin/caddy (incremental)
# CGO_ENABLED=0: a static binary (Go's own DNS resolver and user lookup), so
# bin/caddy runs as it is in an empty container image (examples/docker) and
# on any Linux of the same architecture. Nothing in the build needs cgo.
build:
	CGO_ENABLED=0 $(GO) build -tags $(TAGS) -o $(CADDY) ./xcaddy

## run: build, then serve Caddyfile.example (in front of a homeserver on 127.0.0.1:8008)
run: build
	$(CADDY) run --config Caddyfile.example --adapter caddyfile

# demo builds bin/mgdemo and runs it rather than `go run`: go run exits 1
# when interrupted, and make would report every Ctrl-C as a failure.
## demo: build, then mediaguard in front of a throwaway Dendrite: curl lines to try and the management room as notices arrive; Ctrl-C stops and removes it all (installs Dendrite once; make demo DEMOFLAGS=-check runs the scenario and exits)
demo: build dendrite
	$(GO) build -o bin/mgdemo ./cmd/mgdemo
	bin/mgdemo $(DEMOFLAGS)

## test: every test, with the race detector; builds Dendrite first when it is missing (cached in GOPATH/bin) so the end-to-end tests run, and ends with a line per package that skipped tests, and why
test: vet dendrite
	$(GO) run ./internal/testreport -tags $(TAGS) -race -count=1 $(PKGS)

## dendrite: install the real homeserver the end-to-end tests run (go install, once; needs gcc for its SQLite driver)
dendrite:
	@scripts/install-dendrite.sh || echo "make: WARNING: Dendrite could not be built (see above); the end-to-end tests will be SKIPPED and listed at the end"

## test-short: the quick subset while editing
test-short:
	$(GO) test -tags $(TAGS) -short $(PKGS)

## bench: the benchmarks behind BENCHMARKS.md (compare runs with benchstat)
bench:
	bench/gobench.sh

## load: build, then the mixed-traffic load test through Caddy (flags: make load LOADFLAGS="-duration 5s")
load: build
	$(GO) run ./bench/mgload $(LOADFLAGS)

## fpcorpus: false positives of the PDQ search variants on the full clean corpus (fetches ~145 MB of Debian packages once; flags: make fpcorpus FPFLAGS="-search deep")
fpcorpus:
	$(GO) run -tags $(TAGS) ./bench/fpcorpus $(FPFLAGS)

## fuzz: run every fuzz target for FUZZTIME (inputs, or a duration) each
fuzz:
	$(GO) test -tags $(TAGS) ./hashing/pdq -run '^$$' -fuzz '^FuzzHashBytes$$' -fuzztime $(FUZZTIME)
	$(GO) test -tags $(TAGS) ./hashing/pdq -run '^$$' -fuzz '^FuzzVariants$$' -fuzztime $(VARIANTFUZZ)
	$(GO) test -tags $(TAGS) ./hashing/picture -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME)
	$(GO) test -tags $(TAGS) ./hashing/picture/jpegx -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME)
	$(GO) test -tags $(TAGS) ./matcher -run '^$$' -fuzz '^FuzzParseBank$$' -fuzztime $(FUZZTIME)
	$(GO) test -tags $(TAGS) ./matcher/ncmecxml -run '^$$' -fuzz '^FuzzRead$$' -fuzztime $(FUZZTIME)
	$(GO) test -tags $(TAGS) ./ncmec -run '^$$' -fuzz '^FuzzNextLink$$' -fuzztime $(FUZZTIME)
	$(GO) test -tags $(TAGS) ./ncmec -run '^$$' -fuzz '^FuzzBankLine$$' -fuzztime $(FUZZTIME)
	$(GO) test -tags $(TAGS) ./lookupapi -run '^$$' -fuzz '^FuzzLookupRequest$$' -fuzztime $(FUZZTIME)
	$(GO) test -tags $(TAGS) ./hmaapi -run '^$$' -fuzz '^FuzzUploadForm$$' -fuzztime $(FUZZTIME)
	$(GO) test -tags $(TAGS) ./hmaapi -run '^$$' -fuzz '^FuzzLookupQuery$$' -fuzztime $(FUZZTIME)
	$(GO) test -tags $(TAGS) ./mediaproxy -run '^$$' -fuzz '^FuzzClassify$$' -fuzztime $(FUZZTIME)
	$(GO) test -tags $(TAGS) ./mediaproxy -run '^$$' -fuzz '^FuzzFederationMedia$$' -fuzztime $(FUZZTIME)
	$(GO) test -tags $(TAGS) ./hashing/picture/icc -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s
	$(GO) test -tags $(TAGS) ./hashing/carve -run '^$$' -fuzz '^FuzzCarve$$' -fuzztime $(FUZZTIME)
	$(GO) test -tags $(TAGS) ./ledger -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME)

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet -tags $(TAGS) $(PKGS)

fmt:
	gofmt -w .

clean:
	rm -rf bin
