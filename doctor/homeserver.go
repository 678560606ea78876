package doctor

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/mediaguard/mediaguard/homeserver"
	"github.com/mediaguard/mediaguard/notify"
)

// checkHomeserver checks what mediaguard asks of the homeserver: each
// homeserver URL the config names (reverse_proxy upstreams included)
// answers the client API; the server
// name is the configured one; the bot's token is valid and the bot is in
// the management room; the Synapse admin token is an admin's. Results come
// in that order.
func checkHomeserver(ctx context.Context, cfg Config) []Result {
	type use struct{ url, role string }
	var uses []use
	if cfg.Homeserver != "" {
		uses = append(uses, use{cfg.Homeserver, "homeserver"})
	}
	for _, u := range cfg.Upstreams {
		uses = append(uses, use{u, "reverse_proxy"})
	}
	if cfg.Matrix != nil {
		uses = append(uses, use{cfg.Matrix.Homeserver, "notify matrix"})
	}
	if cfg.SynapseAdmin != nil {
		uses = append(uses, use{cfg.SynapseAdmin.Homeserver, "synapse_admin"})
	}
	var urls []string
	roles := map[string][]string{}
	for _, u := range uses {
		k := strings.TrimRight(u.url, "/")
		if _, seen := roles[k]; !seen {
			urls = append(urls, k)
		}
		roles[k] = append(roles[k], u.role)
	}

	var out []Result
	var answering []string
	for _, u := range urls {
		r := Result{Name: "homeserver " + shownURL(u)}
		var versions []string
		var err error
		r.Took = timed(func() {
			c, cancel := context.WithTimeout(ctx, cfg.Timeout)
			defer cancel()
			versions, err = homeserver.Versions(c, cfg.HTTPClient, u)
		})
		if err != nil {
			r.Status, r.Detail = Fail, fmt.Sprintf("does not answer the client API: %v (used by %s)", err, strings.Join(roles[u], ", "))
		} else {
			answering = append(answering, u)
			r.Detail = fmt.Sprintf("answers, Matrix %s (used by %s)", latest(versions), strings.Join(roles[u], ", "))
		}
		out = append(out, r)
	}

	var bot, room, admin []Result
	var botUser, adminUser string
	if cfg.Matrix != nil {
		bot, room, botUser = checkBot(ctx, cfg)
	}
	if cfg.SynapseAdmin != nil {
		admin, adminUser = checkSynapseAdmin(ctx, cfg, urls)
	}
	out = append(out, checkServerName(ctx, cfg, answering, botUser, adminUser)...)
	out = append(out, bot...)
	out = append(out, room...)
	return append(out, admin...)
}

// checkServerName finds the homeserver's server name and compares it with
// the configured one. The name comes from GET /_matrix/key/v2/server, the
// server's own statement of it
// (https://spec.matrix.org/v1.11/server-server-api/#get_matrixkeyv2server);
// that endpoint belongs to the federation API, which may listen elsewhere
// or be off (Dendrite with federation disabled answers 404), so the
// fallback is the server part of the bot's (or the admin's) user ID from
// whoami: a token is only valid at its user's own homeserver, and a user
// ID's domain is that server's name
// (https://spec.matrix.org/v1.11/appendices/#user-identifiers).
func checkServerName(ctx context.Context, cfg Config, answering []string, users ...string) []Result {
	if len(answering) == 0 {
		return nil
	}
	r := Result{Name: "server_name"}
	var name, from string
	var keyErr error
	r.Took = timed(func() {
		c, cancel := context.WithTimeout(ctx, cfg.Timeout)
		defer cancel()
		if name, keyErr = homeserver.KeyServerName(c, cfg.HTTPClient, answering[0]); keyErr == nil {
			from = "its /_matrix/key/v2/server"
		}
	})
	if name == "" {
		for i, u := range users {
			if n := homeserver.ServerNameOf(u); n != "" {
				name, from = n, []string{"the bot's", "the admin's"}[i]+" user ID "+u
				break
			}
		}
	}
	switch {
	case name == "" && cfg.ServerName == "":
		return nil // nothing configured to compare, nothing learned
	case name == "":
		r.Status = Warn
		r.Detail = fmt.Sprintf("cannot tell whether %s is right: %v, and no token in the config gives a user ID", cfg.ServerName, keyErr)
	case cfg.ServerName == "":
		r.Detail = fmt.Sprintf("%s (from %s); not configured: learned from the first upload", name, from)
	case cfg.ServerName == name:
		r.Detail = fmt.Sprintf("%s (from %s), as configured", name, from)
	default:
		r.Status = Fail
		r.Detail = fmt.Sprintf("the homeserver is %s (from %s) but server_name is %s: federation media of this server would not be recognised; fix server_name", name, from, cfg.ServerName)
	}
	return []Result{r}
}

// checkBot checks the notifier's token (whoami) and whether the bot is in
// the management room (notify.Matrix.CheckRoom, which joins nothing).
func checkBot(ctx context.Context, cfg Config) (bot, room []Result, user string) {
	m := *cfg.Matrix
	r := Result{Name: "notify bot"}
	// The notifier's own validation first, as a start would meet it.
	m.HTTPClient, m.Logger, m.OnDelivered = cfg.HTTPClient, nil, nil
	n, err := notify.NewMatrix(m)
	if err != nil {
		r.Status, r.Detail = Fail, err.Error()
		return []Result{r}, nil, ""
	}
	defer n.Close()
	r.Took = timed(func() {
		c, cancel := context.WithTimeout(ctx, cfg.Timeout)
		defer cancel()
		user, err = homeserver.UserOf(c, cfg.HTTPClient, m.Homeserver, m.AccessToken)
	})
	if err != nil {
		r.Status, r.Detail = Fail, tokenProblem(err)
		return []Result{r}, nil, ""
	}
	r.Detail = "token valid: " + user
	bot = []Result{r}

	r = Result{Name: "notify room"}
	var rc notify.RoomCheck
	r.Took = timed(func() {
		c, cancel := context.WithTimeout(ctx, cfg.Timeout)
		defer cancel()
		rc, err = n.CheckRoom(c)
	})
	where := rc.RoomID
	if rc.RoomID != m.Room {
		where = m.Room + " (" + rc.RoomID + ")"
	}
	switch {
	case err != nil:
		r.Status, r.Detail = Fail, err.Error()
	case rc.Joined:
		r.Detail = user + " is in " + where
	default:
		r.Status = Warn
		r.Detail = user + " is not in " + where + " yet: mediaguard joins it at start, which needs an invite (or a public room); until then notices wait"
	}
	return bot, []Result{r}, user
}

// checkSynapseAdmin checks that the admin token is a server admin's: its
// user (whoami) asks Synapse's admin API whether that user is an admin,
// which only an admin may ask. A homeserver without the API (Dendrite) is
// a warning: quarantine and suspend are not possible there, which is a
// deployment choice rather than a broken one.
func checkSynapseAdmin(ctx context.Context, cfg Config, urls []string) ([]Result, string) {
	sa := *cfg.SynapseAdmin
	r := Result{Name: "synapse_admin"}
	// One attempt: the check reports, the quarantine path retries.
	sa.Attempts, sa.Timeout, sa.HTTPClient = 1, cfg.Timeout, cfg.HTTPClient
	admin, err := homeserver.NewAdmin(sa)
	if err != nil {
		r.Status, r.Detail = Fail, err.Error()
		return []Result{r}, ""
	}
	var user string
	var isAdmin bool
	r.Took = timed(func() {
		c, cancel := context.WithTimeout(ctx, cfg.Timeout)
		defer cancel()
		// The admin API may listen apart from the client API; whoami
		// is asked there first, then at the other homeserver URLs.
		candidates := []string{strings.TrimRight(sa.Homeserver, "/")}
		for _, u := range urls {
			if !slices.Contains(candidates, u) {
				candidates = append(candidates, u)
			}
		}
		for _, u := range candidates {
			if user, err = homeserver.UserOf(c, cfg.HTTPClient, u, sa.AccessToken); err == nil || !isStatus(err, http.StatusNotFound) {
				break
			}
		}
		if err == nil {
			isAdmin, err = admin.IsAdmin(c, user)
		}
	})
	var se *homeserver.StatusError
	switch {
	case user == "":
		r.Status, r.Detail = Fail, tokenProblem(err)
	case err == nil && isAdmin:
		r.Detail = user + " is a server admin"
	case err == nil:
		r.Status, r.Detail = Fail, user+" is not a server admin: quarantine and suspend would be refused"
	case errors.As(err, &se) && se.Status == http.StatusForbidden:
		r.Status, r.Detail = Fail, fmt.Sprintf("%s is not a server admin (%d %s): quarantine and suspend would be refused", user, se.Status, se.Errcode)
	case errors.As(err, &se) && se.Status == http.StatusNotFound:
		r.Status = Warn
		r.Detail = fmt.Sprintf("not applicable: %s has no Synapse admin API (%d %s; Dendrite, for one, has none): quarantine and suspend cannot work there; point synapse_admin at Synapse or remove it",
			shownURL(sa.Homeserver), se.Status, se.Errcode)
	default:
		r.Status, r.Detail = Fail, err.Error()
	}
	return []Result{r}, user
}

// tokenProblem phrases a failed whoami: a token the homeserver rejects,
// or a homeserver that could not be asked.
func tokenProblem(err error) string {
	var se *homeserver.StatusError
	if errors.As(err, &se) && se.Status == http.StatusUnauthorized {
		return fmt.Sprintf("the access token does not work: the homeserver does not know it (%d %s)", se.Status, se.Errcode)
	}
	return "cannot check the access token: " + err.Error()
}

func isStatus(err error, status int) bool {
	var se *homeserver.StatusError
	return errors.As(err, &se) && se.Status == status
}

// latest is the newest of the spec versions a homeserver lists ("v1.11"
// after "v1.2", any "vX.Y" after the old "r0.x.y").
func latest(versions []string) string {
	best, bestMajor, bestMinor := "", -1, -1
	for _, v := range versions {
		var major, minor int
		if _, err := fmt.Sscanf(v, "v%d.%d", &major, &minor); err != nil {
			if bestMajor < 0 {
				best = v // listed oldest first
			}
			continue
		}
		if major > bestMajor || major == bestMajor && minor > bestMinor {
			best, bestMajor, bestMinor = v, major, minor
		}
	}
	return best
}
