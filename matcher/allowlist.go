package matcher

// Allowlists: banks whose exact entries override any match, so that a
// false positive a moderator dismissed never fires again.

// Allowed reports the first allowlist (a bank with BankConfig.Allow) that
// holds one of q's own exact digests. Only the file's own digests count,
// never those of files embedded in it: a listed file hidden inside an
// allowlisted one's container would otherwise pass. Nor does PDQ count:
// a picture that merely looks like an allowlisted one is another file.
func (l *Local) Allowed(q *Query) (bank string, ok bool) {
	for _, b := range l.state.Load().active {
		if !b.allow {
			continue
		}
		if q.Has&HasMD5 != 0 {
			if _, ok := b.md5[q.MD5]; ok {
				return b.name, true
			}
		}
		if q.Has&HasSHA1 != 0 {
			if _, ok := b.sha1[q.SHA1]; ok {
				return b.name, true
			}
		}
		if q.Has&HasSHA256 != 0 {
			if _, ok := b.sha256[q.SHA256]; ok {
				return b.name, true
			}
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
