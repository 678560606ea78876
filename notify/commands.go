package notify

import (
	"regexp"
	"strings"
)

// Values put into commands are checked against the Matrix grammars, so a
// crafted user ID or media ID cannot smuggle extra words into a command.
var (
	userIDRe = regexp.MustCompile(`^@[a-z0-9._=/+-]+:[A-Za-z0-9.:\[\]-]+$`)
	mxcRe    = regexp.MustCompile(`^mxc://[A-Za-z0-9.:\[\]-]+/[A-Za-z0-9_=.-]+$`)
)

// Commands renders the command-mode templates for d. A template that uses
// a placeholder d cannot fill safely is left out. A detection in report
// mode gets none: a dry run must not make Mjolnir act; nor does a review.
func Commands(templates []string, d Detection) []string {
	if d.WouldBlock || d.Review {
		// A review is for a human to decide, not Mjolnir.
		return nil
	}
	var out []string
	for _, t := range templates {
		c := t
		if strings.Contains(c, "{user}") {
			if !userIDRe.MatchString(d.User) {
				continue
			}
			c = strings.ReplaceAll(c, "{user}", d.User)
		}
		if strings.Contains(c, "{mxc}") {
			if !mxcRe.MatchString(d.MXC) {
				continue
			}
			c = strings.ReplaceAll(c, "{mxc}", d.MXC)
		}
		out = append(out, c)
	}
	return out
}
