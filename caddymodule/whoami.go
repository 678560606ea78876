package caddymodule

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
	"go.uber.org/zap"

	"github.com/mediaguard/mediaguard/service"
)

// Where the requester of a block is resolved (GET /account/whoami with the
// request's own token), in order of preference: the first source the
// configuration gives is used. Each is the client API of the homeserver
// behind the proxy, more or less surely:
//
//   - homeserver: the operator said so (`homeserver off` turns whoami off);
//   - synapse_admin: its homeserver must be this one, since it quarantines
//     the media this proxy stores, and Synapse serves the client API on
//     the listener that serves its admin API;
//   - reverse_proxy: the one upstream of the reverse_proxy handlers of the
//     site holding the mediaguard handler (see guardedUpstreams), where
//     the request and its token go anyway; not used when there are
//     several (Synapse workers: a media worker may not serve whoami) or
//     one is dynamic, a unix socket or a placeholder;
//   - notify matrix: the bot's homeserver, usually this one but not
//     necessarily (a bot account on another server), which is why it
//     comes last: whoami hands it each blocked requester's token.
const (
	whoamiHomeserver   = "homeserver"
	whoamiSynapseAdmin = "synapse_admin"
	whoamiUpstream     = "reverse_proxy"
	whoamiNotify       = "notify matrix"
	whoamiOff          = "off"
)

// whoamiChoice is where requesters are resolved: URL from Source, or
// nowhere (URL "") for the reason in Note.
type whoamiChoice struct {
	URL, Source, Note string
}

// whoamiState is the app's choice, made once: in Provision when the
// configuration alone decides it, else at Start (or the first request),
// once the HTTP app's handlers are provisioned and their reverse_proxy
// upstreams can be read.
type whoamiState struct {
	once    sync.Once
	decided bool
	notify  string // notify matrix's homeserver, the last resort
	choice  whoamiChoice
}

// planWhoami makes what choice Provision can: `homeserver off`, an
// explicit homeserver, or synapse_admin's. Otherwise the service resolves
// requesters from the homeserver resolveWhoami finds later.
func (a *App) planWhoami(cfg *service.Config) {
	w := new(whoamiState)
	a.whoami = w
	w.decided = true
	switch {
	case a.Homeserver == whoamiOff:
		w.choice = whoamiChoice{Source: whoamiOff, Note: "homeserver off"}
	case cfg.Homeserver != "":
		w.choice = whoamiChoice{URL: cfg.Homeserver, Source: whoamiHomeserver}
	case cfg.SynapseAdmin != nil && cfg.SynapseAdmin.Homeserver != "":
		cfg.Homeserver = cfg.SynapseAdmin.Homeserver
		w.choice = whoamiChoice{URL: cfg.Homeserver, Source: whoamiSynapseAdmin}
	default:
		w.decided = false
		cfg.HomeserverLater = true
		if cfg.Matrix != nil {
			w.notify = cfg.Matrix.Homeserver
		}
	}
}

// resolveWhoami finishes the choice (once) and logs it. Start calls it,
// and so does every request through the handler, in case the HTTP app
// started serving before this app's Start.
func (a *App) resolveWhoami() {
	w := a.whoami
	if w == nil {
		return
	}
	w.once.Do(func() {
		handlers := 1
		if !w.decided {
			var ups upstreamSet
			ups, handlers = a.guardedUpstreams()
			w.choice = chooseWhoami(ups, w.notify)
			if w.choice.URL != "" {
				if err := a.svc.SetHomeserver(w.choice.URL); err != nil {
					w.choice = whoamiChoice{Note: err.Error()}
				}
			}
		}
		log := a.log.Named("whoami")
		switch c := w.choice; {
		case c.URL != "":
			fields := []zap.Field{zap.String("homeserver", shownURL(c.URL)), zap.String("source", c.Source)}
			if c.Note != "" {
				fields = append(fields, zap.String("not_reverse_proxy_because", c.Note))
			}
			log.Info("requesters of blocked media are resolved with whoami", fields...)
		case c.Source == whoamiOff:
			log.Info("requesters are not resolved: homeserver off")
		case handlers > 0:
			log.Warn("requesters are not resolved (notices name them \"unknown\"): set homeserver URL", zap.String("reason", c.Note))
		}
	})
}

// whoamiChosen returns the choice (made if it was not yet), for tests.
func (a *App) whoamiChosen() whoamiChoice {
	a.resolveWhoami()
	if a.whoami == nil {
		return whoamiChoice{}
	}
	return a.whoami.choice
}

// upstreamSet is what the reverse_proxy handlers of the sites holding a
// mediaguard handler proxy to.
type upstreamSet struct {
	// urls are the distinct upstreams as base URLs, sorted.
	urls []string
	// unknowable names an upstream that cannot be a whoami URL (dynamic,
	// a unix socket, a placeholder), "" if none.
	unknowable string
}

// chooseWhoami picks the sites' reverse_proxy upstream when there is
// exactly one, else notify matrix's homeserver.
func chooseWhoami(ups upstreamSet, notify string) whoamiChoice {
	var why string
	switch {
	case ups.unknowable != "":
		why = "the site of the mediaguard handler proxies to an upstream whoami cannot be sent to (" + ups.unknowable + ")"
	case len(ups.urls) == 1:
		return whoamiChoice{URL: ups.urls[0], Source: whoamiUpstream}
	case len(ups.urls) > 1:
		why = "the site of the mediaguard handler proxies to " + strconv.Itoa(len(ups.urls)) + " upstreams, not one (" + strings.Join(ups.urls, ", ") + ")"
	default:
		why = "no homeserver, synapse_admin or notify matrix option, and no reverse_proxy in the site of the mediaguard handler"
	}
	if notify != "" {
		return whoamiChoice{URL: notify, Source: whoamiNotify, Note: why}
	}
	return whoamiChoice{Note: why}
}

// guardedUpstreams reads the provisioned HTTP app: the upstreams of the
// reverse_proxy handlers of every site that holds a mediaguard handler,
// and how many mediaguard handlers there are. A site is a top-level route
// of a server with everything under it: what the Caddyfile adapter makes
// of one site block (its host matcher, then a subroute of its
// directives), so `handle`, `route` and `handle_path` blocks in it count,
// and other sites sharing the listener (another domain on :443) do not.
// Named routes and handle_errors are not read.
func (a *App) guardedUpstreams() (upstreamSet, int) {
	v, err := a.ctx.AppIfConfigured("http")
	if err != nil {
		return upstreamSet{}, 0
	}
	h, ok := v.(*caddyhttp.App)
	if !ok {
		return upstreamSet{}, 0
	}
	var all upstreamSet
	handlers := 0
	for _, srv := range h.Servers {
		for _, route := range srv.Routes {
			site := siteWalk{repl: caddy.NewReplacer()}
			site.handlers(route.Handlers)
			if site.guards == 0 {
				continue
			}
			handlers += site.guards
			for _, u := range site.set.urls {
				if !slices.Contains(all.urls, u) {
					all.urls = append(all.urls, u)
				}
			}
			if site.set.unknowable != "" {
				all.unknowable = site.set.unknowable
			}
		}
	}
	slices.Sort(all.urls)
	return all, handlers
}

// siteWalk collects one site's mediaguard handlers and reverse_proxy
// upstreams.
type siteWalk struct {
	repl   replacer
	set    upstreamSet
	guards int
}

func (w *siteWalk) handlers(hs []caddyhttp.MiddlewareHandler) {
	for _, h := range hs {
		switch x := h.(type) {
		case *Handler:
			w.guards++
		case *caddyhttp.Subroute:
			w.routes(x.Routes)
			if x.Errors != nil {
				w.routes(x.Errors.Routes)
			}
		case *reverseproxy.Handler:
			w.proxy(x)
		}
	}
}

func (w *siteWalk) routes(list caddyhttp.RouteList) {
	for _, r := range list {
		w.handlers(r.Handlers)
	}
}

func (w *siteWalk) proxy(h *reverseproxy.Handler) {
	if h.DynamicUpstreams != nil {
		w.set.unknowable = "dynamic upstreams"
	}
	scheme := "http://"
	if t, ok := h.Transport.(reverseproxy.TLSTransport); ok && t.TLSEnabled() {
		scheme = "https://"
	}
	for _, u := range h.Upstreams {
		dial := w.repl.ReplaceAll(u.Dial, "")
		if dial == "" || strings.ContainsAny(dial, "/{}") {
			w.set.unknowable = u.Dial
			continue
		}
		if s := scheme + dial; !slices.Contains(w.set.urls, s) {
			w.set.urls = append(w.set.urls, s)
		}
	}
}

// shownURL is u without credentials, for logs.
func shownURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparsable URL)"
	}
	p.User = nil
	return p.String()
}
