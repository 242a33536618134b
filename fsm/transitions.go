package fsm

import (
	"fmt"
	"path"

	"boxswap/boxes"
	"boxswap/state"
	"boxswap/steps"
)

// Steps returns the steps of event for the cycle in meta, built from
// boxes.yaml: the default transitions of the seed's procedure, with the
// operator's hooks before, after and at points inside (see withHooks).
func Steps(cfg *boxes.Config, meta state.Meta, event Event) ([]steps.Step, error) {
	r, err := RolesOf(cfg)
	if err != nil {
		return nil, err
	}
	t, ok := transition(event)
	if !ok {
		return nil, fmt.Errorf("fsm: unknown event %q", event)
	}
	p := planner{cfg: cfg, r: r, from: meta.From, to: meta.To, event: event}
	if p.from == 0 && p.to == 0 {
		p.from, p.to = cfg.Upgrade.From, cfg.Upgrade.To
	}
	var body []steps.Step
	switch event {
	case UpgradeDev:
		body = p.upgrade(r.Dev, r.Prod, true)
	case Redirect:
		body = p.move(r.Prod, r.Dev, true)
	case UpgradeProd:
		body = append([]steps.Step{p.prodGate(r.Prod, r.Dev)}, p.upgrade(r.Prod, r.Dev, false)...)
	case SwitchBack:
		body = p.move(r.Dev, r.Prod, false)
	case Epilogue:
		body = p.epilogue()
	}
	// The approval gate comes before everything the transition would do,
	// its hooks included: a declined gate must not have announced the
	// move (wall 'nbhosting moves in 5 minutes') already.
	return p.withHooks(t, body)
}

func transition(event Event) (Transition, bool) {
	for _, t := range Transitions {
		if t.Event == event {
			return t, true
		}
	}
	return Transition{}, false
}

type planner struct {
	cfg      *boxes.Config
	r        Roles
	from, to int
	event    Event
}

func (p planner) id(parts ...string) string {
	return path.Join(append([]string{string(p.event)}, parts...)...)
}

func (p planner) unit(fn string) string { return p.cfg.Functions[fn].AddressUnit }

// upgrade: the release upgrade of box, while other holds production.
// devHolds says box still holds the development function (upgrade-dev);
// otherwise box is idle (upgrade-prod).
func (p planner) upgrade(box, other boxes.Box, devHolds bool) []steps.Step {
	c := p.cfg
	prodUnit, devUnit := p.unit(boxes.Production), p.unit(boxes.Development)
	s := []steps.Step{
		steps.Reachable(p.id("preflight/reach", other.Name), other.Name),
		steps.Reachable(p.id("preflight/reach", box.Name), box.Name),
		steps.UnitState(p.id("preflight/production", other.Name), other.Name, prodUnit, true, true),
	}
	if devHolds {
		s = append(s, steps.UnitState(p.id("preflight/development", box.Name), box.Name, devUnit, true, true))
	} else {
		s = append(s, steps.UnitState(p.id("preflight/idle", box.Name), box.Name, prodUnit, false, false))
	}
	otherRelease := p.from
	if !devHolds {
		otherRelease = p.to
	}
	// The box may already be on the new release (upgraded by hand): the
	// upgrade steps then find their work done.
	pm := p.pkgManager()
	s = append(s,
		steps.Release(p.id("preflight/release", other.Name), other.Name, otherRelease, p.release(otherRelease)),
		steps.ReleaseIn(p.id("preflight/release", box.Name), box.Name, []int{p.from, p.to}, p.release(p.from)+" (or already "+p.release(p.to)+")"),
		steps.FreeDisk(p.id("preflight/disk", box.Name), box.Name, []string{"/", c.Data.Root}, int64(c.Upgrade.MinFreeDisk)),
		steps.PkgHealth(p.id("preflight/packages", box.Name), box.Name, pm),
		steps.CleanCheckout(p.id("preflight/checkout", box.Name), box.Name, c.App.Checkout, c.App.SettingsFile),
	)
	if p.from != p.to {
		s = append(s, p.releaseUpgrade(box, pm)...)
	}
	s = append(s, p.develBranch(box, other, devHolds)...)
	return append(s, steps.Install(p.id("install"), box.Name, "re-run install.sh", c.App.Install))
}

// releaseUpgrade: box from p.from to p.to, the pip packages installed
// outside the package manager snapshotted before and reinstalled after.
// A cycle with to equal to from (a swap without a release change) has
// none of it.
func (p planner) releaseUpgrade(box boxes.Box, pm steps.PkgManager) []steps.Step {
	c := p.cfg
	var s []steps.Step
	pip := steps.PipParams{Python: c.Upgrade.Python, Pip: c.Upgrade.PipCommand}
	if c.Upgrade.Pip != boxes.PipSkip {
		s = append(s, steps.PipSnapshot(p.id("pip-snapshot"), box.Name, pip))
	}
	s = append(s, p.releaseChange(box)...)
	s = append(s,
		steps.OSRelease(p.id("os-release"), box.Name, p.to, p.release(p.to)),
		steps.PkgHealth(p.id("packages", box.Name), box.Name, pm),
	)
	if c.Upgrade.Pip != boxes.PipSkip {
		s = append(s, steps.PipReinstall(p.id("pip-reinstall"), box.Name, pip))
	}
	return s
}

// develBranch: the devel branch at the commit the other box validated.
// upgrade-dev makes it at origin's branch (or upgrade.devel_ref);
// upgrade-prod at the commit other runs then, read at run time and
// fetched from it box to box.
func (p planner) develBranch(box, other boxes.Box, devHolds bool) []steps.Step {
	c := p.cfg
	bp := steps.BranchParams{Box: box.Name, Checkout: c.App.Checkout, Branch: c.Upgrade.DevelBranch,
		Start: "origin/" + c.Upgrade.DevelBranch}
	if devHolds {
		if c.Upgrade.DevelRef != "" {
			bp.Start = c.Upgrade.DevelRef
		}
		return []steps.Step{steps.BranchAt(p.id("devel-branch"), bp)}
	}
	bp.Start, bp.StartFact = "", codeFact(other)
	bp.From = steps.Remote{Host: other.Host, User: other.User, Port: other.Port.Int(), Checkout: c.App.Checkout}
	return []steps.Step{
		steps.RecordHead(p.id("record-code", other.Name), other.Name, c.App.Checkout, codeFact(other)),
		steps.BranchAt(p.id("devel-branch"), bp),
	}
}

// codeFact holds the commit box ran when upgrade-prod read it.
func codeFact(box boxes.Box) string { return box.Name + "/code" }

// pkgManager is the package database the upgrade method works on.
func (p planner) pkgManager() steps.PkgManager {
	if p.cfg.Upgrade.Method == boxes.MethodApt {
		return steps.Dpkg
	}
	return steps.Rpm
}

// productionSince is the fact in which redirect records when the new
// production took the address; the gate before upgrade-prod reads it.
const productionSince = "production/since"

// prodGate asks before upgrade-prod: it irreversibly upgrades the box
// that is production's only fallback.
func (p planner) prodGate(box, prod boxes.Box) steps.Step {
	prompt := fmt.Sprintf("upgrade %s to %s: it is production's only fallback while %s serves on %s; "+
		"once %s reboots into %s it cannot go back to %s (the reboot cannot be undone), and production can only return to %s on %s",
		box.Name, p.short(p.to), prod.Name, p.short(p.to), box.Name, p.short(p.to), p.short(p.from), box.Name, p.short(p.to))
	return steps.GateSince(p.id("approve"), prompt, productionSince, prod.Name+" has served production")
}

// releaseChange: the steps that take box from release p.from to p.to by
// upgrade.method, the reboot into it last.
func (p planner) releaseChange(box boxes.Box) []steps.Step {
	u := p.cfg.Upgrade
	reboot := steps.RebootParams{Into: p.release(p.to), Timeout: u.RebootTimeout, To: p.to}
	if u.Method == boxes.MethodApt {
		reboot.Command, reboot.LogCmd = "systemctl reboot", "tail -n 30 /var/log/apt/term.log"
		return []steps.Step{
			steps.AptSources(p.id("apt-sources"), box.Name, steps.AptSourcesParams{
				From: u.Suites[p.from], To: u.Suites[p.to], Keep: u.KeepSources,
			}),
			steps.AptUpdate(p.id("apt-update"), box.Name, p.to),
			steps.AptUpgrade(p.id("apt-upgrade"), box.Name, p.to, reboot.Into, u.Options),
			steps.Reboot(p.id("reboot"), box.Name, reboot),
		}
	}
	reboot.Command, reboot.Offline, reboot.LogCmd = "dnf system-upgrade reboot", true, dnfUpgradeLog
	reboot.LogName = "dnf system-upgrade log --number=-1 (dnf's lines)"
	return []steps.Step{
		steps.DnfUpgrade(p.id("dnf-upgrade"), box.Name, p.to),
		steps.DnfInstall(p.id("dnf-plugin"), box.Name, "dnf-plugin-system-upgrade", p.to),
		steps.DnfDownload(p.id("dnf-download"), box.Name, p.to, u.Options),
		steps.Reboot(p.id("reboot"), box.Name, reboot),
	}
}

// dnfUpgradeLog prints the last upgrade boot's log, the lines dnf wrote
// (the transaction, its scriptlets' errors) when it has any: the whole
// boot's journal ends with the reboot's own shutdown messages.
const dnfUpgradeLog = "l=$(dnf system-upgrade log --number=-1 2>&1); printf '%s\\n' \"$l\" | grep -E ' dnf(-3)?\\[[0-9]+\\]: ' || printf '%s\\n' \"$l\""

// release names release n for the operator: "Fedora 29" (dnf), "trixie
// (release 13)" (apt).
func (p planner) release(n int) string {
	if p.cfg.Upgrade.Method != boxes.MethodApt {
		return fmt.Sprintf("Fedora %d", n)
	}
	if s := p.cfg.Upgrade.Suites[n]; s != "" {
		return fmt.Sprintf("%s (release %d)", s, n)
	}
	return fmt.Sprintf("release %d", n)
}

// short names release n in one word: f29 (dnf), trixie (apt).
func (p planner) short(n int) string { return p.cfg.Upgrade.Short(n) }

// presyncPasses bounds the pre-sync passes of a move: the first copies
// the bulk, a second what changed meanwhile, a third rarely finds more
// than a few files.
const presyncPasses = 3

// move: production from src to dst. Everything slow runs while src still
// serves: the sync passes, the settings switch, install.sh and the app's
// start on dst, and app.check on dst itself. The window without
// production is only: stop the writers on both boxes (and src's
// containers), a final delta sync, start dst's writers, move the address.
// After it, once production answers: the address verified, and app.check
// through it from src, which moves production back when it fails.
func (p planner) move(src, dst boxes.Box, dropDev bool) []steps.Step {
	c := p.cfg
	gate := fmt.Sprintf("move production from %s to %s", src.Name, dst.Name)
	if dropDev {
		gate = fmt.Sprintf("%s has been validated on %s; move production from %s to it", dst.Name, p.short(p.to), src.Name)
	}
	s := []steps.Step{
		steps.Gate(p.id("approve"), gate),
		steps.Reachable(p.id("preflight/reach", src.Name), src.Name),
		steps.Reachable(p.id("preflight/reach", dst.Name), dst.Name),
		steps.Release(p.id("preflight/release", dst.Name), dst.Name, p.to, p.release(p.to)),
	}
	s = append(s, p.moveDst(src, dst, dropDev)...)
	s = append(s, p.syncs(src, dst, dropDev, false)...)
	prod := c.Functions[boxes.Production].Settings
	s = append(s,
		steps.Settings(p.id("settings", dst.Name), dst.Name, c.App.SettingsFile, prod, c.App.Install),
		steps.Install(p.id("install", dst.Name), dst.Name, "re-run install.sh with the production settings", c.App.Install),
		steps.StartServices(p.id("start-services", dst.Name), dst.Name, c.App.Services),
	)
	if c.App.Check != nil {
		s = append(s, steps.AppCheck(p.id("check", dst.Name), dst.Name, p.checkParams("127.0.0.1")))
	}
	s = append(s, p.window(src, dst, dropDev)...)
	s = append(s, p.afterWindow(src, dst)...)
	if dropDev {
		s = append(s, steps.Stamp(p.id("record-time"), productionSince, "when "+dst.Name+" took production"))
	}
	return s
}

// windowStart is the first step of a move's window: a failed check
// through the production address undoes the move back to it.
func (p planner) windowStart(src boxes.Box) string { return p.id("stop-writers", src.Name) }

// window: the cut-over, production answering nowhere meanwhile.
func (p planner) window(src, dst boxes.Box, dropDev bool) []steps.Step {
	c := p.cfg
	prod := c.Functions[boxes.Production]
	s := []steps.Step{
		steps.StopWriters(p.windowStart(src), src.Name, c.App.Writers, c.App.Containers),
		steps.StopWriters(p.id("stop-writers", dst.Name), dst.Name, c.App.Writers, boxes.ContainersNone),
	}
	s = append(s, p.syncs(src, dst, dropDev, true)...)
	return append(s,
		steps.StartServices(p.id("start-writers", dst.Name), dst.Name, c.App.Writers),
		steps.ReleaseAddress(p.id("release-address", src.Name), src.Name, prod.AddressUnit, prod.Address, []string{src.Name, dst.Name}),
		steps.UnitUp(p.id("take-address", dst.Name), dst.Name, prod.AddressUnit),
	)
}

// afterWindow: what a move checks once production answers again.
func (p planner) afterWindow(src, dst boxes.Box) []steps.Step {
	c := p.cfg
	prod := c.Functions[boxes.Production]
	var s []steps.Step
	if prod.Address != "" {
		s = append(s, steps.VerifyAddress(p.id("verify-address", dst.Name), dst.Name, src.Name, prod.Address, prod.Interface))
	}
	if c.App.Check != nil {
		s = append(s, steps.ProductionCheck(p.id("check-production"), src.Name, dst.Name, prod.Address, p.windowStart(src), p.checkParams("")))
	}
	return s
}

// checkParams is app.check for the production name, resolved to connect.
func (p planner) checkParams(connect string) steps.CheckParams {
	k := p.cfg.App.Check
	return steps.CheckParams{
		Name: p.cfg.Functions[boxes.Production].Alias, Path: k.Path, Status: k.Status, Text: k.Text,
		Timeout: k.Timeout, CA: k.CA, Insecure: k.Insecure, Connect: connect,
	}
}

// syncs are a move's pre-sync passes (final false) or its final sync:
// one step per data entry (see syncParams); their IDs are what resume and
// --stop-before know.
func (p planner) syncs(src, dst boxes.Box, dropDev, final bool) []steps.Step {
	kind := "sync"
	if final {
		kind = "final-sync"
	}
	var s []steps.Step
	for _, e := range p.dataEntries() {
		s = append(s, steps.Sync(p.id(kind, e.name), p.syncParams(src, dst, e, final, dropDev)))
	}
	return s
}

// moveDst: what a move checks or changes on dst before anything runs on
// src. redirect drops dst's development function; switch-back checks
// that dst's checkout is clean and at the commit that serves production
// on src: production returns only to the code that served it.
func (p planner) moveDst(src, dst boxes.Box, dropDev bool) []steps.Step {
	c := p.cfg
	if dropDev {
		return []steps.Step{steps.UnitDown(p.id("drop-development", dst.Name), dst.Name, p.unit(boxes.Development))}
	}
	return []steps.Step{
		steps.CleanCheckout(p.id("preflight/checkout", dst.Name), dst.Name, c.App.Checkout, c.App.SettingsFile),
		steps.SameCode(p.id("preflight/same-code", dst.Name), dst.Name, src.Name, c.App.Checkout),
	}
}

// epilogue: the usual development box becomes one again.
func (p planner) epilogue() []steps.Step {
	c := p.cfg
	dev := p.r.Dev
	var s []steps.Step
	if c.Data.BackupSuffix != "" {
		for _, e := range p.dataEntries() {
			s = append(s, steps.Rename(p.id("backup", e.name), dev.Name, c.Data.Root, e.name, c.Data.BackupSuffix))
		}
	}
	if c.Cleanup.Containers {
		s = append(s, steps.CleanupContainers(p.id("cleanup-containers", dev.Name), dev.Name))
	}
	devLines := c.Functions[boxes.Development].Settings
	units := []string{p.unit(boxes.Production), p.unit(boxes.Development)}
	s = append(s,
		steps.Settings(p.id("settings", dev.Name), dev.Name, c.App.SettingsFile, devLines, c.App.Install),
		steps.Install(p.id("install", dev.Name), dev.Name, "re-run install.sh with the development settings", c.App.Install),
		steps.StartServices(p.id("start-services", dev.Name), dev.Name, c.App.Services),
		steps.UnitUp(p.id("take-address", dev.Name), dev.Name, p.unit(boxes.Development)),
		steps.RecordStatus(p.id("status", p.r.Prod.Name), p.r.Prod.Name, units),
		steps.RecordStatus(p.id("status", dev.Name), dev.Name, units),
	)
	return s
}
