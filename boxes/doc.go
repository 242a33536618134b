// Package boxes is the pair of servers boxswap works on: the boxes.yaml
// schema, its strict loading, and how a command reaches a box.
//
// # Basics
//
// Load reads boxes.yaml and returns a *Config that is complete and safe to
// use, or a *LoadError listing every problem at once, one
// "FILE:LINE: what is wrong (hint: what to do)" line each. Nothing should
// touch a box before Load has succeeded. Defaults are filled in (port 22,
// user root, reboot_timeout 60m, devel_branch f<to>, min_free_disk 5GiB,
// max_delete 1000, SSH timeouts 15s) and the SSH file paths are absolute:
// ~/ is expanded and a relative path is taken from the file's folder.
//
// A Config describes the pair as declared: Config.ByFunction gives the box
// boxes.yaml says starts with a function; during an upgrade the state
// database, not the Config, says which box holds what. Config.Box and
// Config.Other find a box by name and its partner; Box.Addr is its host:port as declared.
//
// A Runner runs a shell command line on one box and reports whether it
// ran, did not start, or may have run (ErrUnreachable, ErrOutcomeUnknown).
// Over SSH, a Dialer built from the Config (NewDialer) gives each box's
// Runner, one connection per box.
//
// # Caveats
//
// Every value that goes into a remote command line must go through Quote,
// even those Load has checked. Load refuses shell characters, leading
// dashes and newlines in names, hosts, users, units, paths, folders and
// the branch, but that is a second line of defence, not the first.
//
// Two kinds of values are not plain words. The settings lines (server_name,
// ssl_certificate, ssl_certificate_key) may hold any single-line text: the
// step that writes them into sitesettings.py must escape them for Python
// and quote them for the shell. app.install and the hooks' run, check and
// undo are shell command lines the operator wrote: they run as given, by
// design, and must never be built from other values.
//
// Boxes are reached by their own names, never through a function's alias:
// the alias's address, and the host key answering on it, move with the
// function. Load refuses a box whose host is an alias.
package boxes
