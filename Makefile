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
	$(GO) build -o bin/lab ./test/lab

vet:
	test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...

# test runs every test, the lab's (test/lab) and the end-to-end cycles
# (test/e2e) included; with CI set, a lab test that cannot run fails
# instead of skipping (BOXSWAP_LAB_REQUIRED=1).
test: deps vet
	if [ -n "$${CI:-}" ]; then export BOXSWAP_LAB_REQUIRED=1; fi; \
	$(GO) test -count=1 ./...

# demo: the main job. Rehearses a whole cycle (f27 to f29) in a two-box lab
# on this machine (root): builds bin/boxswap and bin/lab, starts a lab in a
# temporary directory, runs boxswap check and the five boxswap next, and
# takes the lab down. Installs openssh-server and rsync when missing.
demo:
	GO=$(GO) bash scripts/demo.sh
