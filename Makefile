# The README's two commands: `make demo` (the main job) and `make test`.
GO ?= go

.PHONY: demo test deps build vet

# deps installs what the tests and the lab need on a fresh Debian machine.
deps:
	@if ! command -v rsync >/dev/null || ! test -x /usr/sbin/sshd; then \
		apt-get update && apt-get install -y openssh-server rsync; \
	fi

build:
	$(GO) build -o bin/boxswap ./cmd/boxswap

vet:
	test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...

# test runs every test; with CI set, a skipped lab test is a failure.
test: deps vet
	BOXSWAP_LAB_REQUIRED=$${CI:+1} $(GO) test -count=1 ./...

# demo: the main job. Until the lab lands it shows the plan of the first
# transition against the shipped boxes.yaml, offline.
demo: deps build
	./bin/boxswap -c boxes.yaml check --offline
	./bin/boxswap -c boxes.yaml --state "$$(mktemp -d)/boxswap.db" where
	./bin/boxswap -c boxes.yaml --state "$$(mktemp -d)/boxswap.db" plan --offline
