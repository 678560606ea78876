package mediaproxy

import "context"

// Ledger is the durable memory behind Memory (the media ledger): it
// outlives the process and may be shared by several proxies. Writing to it
// is an Observer's business (every Decision carries its Query); the proxy
// only asks it, on a Memory miss, about the original of a media.
type Ledger interface {
	// Recall returns the verdict on media k as of the banks now,
	// re-derived from its stored digests (never by hashing) when the
	// banks changed since it was reached. ok is false when the media is
	// unknown or its verdict cannot be trusted now (an undecodable image
	// a newer decoder should see, a matcher that cannot answer): the
	// proxy then judges the bytes as it would without a ledger.
	Recall(ctx context.Context, k MediaKey) (blocked bool, reason string, ok bool)
}

// recall returns what is known of a rendition: from Memory, else, for an
// original, from the ledger, whose answer Memory then keeps (a known
// download must not pay a ledger read each time).
func (p *Proxy) recall(ctx context.Context, r Rendition) (Judgement, bool) {
	if j, ok := p.mem.Get(r); ok {
		return j, true
	}
	if p.cfg.Ledger == nil || r.Thumb != "" || r.Key.Server == "" {
		return Judgement{}, false
	}
	gen := p.mem.Generation()
	blocked, reason, ok := p.cfg.Ledger.Recall(ctx, r.Key)
	if !ok {
		return Judgement{}, false
	}
	if blocked {
		p.mem.Block(r.Key, reason)
		return Judgement{Blocked: true, Reason: reason}, true
	}
	p.mem.CleanAsOf(r, gen)
	return Judgement{Gen: gen}, true
}
