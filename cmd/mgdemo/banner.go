package main

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/mediaguard/mediaguard/internal/e2e"
)

// banner prints where everything is and the lines to paste.
func (w *world) banner() {
	var b strings.Builder
	row := func(k, v string) { fmt.Fprintf(&b, "  %-20s %s\n", k, v) }
	fmt.Fprintf(&b, "\n=== mediaguard demo: everything is in %s (removed when it stops)\n\n", w.dir)
	row("through mediaguard", w.front+"   the homeserver behind mediaguard: point a Matrix client here")
	row("homeserver", w.hs.URL+"   Dendrite "+e2e.DendriteVersion+" itself, bypassing mediaguard")
	row("lookup API", w.lookup+"   what Mjolnir's HMA plugin asks; key in $LOOKUP_KEY below")
	row("management room", w.roomAlias+" ("+w.room+"), owned by "+w.mod.ID)
	var accounts []string
	for i, a := range userAccounts {
		accounts = append(accounts, w.users[i].ID+" / "+a.password)
	}
	row("users / passwords", strings.Join(accounts, ", "))
	row("", w.mod.ID+" / "+modAccount.password+" (moderator, in the management room)")
	row("", w.bot.ID+" / "+botAccount.password+" (mediaguard's bot: posts the notices)")
	row("bank", w.bankPath+"   lists "+filepath.Base(w.in.listed)+"; edits are live within 2 s")
	row("logs", w.caddyLog+", "+w.hs.LogPath+", audit "+filepath.Join(w.dir, "audit.log"))

	b.WriteString("\n=== Try it: in another terminal, paste the export line, then any of the lines below\n\n")
	b.WriteString(w.exportLine() + "\n")
	for _, c := range w.calls() {
		b.WriteString("\n# " + c.title + "\n" + c.render() + "\n")
	}
	fmt.Fprint(w.o.Out, b.String())
}

// downloadPath is where the download line writes what it fetched.
func (w *world) downloadPath() string { return filepath.Join(w.dir, "downloaded.png") }
