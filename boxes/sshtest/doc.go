// Package sshtest runs an in-process SSH server for tests: the real protocol
// (golang.org/x/crypto/ssh on the server side), on 127.0.0.1, with faults a
// test can ask for.
//
// # Basics
//
// New starts a server on 127.0.0.1:0 and stops it in t.Cleanup. It accepts
// public-key auth for a client key it generates (ClientSigner, WriteIdentity)
// and for keys added with Authorize or the AuthorizedKeys option; any user
// name is accepted and recorded (Logins). Its host key is ed25519; the ECDSA
// option makes it offer an ECDSA P-256 key as well, which is what trips a
// client that checks an ed25519-only known_hosts line with default algorithms.
// HostKeyLine and WriteKnownHosts give the known_hosts line for the ed25519
// key.
//
// An exec request runs `/bin/sh -c CMD` on this machine (in Dir, with Env
// added to this process's environment), streams stdout and stderr, and sends
// the real exit status; a "signal" request is delivered to the command's
// process group. Every command received is recorded (Commands), so tests can
// assert the exact command lines. Handler scripts answers without a shell.
// direct-tcpip channels (what ProxyJump uses) are served to loopback
// addresses only. Global requests, keepalive@openssh.com included, are
// answered false as OpenSSH does.
//
// # Faults
//
// DropAfter closes the TCP connection while a matching command runs (after
// its first output, or at its end if it prints nothing), so the client never
// sees an exit status. NoExitStatus closes a matching command's channel
// cleanly without one. NoKeepaliveReply leaves global requests unanswered.
// CloseAll cuts every current connection; Stop and Restart take the server
// down and bring it back on the same port, with the same keys.
//
// # Caveats
//
// Commands really run here, as the test's user: use Dir to keep them in a
// temporary folder. A command still running when its connection or channel
// closes is killed with its process group.
package sshtest
