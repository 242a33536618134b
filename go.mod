module boxswap

go 1.26.0

require (
	github.com/kevinburke/ssh_config v1.6.0
	github.com/looplab/fsm v1.0.3
	github.com/rogpeppe/go-internal v1.14.1
	github.com/skeema/knownhosts v1.3.3
	github.com/spf13/cobra v1.10.2
	go.etcd.io/bbolt v1.4.3
	golang.org/x/crypto v0.59.0
	golang.org/x/sys v0.50.0
	gopkg.in/yaml.v3 v3.0.1
)

require (
	github.com/inconshreveable/mousetrap v1.1.0 // indirect
	github.com/spf13/pflag v1.0.9 // indirect
	golang.org/x/tools v0.26.0 // indirect
)
