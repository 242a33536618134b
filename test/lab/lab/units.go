//go:build linux

package lab

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Unit state: enabled lives on the box's disk, the rest in /run, which a
// reboot empties like the real thing.
const (
	unitsDisk = "/var/lib/lab/units"
	unitsRun  = "/run/lab/units"
)

// unitKinds are the units a box knows: the two address units, and the
// app's services, which are sleeping processes.
var unitKinds = map[string]string{
	"nbhosting-addr":     ProductionAddr,
	"nbhosting-dev-addr": DevelopmentAddr,
	"nbh-uwsgi":          "",
	"nbh-monitor":        "",
	"docker":             "",
}

func unitName(arg string) string { return strings.TrimSuffix(arg, ".service") }

func known(u string) bool {
	_, ok := unitKinds[u]
	return ok || u == "sshd"
}

func loadBoxConfig() (boxConfig, error) {
	var c boxConfig
	raw, err := os.ReadFile(boxConfigPath)
	if err != nil {
		return c, err
	}
	return c, json.Unmarshal(raw, &c)
}

func enabledUnits() ([]string, error) {
	ents, err := os.ReadDir(unitsDisk)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if u, ok := strings.CutSuffix(e.Name(), ".enabled"); ok && known(u) {
			out = append(out, u)
		}
	}
	sort.Strings(out)
	return out, nil
}

func isEnabled(u string) bool {
	if u == "sshd" {
		return true
	}
	_, err := os.Stat(filepath.Join(unitsDisk, u+".enabled"))
	return err == nil
}

// unitPID returns the PID of u's running process, or 0.
func unitPID(u string) int {
	raw, err := os.ReadFile(filepath.Join(unitsRun, u+".pid"))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil || pid <= 1 {
		return 0
	}
	cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !strings.Contains(string(cmd), "\x00"+childMarker+"\x00") {
		return 0
	}
	st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if i := strings.LastIndexByte(string(st), ')'); i > 0 && i+2 < len(st) && st[i+2] == 'Z' {
		return 0
	}
	return pid
}

// unitState is systemd's ActiveState: active, inactive or failed.
func unitState(u string) string {
	if u == "sshd" {
		return "active"
	}
	if unitPID(u) > 0 {
		return "active"
	}
	if _, err := os.Stat(filepath.Join(unitsRun, u+".failed")); err == nil {
		return "failed"
	}
	return "inactive"
}

// startUnit starts u and waits until it is up (its address bound) or has
// failed, like systemd for a Type=notify unit.
func startUnit(u string, stderr io.Writer) int {
	if u == "sshd" || unitState(u) == "active" {
		return 0
	}
	_ = os.MkdirAll(unitsRun, 0o755)
	_ = os.MkdirAll("/var/log/lab", 0o755)
	_ = os.Remove(filepath.Join(unitsRun, u+".failed"))
	args := []string{childMarker, "sleep", u}
	if addr := unitKinds[u]; addr != "" {
		cfg, err := loadBoxConfig()
		if err != nil {
			fmt.Fprintf(stderr, "Failed to start %s.service: %v\n", u, err)
			return 1
		}
		args = []string{childMarker, "serve", net.JoinHostPort(addr, strconv.Itoa(cfg.HTTPPort)), u}
	}
	logf, err := os.OpenFile("/var/log/lab/"+u+".log", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		fmt.Fprintf(stderr, "Failed to start %s.service: %v\n", u, err)
		return 1
	}
	defer logf.Close()
	cmd := exec.Command("/"+labBinary, args...)
	cmd.Args[0] = "lab-" + u
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Env = append(cleanEnv(), "HOME=/root")
	out, err := cmd.StdoutPipe()
	if err != nil {
		fmt.Fprintf(stderr, "Failed to start %s.service: %v\n", u, err)
		return 1
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(stderr, "Failed to start %s.service: %v\n", u, err)
		return 1
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(line) != "ready" {
		_ = cmd.Wait()
		_ = os.WriteFile(filepath.Join(unitsRun, u+".failed"), []byte(line), 0o644)
		fmt.Fprintf(stderr, "Job for %s.service failed because the control process exited with error code.\n"+
			"See \"systemctl status %s.service\" and \"journalctl -xe\" for details.\n", u, u)
		return 1
	}
	_ = os.WriteFile(filepath.Join(unitsRun, u+".pid"), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644)
	return 0
}

// stopUnit stops u and waits until its process is gone, so its address is
// free when it returns.
func stopUnit(u string) int {
	_ = os.Remove(filepath.Join(unitsRun, u+".failed"))
	if u == "sshd" {
		return 0
	}
	pid := unitPID(u)
	if pid == 0 {
		_ = os.Remove(filepath.Join(unitsRun, u+".pid"))
		return 0
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	for i := 0; i < 100 && unitPID(u) == pid; i++ {
		time.Sleep(50 * time.Millisecond)
	}
	if unitPID(u) == pid {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		for i := 0; i < 100 && unitPID(u) == pid; i++ {
			time.Sleep(20 * time.Millisecond)
		}
	}
	_ = os.Remove(filepath.Join(unitsRun, u+".pid"))
	return 0
}

// serve is an address unit's process: it holds addr and answers HTTP with
// "BOX fRELEASE FUNCTION".
func serve(addr, unit string) int {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Printf("error: %v\n", err)
		fmt.Fprintf(os.Stderr, "%s: %v\n", unit, err)
		return 1
	}
	fmt.Println("ready")
	os.Stdout.Close()
	function := "production"
	if unit == "nbhosting-dev-addr" {
		function = "development"
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cfg, _ := loadBoxConfig()
		rel := osReleaseID()
		fmt.Fprintf(w, "%s f%s %s\n", cfg.Name, rel, function)
	})
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sigs
		ln.Close()
		os.Exit(0)
	}()
	_ = http.Serve(ln, h)
	return 0
}

func osReleaseID() string {
	raw, _ := os.ReadFile("/etc/os-release")
	for _, l := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(l, "VERSION_ID="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return "?"
}

// sleepUnit is a service unit's process: it only runs.
func sleepUnit() int {
	fmt.Println("ready")
	os.Stdout.Close()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	<-sigs
	return 0
}
