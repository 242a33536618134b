package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func newGenManCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:    "gen-man DIR",
		Short:  "Write the man page, boxswap.1, into DIR",
		Long:   "gen-man writes the man page generated from the commands' own help into DIR/boxswap.1 (docs/man in the repository, checked current by a test).",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runGenMan(cmd.Context(), cmd.Root(), args[0], g)
		},
	}
}

func runGenMan(_ context.Context, root *cobra.Command, dir string, g *globalOptions) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("gen-man: %w", err)
	}
	file := filepath.Join(dir, "boxswap.1")
	if err := os.WriteFile(file, []byte(manPage(root)), 0o644); err != nil {
		return fmt.Errorf("gen-man: %w", err)
	}
	fmt.Fprintf(g.stdout, "wrote %s\n", file)
	return nil
}

// manPage renders the command tree as one roff man page (section 1): the
// root's help, its global options, each verb with its options and
// examples, and the exit codes. It has no date, so that it changes only
// when the help does. Written here rather than with cobra/doc, which
// would add go-md2man to the module's dependencies.
func manPage(root *cobra.Command) string {
	var b strings.Builder
	long, _, _ := strings.Cut(root.Long, "EXIT STATUS")
	b.WriteString(".TH BOXSWAP 1 \"\" \"boxswap\" \"boxswap manual\"\n")
	b.WriteString(".SH NAME\n")
	fmt.Fprintf(&b, "boxswap \\- %s\n", roff(lowerFirst(root.Short)))
	b.WriteString(".SH SYNOPSIS\n")
	fmt.Fprintf(&b, ".B boxswap\n%s\n", roff(strings.TrimPrefix(root.Use, "boxswap ")))
	b.WriteString(".SH DESCRIPTION\n")
	verbatim(&b, strings.TrimSpace(long))
	b.WriteString(".SH GLOBAL OPTIONS\n")
	options(&b, root.PersistentFlags())
	b.WriteString(".SH COMMANDS\n")
	cmds := root.Commands()
	sort.Slice(cmds, func(i, j int) bool { return cmds[i].Name() < cmds[j].Name() })
	for _, c := range cmds {
		if c.Hidden || c.Name() == "help" || !c.IsAvailableCommand() {
			continue
		}
		fmt.Fprintf(&b, ".SS \"%s\"\n", roff("boxswap "+c.Use))
		fmt.Fprintf(&b, "%s.\n", roff(c.Short))
		if c.Long != "" {
			verbatim(&b, c.Long)
		}
		if c.HasAvailableLocalFlags() {
			b.WriteString(".PP\nOptions:\n")
			options(&b, c.LocalNonPersistentFlags())
		}
		if c.Example != "" {
			b.WriteString(".PP\nExamples:\n")
			verbatim(&b, c.Example)
		}
	}
	b.WriteString(".SH EXIT STATUS\n")
	_, status, _ := strings.Cut(exitStatusHelp, "\n")
	verbatim(&b, status)
	b.WriteString(".SH ENVIRONMENT\n.TP\n.B NO_COLOR\nWhen set, next, resume and rollback print plain lines even on a terminal, as with \\-\\-plain.\n")
	b.WriteString(".TP\n.B BOXSWAP_ETCD_CA, BOXSWAP_ETCD_CERT, BOXSWAP_ETCD_KEY, BOXSWAP_ETCD_USER, BOXSWAP_ETCD_PASSWORD_FILE, BOXSWAP_ETCD_LEASE\n" +
		"For a state on etcd: what the \\-\\-etcd\\-* flags give, when they are not given (boxes.yaml's state section comes last).\n")
	b.WriteString(".TP\n.B BOXSWAP_ETCD_PASSWORD\nThe etcd password (never a flag: ps shows flags); else the password file's first line.\n")
	b.WriteString(".SH FILES\n.TP\n.I boxes.yaml\nThe pair, its functions, the app, the data and the upgrade; see docs/boxes-yaml.md.\n")
	b.WriteString(".TP\n.I boxswap.db\nThe state, beside boxes.yaml unless \\-\\-state says otherwise; \\fIboxswap.db.lock\\fR is the operator lock and \\fIboxswap.db.logs/\\fR holds each attempt's full output.\n")
	b.WriteString(".SH SEE ALSO\ndocs/operator-guide.md, docs/troubleshooting.md, docs/boxes-yaml.md\n")
	return b.String()
}

func options(b *strings.Builder, fs *pflag.FlagSet) {
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Hidden {
			return
		}
		name, usage := pflag.UnquoteUsage(f)
		b.WriteString(".TP\n")
		if f.Shorthand != "" {
			fmt.Fprintf(b, "\\fB\\-%s\\fR, ", f.Shorthand)
		}
		fmt.Fprintf(b, "\\fB\\-\\-%s\\fR", f.Name)
		if name != "" {
			fmt.Fprintf(b, " \\fI%s\\fR", roff(name))
		}
		b.WriteString("\n")
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "[]" {
			usage += " (default " + f.DefValue + ")"
		}
		fmt.Fprintf(b, "%s\n", roff(usage))
	})
}

// verbatim keeps the help's own layout (its lists and examples are laid
// out by hand) in a no-fill block.
func verbatim(b *strings.Builder, text string) {
	b.WriteString(".PP\n.nf\n")
	for _, l := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		fmt.Fprintf(b, "%s\n", roff(l))
	}
	b.WriteString(".fi\n")
}

// roff escapes text for a roff line: backslashes, a leading dot or quote
// (which would start a request), and hyphens, which roff may otherwise
// render as typographic dashes.
func roff(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}
