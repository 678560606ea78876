package matcher

// Allowlists: banks whose exact entries override any match, so that a
// false positive a moderator dismissed never fires again.

// Allowed reports the first allowlist (a bank with BankConfig.Allow) that
// holds q's own SHA-256. Only SHA-256 counts: MD5 and SHA-1 collisions can
// be made at will (chosen-prefix), so an attacker could have a harmless
// file dismissed and then upload a listed picture sharing its MD5 or SHA-1
// digest; an allowlist's md5 and sha1 lines are therefore ignored. Only
// the file's own digest counts, never those of files embedded in it: a
// listed file hidden inside an allowlisted one's container would
// otherwise pass. Nor does PDQ count: a picture that merely looks like an
// allowlisted one is another file.
func (l *Local) Allowed(q *Query) (bank string, ok bool) {
	if q.Has&HasSHA256 == 0 {
		return "", false
	}
	for _, b := range l.state.Load().active {
		if !b.allow {
			continue
		}
		if _, ok := b.sha256[q.SHA256]; ok {
			return b.name, true
		}
	}
	return "", false
}

// allowedVerdict is the clean verdict of allowlisted media.
func allowedVerdict(bank string) Verdict {
	note := "allowlisted by " + bank
	return Verdict{Allowlisted: bank, Reason: note, Notes: []string{note}}
}

// allowedBy asks m for an allowlist holding q when m keeps allowlists
// (a Local does).
func allowedBy(m Matcher, q *Query) (string, bool) {
	a, ok := m.(interface {
		Allowed(*Query) (string, bool)
	})
	if !ok {
		return "", false
	}
	return a.Allowed(q)
}
