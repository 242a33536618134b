# The README's two commands: `make demo` (the main job) and `make test`.
GO ?= go

.PHONY: demo test deps build vet

# deps installs what the tests and the lab need on a fresh Debian machine
# (scripts/deps.sh: apt-get, only what is missing).
deps:
	bash scripts/deps.sh

build:
	$(GO) build -o bin/boxswap ./cmd/boxswap
	$(GO) build -o bin/lab ./test/lab

vet:
	test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	$(GO) vet -tags boxswap_fault ./cmd/boxswap
	$(GO) run ./scripts/funclen ./fsm ./steps ./state ./state/etcdstate >/dev/null || $(GO) run ./scripts/funclen -top 5 ./fsm ./steps ./state ./state/etcdstate

# test runs every test: the unit, SSH, state and CLI packages, then the lab
# packages one at a time (scripts/test.sh): the lab's (test/lab), the
# end-to-end cycles on real boxes (test/e2e) and the reliability sample.
# Every lab also takes the machine-wide lock /run/boxswap-lab.lock, so two
# labs never share the 2 CPUs; the first run builds the real boxes' base
# rootfs and repositories into /var/cache/boxswap-lab (cached afterwards).
# With CI set, a lab test that cannot run fails instead of skipping
# (BOXSWAP_LAB_REQUIRED=1). It ends with each stage's time.
test: deps vet
	GO=$(GO) bash scripts/test.sh

# demo: the main job. Rehearses a whole cycle on two real boxes
# (systemd-nspawn, Debian 12 to 13 with apt; OS=fedora for 27 to 29 with dnf
# system-upgrade) on this machine (root): builds bin/boxswap and bin/lab,
# starts a lab in a temporary directory, runs boxswap check and the five
# boxswap next, checks the end state on the boxes and takes the lab down.
demo:
	GO=$(GO) bash scripts/demo.sh
