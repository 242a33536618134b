package steps

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"boxswap/boxes"

	"boxswap/internal/text"
)

// CheckParams is app.check as one box runs it: a page of the site fetched
// over HTTPS with the production name as Host and SNI, the certificate
// verified (against CA, or the box's system CAs, unless Insecure).
type CheckParams struct {
	Name     string // the production name (boxes.yaml's alias)
	Path     string
	Status   int
	Text     string // the page must hold it; "" checks the status only
	Timeout  time.Duration
	CA       string // a file on the box; "" means the system's CAs
	Insecure bool
	// Connect is the address Name is resolved to (curl --resolve):
	// 127.0.0.1 for the new box itself, the production address through
	// the network; "" leaves it to the box's resolver.
	Connect string
	// Poll is the wait between tries until Timeout; default 1s.
	Poll time.Duration
	// Port is the HTTPS port; default 443.
	Port int
}

func (p CheckParams) port() int {
	if p.Port == 0 {
		return 443
	}
	return p.Port
}

// errCheckFailed is returned by poll when no try succeeded in time.
var errCheckFailed = errors.New("app check failed")

// statusMark starts the line curl writes after the page: the status.
const statusMark = "boxswap-http-status "

// url is what curl fetches.
func (p CheckParams) url() string {
	if p.port() != 443 {
		return fmt.Sprintf("https://%s:%d%s", p.Name, p.port(), p.Path)
	}
	return "https://" + p.Name + p.Path
}

// curlCmd fetches the page once, printing it and then the status line.
func (p CheckParams) curlCmd() string {
	secs := int(math.Ceil(p.Timeout.Seconds()))
	cmd := fmt.Sprintf("curl --silent --show-error --max-time %d --proto =https", max(secs, 1))
	if p.Connect != "" {
		cmd += " --resolve " + quote(fmt.Sprintf("%s:%d:%s", p.Name, p.port(), p.Connect))
	}
	switch {
	case p.Insecure:
		cmd += " --insecure"
	case p.CA != "":
		cmd += " --cacert " + quote(p.CA)
	}
	return cmd + " --output - --write-out " + quote(`\n`+statusMark+`%{http_code}\n`) + " -- " + quote(p.url())
}

// curlWhy explains curl's exit codes an operator meets here.
var curlWhy = map[int]string{
	6:  "the name does not resolve",
	7:  "the connection was refused (is the web front up?)",
	28: "no answer within the timeout",
	35: "the TLS handshake failed",
	51: "the certificate does not match the name",
	52: "the server closed the connection without answering",
	56: "the connection broke while receiving",
	58: "the client certificate is refused",
	60: "the certificate is not trusted (wrong or missing certificate, or ca: is not its CA)",
	77: "the CA file cannot be read",
}

// fetch runs the check once on box: ok, or what was wrong.
func (p CheckParams) fetch(ctx context.Context, env *Env, box string) (bool, string, error) {
	cmd := p.curlCmd()
	res, err := execute(ctx, env, box, "check "+p.url(), cmd, true)
	if err != nil {
		return false, "", err
	}
	if res.Exit != 0 {
		why := fmt.Sprintf("curl exit %d: %s", res.Exit, text.OneLine(lastLine(res.Tail), 30))
		if known := curlWhy[res.Exit]; known != "" {
			why = fmt.Sprintf("%s (curl exit %d)", known, res.Exit)
		}
		if res.Exit == 127 {
			why = "curl is not installed on " + box
		}
		return false, fmt.Sprintf("%s from %s: %s", p.url(), box, why), nil
	}
	i := strings.LastIndex(res.Stdout, "\n"+statusMark)
	if i < 0 {
		return false, "", fmt.Errorf("%s: %s: no status line in curl's output", box, p.url())
	}
	body, status := res.Stdout[:i], strings.TrimSpace(res.Stdout[i+1+len(statusMark):])
	if status != fmt.Sprint(p.Status) {
		return false, fmt.Sprintf("%s from %s answered %s, want %d", p.url(), box, status, p.Status), nil
	}
	if p.Text != "" && !strings.Contains(body, p.Text) {
		return false, fmt.Sprintf("%s from %s answered %s without %q (%s)", p.url(), box, status, p.Text, clip(firstLine(body))), nil
	}
	return true, fmt.Sprintf("%s from %s answered %s", p.url(), box, status), nil
}

// poll tries until one try succeeds or Timeout has passed since the
// first; it returns what the last try saw. The waits between tries are
// waits: the operator's stop ends them (boxes.Waiting).
func (p CheckParams) poll(ctx context.Context, env *Env, box string, try func() (bool, string, error)) (string, error) {
	wait := p.Poll
	if wait <= 0 {
		wait = time.Second
	}
	wctx, stopWaiting := boxes.Waiting(ctx)
	defer stopWaiting()
	deadline := time.Now().Add(p.Timeout)
	for {
		ok, why, err := try()
		if err != nil || ok {
			return why, err
		}
		if time.Now().Add(wait).After(deadline) {
			return why, fmt.Errorf("%w: %s", errCheckFailed, why)
		}
		progress(env, "%s: %s; trying again for %s", box, why, time.Until(deadline).Round(time.Second))
		t := time.NewTimer(wait)
		select {
		case <-wctx.Done():
			t.Stop()
			return why, fmt.Errorf("%s: waiting to check %s again: %w", box, p.url(), context.Cause(wctx))
		case <-t.C:
		}
	}
}

type appCheckStep struct {
	base
	box string
	p   CheckParams
}

// AppCheck runs app.check on box itself, its own web front answering for
// the production name (Connect 127.0.0.1): before the window, after
// install.sh and the app's start on the new box. It changes nothing;
// Apply tries until the timeout and fails with what it saw.
func AppCheck(id, box string, p CheckParams) Step {
	text := fmt.Sprintf("check that %s answers %s as %s, through its own web front", box, p.Path, p.Name)
	if p.Insecure {
		text += " (certificate NOT verified: app.check.insecure)"
	}
	return &appCheckStep{box: box, p: p, base: base{id: id, desc: Description{
		Box: box, Text: text, Commands: []string{p.curlCmd()}, Retry: true,
	}}}
}

func (s *appCheckStep) Check(ctx context.Context, env *Env) (bool, string, error) {
	return s.p.fetch(ctx, env, s.box)
}

func (s *appCheckStep) Apply(ctx context.Context, env *Env) error {
	_, err := s.p.poll(ctx, env, s.box, func() (bool, string, error) { return s.p.fetch(ctx, env, s.box) })
	if errors.Is(err, errCheckFailed) {
		return withDetail(fmt.Errorf("%v; production was not touched: %w", err, ErrPrecondition),
			"fix the app on "+s.box+" (install.sh's output, its services, its certificate), then run boxswap resume")
	}
	return err
}

func (s *appCheckStep) Undo(context.Context, *Env) error { return nil }

type productionCheckStep struct {
	base
	from, to string
	addr     string // the production address; "" skips the proof of who answered
	p        CheckParams
}

// ProductionCheck runs app.check from box from (the old production box,
// on the users' network) through the production address, once box to has
// taken it: the page must answer, and the address must be to's (the
// neighbour entry from used is the MAC of to's interface holding addr).
// revertTo names the step the engine undoes back to when it fails: the
// start of the window, so production goes back to from.
func ProductionCheck(id, from, to, addr, revertTo string, p CheckParams) Step {
	p.Connect = addr
	d := Description{
		Box:      from,
		Text:     fmt.Sprintf("check from %s that %s answers %s through the production address, served by %s", from, p.Name, p.Path, to),
		Commands: []string{p.curlCmd()},
		Retry:    true,
		RevertTo: revertTo,
	}
	if addr != "" {
		d.Commands = append(d.Commands, neighCmd(addr), holdersCmd(addr), macCmd("<interface>"))
	}
	return &productionCheckStep{from: from, to: to, addr: addr, p: p, base: base{id: id, desc: d}}
}

func (s *productionCheckStep) Check(ctx context.Context, env *Env) (bool, string, error) {
	ok, why, err := s.p.fetch(ctx, env, s.from)
	if err != nil || !ok || s.addr == "" {
		return ok, why, err
	}
	return s.answeredBy(ctx, env, why)
}

// answeredBy says whether the MAC from reached addr at is to's.
func (s *productionCheckStep) answeredBy(ctx context.Context, env *Env, why string) (bool, string, error) {
	res, err := run(ctx, env, s.from, "reading which MAC answers for "+s.addr, neighCmd(s.addr), false)
	if err != nil {
		return false, "", err
	}
	seen := neighMAC(res.Stdout)
	mine, err := s.macs(ctx, env)
	if err != nil {
		return false, "", err
	}
	for _, m := range mine {
		if seen != "" && strings.EqualFold(m, seen) {
			return true, fmt.Sprintf("%s, by %s (%s reaches %s at %s)", why, s.to, s.from, s.addr, seen), nil
		}
	}
	if seen == "" {
		seen = "no neighbour entry"
	}
	return false, fmt.Sprintf("%s, but not by %s: %s reaches %s at %s, %s's interface holding it is %s", why, s.to, s.from, s.addr, seen, s.to, strings.Join(mine, ", ")), nil
}

// macs are the MACs of to's interfaces holding addr.
func (s *productionCheckStep) macs(ctx context.Context, env *Env) ([]string, error) {
	res, err := run(ctx, env, s.to, "looking for the interfaces holding "+s.addr, holdersCmd(s.addr), false)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, iface := range holderIfaces(res.Stdout) {
		r, err := run(ctx, env, s.to, "reading the MAC of "+iface, macCmd(iface), false)
		if err != nil {
			return nil, err
		}
		out = append(out, linkMAC(r.Stdout))
	}
	return out, nil
}

func (s *productionCheckStep) Apply(ctx context.Context, env *Env) error {
	_, err := s.p.poll(ctx, env, s.from, func() (bool, string, error) { return s.Check(ctx, env) })
	if errors.Is(err, errCheckFailed) {
		return fmt.Errorf("%s does not serve production at its address: %w", s.to, err)
	}
	return err
}

func (s *productionCheckStep) Undo(context.Context, *Env) error { return nil }

// neighCmd shows the neighbour entry of addr: the MAC a box sends to.
func neighCmd(addr string) string { return "ip -4 neigh show to " + quote(addr) }

// macCmd shows an interface, its MAC after link/ether (not /sys, which
// a container may have mounted from another network namespace).
func macCmd(iface string) string { return "ip -o link show dev " + quote(iface) }

// linkMAC reads the MAC of `ip -o link show` ("" when none).
func linkMAC(out string) string {
	f := strings.Fields(out)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "link/ether" {
			return f[i+1]
		}
	}
	return ""
}

// neighMAC reads the lladdr of `ip neigh show` ("" when none).
func neighMAC(out string) string {
	f := strings.Fields(firstLine(out))
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "lladdr" {
			return f[i+1]
		}
	}
	return ""
}
