package doctor

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/mediaguard/mediaguard/homeserver"
	"github.com/mediaguard/mediaguard/learn"
	"github.com/mediaguard/mediaguard/matcher"
)

// checkLearn checks learn_quarantines: the learned bank's file is one
// mediaguard wrote (or will create), and the homeserver serves the
// quarantine feed to the admin token from the saved position. It reads
// one page of the feed and writes nothing.
func checkLearn(ctx context.Context, cfg Config) []Result {
	if cfg.LearnQuarantines == "" || cfg.SynapseAdmin == nil {
		return nil
	}
	r := Result{Name: "learn_quarantines " + cfg.LearnQuarantines}
	var path string
	for _, b := range cfg.Local.Banks {
		if b.Name == cfg.LearnQuarantines {
			path = b.Path
		}
	}
	if path == "" {
		r.Status, r.Detail = Fail, "no bank "+cfg.LearnQuarantines+" is declared: add `bank "+cfg.LearnQuarantines+" PATH`"
		return []Result{r}
	}
	bankNote := "its bank file does not exist yet: created at the first start"
	if _, err := os.Stat(path); err == nil {
		b, err := matcher.OpenOwnedBank(matcher.OwnedBankConfig{Path: path})
		if err != nil {
			r.Status, r.Detail = Fail, err.Error()+": a start refuses it"
			return []Result{r}
		}
		bankNote = fmt.Sprintf("%d media learned in %s", b.Len(), path)
	}
	from, hs, pending, err := learn.Position(path)
	if err != nil {
		r.Status, r.Detail = Fail, err.Error()
		return []Result{r}
	}
	if hs != strings.TrimRight(cfg.SynapseAdmin.Homeserver, "/") {
		from = 0 // a start reads another homeserver's feed from its start
	}
	sa := *cfg.SynapseAdmin
	sa.Attempts, sa.Timeout, sa.HTTPClient = 1, cfg.Timeout, cfg.HTTPClient
	admin, err := homeserver.NewAdmin(sa)
	if err != nil {
		r.Status, r.Detail = Fail, err.Error()
		return []Result{r}
	}
	var page homeserver.QuarantinePage
	r.Took = timed(func() {
		c, cancel := context.WithTimeout(ctx, cfg.Timeout)
		defer cancel()
		page, err = admin.QuarantineChanges(c, from)
	})
	var se *homeserver.StatusError
	switch {
	case err == nil:
		more := ""
		if len(page.Changes) > 0 {
			more = fmt.Sprintf("; %d change%s to apply at the next poll", len(page.Changes), plural(len(page.Changes)))
		}
		if pending > 0 {
			more += fmt.Sprintf("; %d media waiting for another fetch", pending)
		}
		r.Detail = fmt.Sprintf("the quarantine feed answers from position %d%s; %s", from, more, bankNote)
	case homeserver.FeedMissing(err):
		r.Status = Fail
		r.Detail = fmt.Sprintf("%s has no quarantine feed (GET /_synapse/admin/v1/media/quarantine_changes answered 404): learn_quarantines needs Synapse 1.152 or later (Dendrite has none); nothing will be learned", shownURL(sa.Homeserver))
	case homeserver.FeedPositionInvalid(err):
		r.Status = Warn
		r.Detail = fmt.Sprintf("the homeserver refuses the saved feed position %d as beyond its stream (its database was restored or replaced?): the next start reads the feed from its start; %s", from, bankNote)
	case errors.As(err, &se) && se.Status == http.StatusForbidden:
		r.Status, r.Detail = Fail, fmt.Sprintf("the synapse_admin token may not read the quarantine feed (%d %s): it must be a server admin's", se.Status, se.Errcode)
	default:
		r.Status, r.Detail = Fail, "the quarantine feed does not answer: "+err.Error()
	}
	return []Result{r}
}
