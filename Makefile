# kioskd's contract: every step a person or CI needs is a target here.
# `make run` and `make test` pull in what they need on a fresh Debian 12 machine.

# The Go toolchain: `make deps` puts Go 1.26 in var/go when the machine's Go
# is older (Debian 12 ships 1.19). Recursive (=): read after deps has run.
GO         = $(or $(wildcard $(CURDIR)/var/go/bin/go),go)
BIN       := bin/kioskd
# Package version: 0.1.0+git<commits>.<hash>, increasing with every commit.
VERSION   ?= 0.1.0+git$(shell git rev-list --count HEAD 2>/dev/null || echo 0).$(shell git rev-parse --short HEAD 2>/dev/null || echo local)
LDFLAGS   := -X main.Version=$(VERSION)
NFPM_VERSION := v2.48.0
# Tests that skip for missing test data log here; `make test` ends with the list.
SKIP_LOG  := $(CURDIR)/var/test-skips.log
MODELS    ?= var/models
VENV      := var/venv
CENTRAL_VENV := var/central-venv
TESTDATA  ?= $(firstword $(wildcard ../shared/testdata) var/testdata)
GOFLAGS_TEST ?= -count=1
export KIOSK_MODELS_DIR_DEFAULT := $(abspath $(MODELS))
export KIOSK_TESTDATA := $(abspath $(TESTDATA))
export KIOSK_VENV := $(abspath $(VENV))
export KIOSK_CENTRAL_VENV := $(abspath $(CENTRAL_VENV))
export KIOSK_SKIP_LOG := $(SKIP_LOG)
# With ../shared/testdata present (CI), a test missing data fails, not skips.
export KIOSK_REQUIRE_TESTDATA ?= $(if $(wildcard ../shared/testdata),1,0)
export GOTOOLCHAIN := local

.PHONY: registry-sim all deps go deb deb-test models testdata venv central-py build run test test-race bench bench-peer parity fmt vet lint fuzz soak crash abuse clean

all: build

## deps: install the Debian packages (OpenCV, dlib, ATLAS, Mosquitto, Chromium) and Go 1.26; idempotent
deps:
	@bash scripts/deps.sh
	@bash scripts/go.sh var/go

## go: Go 1.26 in var/go from the Go module proxy when the machine's Go is older
go:
	@bash scripts/go.sh var/go

## models: fetch dlib's model files into var/models and check their sha256
models:
	@bash scripts/models.sh $(MODELS)

## testdata: photos for machines without ../shared/testdata (from face_recognition's sdist)
testdata:
	@bash scripts/testdata.sh var/testdata

## venv: face_recognition from PyPI in var/venv, for parity and side-by-side benchmarks
venv:
	@bash scripts/venv.sh $(VENV)

## central-py: the Python reference client for central (sync/central_py) in var/central-venv
central-py: venv
	@bash sync/central_py/setup.sh $(CENTRAL_VENV)

## build: compile bin/kioskd
build: deps
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/kioskd

## registry-sim: compile bin/registry-sim, central's simulator for demos (docs/mqtt.md)
registry-sim: deps
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/registry-sim ./cmd/registry-sim

## deb: the Debian package in dist/ (nfpm from the Go module proxy)
deb: build
	@mkdir -p dist
	ARCH=$$($(GO) env GOARCH) VERSION='$(VERSION)' \
	  $(GO) run github.com/goreleaser/nfpm/v2/cmd/nfpm@$(NFPM_VERSION) package -f configs/nfpm.yaml -p deb -t dist/

## deb-test: install, start, reload, upgrade and purge the package on this machine (root)
deb-test: build models
	@bash scripts/deb-test.sh

## run: run kioskd with defaults (data under var/) or CONFIG=file
run: build models
	./$(BIN) $(if $(CONFIG),-config $(CONFIG),)

## test: the whole suite with real models, photos, video, broker and browser
test: deps models venv central-py $(if $(wildcard ../shared/testdata),,testdata)
	@rm -f $(SKIP_LOG)
	$(GO) vet ./...
	$(GO) test $(GOFLAGS_TEST) -timeout 30m ./...
	$(GO) test $(GOFLAGS_TEST) -race -timeout 20m ./models/... ./recognizer/ -run 'Race|Concurrent|Matcher|Store'
	$(GO) test $(GOFLAGS_TEST) -race -timeout 20m ./device/ -run '^(TestHamilton.*|TestScenario.*|TestLivenessRefusesPhotos|TestBus.*)$$'
	$(GO) test $(GOFLAGS_TEST) -race -timeout 20m ./localapi/ -run 'Token|AccountCache|Auth|Throttl'
	$(GO) test $(GOFLAGS_TEST) -tags matprofile -timeout 20m -run Leak ./device/
	@bash scripts/skips.sh $(SKIP_LOG)

## bench: benchmarks; results go to docs/benchmarks.md by hand with the machine
bench: deps models
	$(GO) test -run '^$$' -bench . -benchmem -timeout 60m ./...

## bench-peer: our encoder and face_recognition side by side on the same images
bench-peer: deps models venv
	$(GO) test -run '^$$' -bench 'Encode' -benchtime 20x ./recognizer/
	$(VENV)/bin/python scripts/peer_bench.py

## parity: our descriptors against face_recognition's on the same images
parity: deps models venv
	$(GO) test $(GOFLAGS_TEST) -run Parity -v ./recognizer/

## fuzz: a few minutes of each fuzz target
fuzz: deps
	@bash scripts/fuzz.sh $(or $(FUZZTIME),60s)

## soak: long-running fault and leak tests
soak: deps models
	KIOSK_SOAK=1 $(GO) test $(GOFLAGS_TEST) -timeout 120m -run Soak ./...

## crash: kill -9 kioskd at random moments for 1,000 rounds (ROUNDS=N to change; JOBS=N parallel campaigns
## share them, default 2) while it works against a real broker, then the disk-full and read-only data dir
## faults; `make test` runs 20 rounds
crash: deps models
	ROUNDS=$(or $(ROUNDS),1000) JOBS=$(or $(JOBS),2) GO="$(GO)" bash scripts/crash.sh

## abuse: the abuse campaign against a running kioskd (defaults, loopback): kioskd keeps answering, peak RSS < 600 MB
abuse: build models
	@bash scripts/abuse.sh

fmt:
	gofmt -s -w $$(git ls-files '*.go')

vet: lint
lint: deps
	@test -z "$$(gofmt -s -l $$(git ls-files '*.go'))" || (gofmt -s -l $$(git ls-files '*.go'); echo "gofmt -s needed"; exit 1)
	$(GO) vet ./...

clean:
	rm -rf bin
