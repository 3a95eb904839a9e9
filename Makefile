# The one place the build, test and lint commands live: README.md and
# .ci/run call these targets.
GO           ?= go
GOLANGCI     := github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.15.0
VERSION      ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS      := -X main.version=$(VERSION)

.PHONY: build install test unit fuzz lint bench ci

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/dmsfs ./cmd/dmsfs

# install puts dmsfs in /usr/local/bin and the mount(8) helper beside mount.fuse3.
install: build
	install -m 0755 bin/dmsfs /usr/local/bin/dmsfs
	/usr/local/bin/dmsfs install-helper

# test: vet, every package under the race detector, the reference model
# at full length, then the fuzz targets for a short while.
test: unit fuzz

unit:
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...
	$(GO) test -count=1 -run '^TestReferenceModel$$' ./fs/core

fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzReadReply$$' -fuzztime 15s ./remote/enaio/rpc
	$(GO) test -run '^$$' -fuzz '^FuzzUnmarshal$$' -fuzztime 10s ./remote/enaio/dmsxml
	$(GO) test -run '^$$' -fuzz '^FuzzTableRows$$' -fuzztime 5s ./remote/enaio
	$(GO) test -run '^$$' -fuzz '^FuzzAnswers$$' -fuzztime 8s ./remote/axelor
	$(GO) test -run '^$$' -fuzz '^FuzzAnswers$$' -fuzztime 8s ./remote/invenio
	$(GO) test -run '^$$' -fuzz '^FuzzEscape$$' -fuzztime 5s ./fs/core
	$(GO) test -run '^$$' -fuzz '^FuzzSearchQuery$$' -fuzztime 5s ./remote/embedded
	$(GO) test -run '^$$' -fuzz '^FuzzSearchQuery$$' -fuzztime 5s ./remote/enaio

# lint: golangci-lint with .golangci.yml (errcheck, errorlint, govet,
# staticcheck, ineffassign, unused, gofmt), built from the module proxy.
lint:
	$(GO) run $(GOLANGCI) run ./...

bench:
	scripts/bench.sh

ci: test lint
