package matcher

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/mediaguard/mediaguard/hashing/pdq"
	"github.com/mediaguard/mediaguard/matcher/pdqindex"
)

// Bank is one loaded hash list. It is immutable once built, so any number of
// lookups may read it while a reload builds its successor.
type Bank struct {
	name, path string
	source     string // "local:NAME", built once rather than per match
	loadedAt   time.Time

	md5, videoMD5 map[[16]byte]entryRef
	sha1          map[[20]byte]entryRef
	sha256        map[[32]byte]entryRef
	pdq           *pdqindex.Index
	pdqRefs       []entryRef // parallel to pdq's ids; nil when no PDQ label
	labels        []byte

	// report, category and defLabel come from the bank's configuration
	// (BankConfig.Mode, Category and Label), set before it is published.
	report   bool
	allow    bool
	category string
	defLabel string

	counts Counts
	// sums digest the entries of each kind, for Local.Fingerprint and
	// DiffBanks.
	sums     [kVideoMD5 + 1]contentSum
	problems []Problem
	nProbs   int
}

// Name is the bank's name.
func (b *Bank) Name() string { return b.name }

// Path is the file or directory the bank was loaded from.
func (b *Bank) Path() string { return b.path }

// LoadedAt is when the bank was built.
func (b *Bank) LoadedAt() time.Time { return b.loadedAt }

// Counts is the number of distinct entries per hash type.
func (b *Bank) Counts() Counts { return b.counts }

// Problems returns the rejected entries of the load (at most the first 100;
// ProblemCount has them all).
func (b *Bank) Problems() []Problem { return slices.Clone(b.problems) }

// ProblemCount is how many entries the load rejected.
func (b *Bank) ProblemCount() int { return b.nProbs }

func (b *Bank) label(r entryRef) string {
	if r.n == 0 || r == deletedRef {
		return b.defLabel
	}
	return string(b.labels[r.off : r.off+r.n])
}

func (b *Bank) pdqLabel(id int32) string {
	if b.pdqRefs == nil {
		return b.defLabel
	}
	return b.label(b.pdqRefs[id])
}

// configure sets what the bank's configuration says of it beyond its
// entries; it runs before the bank is published.
func (b *Bank) configure(cfg BankConfig) {
	b.report = cfg.Mode == ModeReport
	b.allow = cfg.Allow
	b.category = cfg.Category
	b.defLabel = cfg.Label
}

// ValidBankName reports whether name is a bank name as HMA spells them:
// [A-Z_][A-Z0-9_]*. Sharing HMA's rule lets a bank move between a local
// file and HMA without renaming it in notices and audit records. It is the
// one bank-name rule: local banks, the banks an HMA backend is asked about
// and the bank names in HMA's answers are all checked with it.
func ValidBankName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'A' && c <= 'Z' || c == '_' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// BankConfig configures one local bank.
type BankConfig struct {
	// Name is the bank's name, [A-Z_][A-Z0-9_]* as in HMA. It appears in
	// verdicts, notices and audit records.
	Name string `json:"name"`
	// Path is a bank file (text, CSV or NCMEC XML, detected from the
	// content) or a directory of them read as one bank.
	Path string `json:"path"`
	// Disabled banks are neither loaded nor consulted, but are listed by
	// Status so that an operator sees they exist.
	Disabled bool `json:"disabled,omitempty"`
	// Mode is ModeEnforce ("" means enforce) or ModeReport: a bank in
	// report mode never blocks; what it matches is reported as "would
	// have blocked" and passes.
	Mode string `json:"mode,omitempty"`
	// Category is the kind of harm the bank lists, one of Categories
	// (csam, ncii, terror, spam), or "". It travels into verdicts,
	// notices, audit records and lookup answers.
	Category string `json:"category,omitempty"`
	// Label is given to the bank's entries that carry no label of their
	// own.
	Label string `json:"label,omitempty"`
	// Allow makes the bank an allowlist: it never matches, and media
	// whose own exact digest (md5, sha1, sha256) it holds passes whatever
	// any bank or backend matched (see Local.Allowed). Its PDQ entries
	// are ignored: an allowlist is of files, not of pictures that look
	// alike.
	Allow bool `json:"allow,omitempty"`
}

// LocalConfig configures a Local matcher.
type LocalConfig struct {
	// Banks are consulted in this order; it decides which bank is named
	// when several hold the same exact hash.
	Banks []BankConfig `json:"banks"`
	// PDQThreshold is the largest PDQ distance that matches. 0 means
	// DefaultPDQThreshold; above MaxPDQThreshold is an error.
	PDQThreshold int `json:"pdq_threshold,omitempty"`
	// MinPDQQuality is the PDQ quality below which a hash is not matched.
	// It is a pointer because 0 ("match every quality") is a legitimate
	// choice: nil means DefaultMinPDQQuality.
	MinPDQQuality *int `json:"min_pdq_quality,omitempty"`
	// Dihedral matches all 8 rotations/flips of an image when the query
	// carries them, catching re-uploads that were merely turned around.
	Dihedral bool `json:"dihedral,omitempty"`
	// ReviewThreshold, when above PDQThreshold (at most MaxPDQThreshold),
	// opens the review band: a PDQ hash at a distance in (PDQThreshold,
	// ReviewThreshold] of an enforcing bank's entry, or a hash of quality
	// below MinPDQQuality within PDQThreshold, gives a Review verdict. 0
	// means no band.
	ReviewThreshold int `json:"review_threshold,omitempty"`
	// ReloadInterval is how often Start's goroutine polls the bank files'
	// size, mtime and identity. 0 means 1s, which keeps an edited file
	// live within 2s; negative disables polling (Reload still works).
	ReloadInterval time.Duration `json:"reload_interval,omitempty"`
	// Logger receives load and reload reports; nil logs nothing.
	Logger *zap.Logger `json:"-"`
	// OnChange, when set, is told each bank whose entries a reload
	// changed, with the entries added and removed, once lookups see the
	// new version: it is what starts a retro-scan of the media already
	// judged. It is called from Reload (the polling goroutine or a forced
	// reload), never on a lookup path, one call at a time and in the
	// order of the reloads, once per changed bank; a bank whose file
	// changed but whose entries did not (labels excepted) is not
	// reported. The loads of NewLocal are not reported: compare
	// Fingerprint with the one stored, and DiffBanks the banks of two
	// configurations. It must not call Reload; a panic is logged.
	OnChange func(BankChange) `json:"-"`
}

// BankStatus is one bank's state, for the health document.
type BankStatus struct {
	// Name and Path are as configured.
	Name string `json:"name"`
	Path string `json:"path"`
	// Enabled is false for disabled banks, which are never loaded.
	Enabled bool `json:"enabled"`
	// Mode is "report" for a bank in report mode (it never blocks), ""
	// for an enforcing one.
	Mode string `json:"mode,omitempty"`
	// Category is the configured kind of harm the bank lists, if any.
	Category string `json:"category,omitempty"`
	// Counts are the entries of the version in use.
	Counts Counts `json:"counts"`
	// LoadedAt is when the version in use was loaded.
	LoadedAt time.Time `json:"loaded_at,omitzero"`
	// LastError is why the latest change of the file could not be loaded
	// (the previous version stays in use), or "" when it loaded.
	LastError string `json:"last_error,omitempty"`
	// LastErrorAt is when LastError happened.
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	// Problems is how many entries the version in use rejected.
	Problems int `json:"problems"`
}

// bankSlot is one configured bank's state. Slots are immutable: a reload
// makes a new slot for every bank it changes.
type bankSlot struct {
	cfg  BankConfig
	bank *Bank
	sig  fileSig // content the bank was loaded from
	// tried is the content of the last failed load, so a broken file is
	// parsed (and logged) once, not on every poll.
	tried     fileSig
	lastErr   string
	lastErrAt time.Time
}

// localState is what a lookup reads: one atomic load gives a consistent
// set of banks.
type localState struct {
	slots  []*bankSlot
	active []*Bank // enabled and loaded, in configuration order
	fp     string  // Fingerprint of active
}

// maxEvidence caps Verdict.Evidence so that a query near thousands of
// entries still answers cheaply.
const maxEvidence = 16

// generation counts bank loads in this process (every Local, every
// reload): a verdict of "clean" is only as new as the banks it was judged
// against.
var generation atomic.Uint64

// Generation returns a number that changes whenever any local bank's
// content changes (a load, a reload, a new configuration). Callers that
// remember clean verdicts drop those from an older generation. It is odd
// while a reload is publishing new banks: a verdict judged when it was
// odd, or that saw it change, may have been reached against either.
func Generation() uint64 { return generation.Load() }

// Local matches queries against bank files on local disk, reloading them
// when they change. Lookups never block on a reload and never see a
// half-loaded bank.
type Local struct {
	threshold  int
	review     int // review_threshold; 0: no review band
	minQuality int
	dihedral   bool
	interval   time.Duration
	log        *zap.Logger

	state    atomic.Pointer[localState]
	reloadMu sync.Mutex // one reload at a time; lookups don't take it
	// notifyMu orders the OnChange calls: a reload takes it before it
	// lets go of reloadMu, so the next reload may load files meanwhile
	// but reports its changes only after these.
	notifyMu sync.Mutex
	onChange func(BankChange)

	startOnce sync.Once
	closeOnce sync.Once
	stop      chan struct{}
	wg        sync.WaitGroup

	scratch sync.Pool // *pdqScratch
}

// NewLocal validates cfg and loads every enabled bank. A bank that cannot
// be loaded is an error; bad entries inside a bank are logged and skipped.
func NewLocal(cfg LocalConfig) (*Local, error) {
	l := &Local{
		threshold:  cfg.PDQThreshold,
		minQuality: DefaultMinPDQQuality,
		dihedral:   cfg.Dihedral,
		interval:   cfg.ReloadInterval,
		log:        cfg.Logger,
		onChange:   cfg.OnChange,
		stop:       make(chan struct{}),
	}
	if l.threshold == 0 {
		l.threshold = DefaultPDQThreshold
	}
	if l.threshold < 0 || l.threshold > MaxPDQThreshold {
		return nil, fmt.Errorf("matcher: pdq threshold %d out of range 1..%d", cfg.PDQThreshold, MaxPDQThreshold)
	}
	if cfg.MinPDQQuality != nil {
		l.minQuality = *cfg.MinPDQQuality
		if l.minQuality < 0 || l.minQuality > 100 {
			return nil, fmt.Errorf("matcher: minimum pdq quality %d out of range 0..100", l.minQuality)
		}
	}
	if r := cfg.ReviewThreshold; r != 0 {
		if r <= l.threshold || r > MaxPDQThreshold {
			return nil, fmt.Errorf("matcher: review threshold %d must be above the pdq threshold %d and at most %d", r, l.threshold, MaxPDQThreshold)
		}
		l.review = r
	}
	if l.interval == 0 {
		l.interval = time.Second
	}
	if l.log == nil {
		l.log = zap.NewNop()
	}
	st := &localState{}
	seen := make(map[string]bool)
	for _, bc := range cfg.Banks {
		if !ValidBankName(bc.Name) {
			return nil, fmt.Errorf("matcher: bank name %q is invalid: must match [A-Z_][A-Z0-9_]*", bc.Name)
		}
		if seen[bc.Name] {
			return nil, fmt.Errorf("matcher: bank %s configured twice", bc.Name)
		}
		seen[bc.Name] = true
		if bc.Path == "" {
			return nil, fmt.Errorf("matcher: bank %s has no path", bc.Name)
		}
		if _, err := ParseMode(bc.Mode, ModeEnforce); err != nil {
			return nil, fmt.Errorf("matcher: bank %s: %w", bc.Name, err)
		}
		if !ValidCategory(bc.Category) {
			return nil, fmt.Errorf("matcher: bank %s: category must be one of %v, not %q", bc.Name, Categories, bc.Category)
		}
		s := &bankSlot{cfg: bc}
		if !bc.Disabled {
			bank, sig, err := loadBank(bc.Name, bc.Path)
			if err != nil {
				return nil, fmt.Errorf("matcher: loading bank %s: %w", bc.Name, err)
			}
			bank.configure(bc)
			s.bank, s.sig = bank, sig
			// By two: the generation stays even outside a reload's
			// publication (see Generation).
			generation.Add(2)
			l.logLoaded(bank, "bank loaded")
			st.active = append(st.active, bank)
		}
		st.slots = append(st.slots, s)
	}
	if len(st.active) == 0 {
		l.log.Warn("no local bank enabled: the local matcher matches nothing")
	}
	st.fp = l.fingerprint(st.active)
	l.state.Store(st)
	releaseLoadGarbage()
	return l, nil
}

// releaseLoadGarbage returns the transient memory of a bank load (read
// buffers, index build scratch: ~100 MB for 1M hashes) to the OS at once.
// Loads are rare and operators judge the process by its RSS; left to the
// scavenger it lingers for minutes.
func releaseLoadGarbage() {
	debug.FreeOSMemory()
}

func (l *Local) logLoaded(b *Bank, msg string) {
	c := b.counts
	l.log.Info(msg, zap.String("bank", b.name), zap.String("path", b.path), zap.Int("md5", c.MD5), zap.Int("sha1", c.SHA1),
		zap.Int("sha256", c.SHA256), zap.Int("pdq", c.PDQ), zap.Int("video_md5", c.VideoMD5), zap.Int("problems", b.nProbs))
	// The first few problems are enough to fix a file; all of them would
	// flood the log for a file in the wrong format.
	for i, p := range b.problems {
		if i == 10 {
			l.log.Warn("more bank entries skipped", zap.String("bank", b.name), zap.Int("count", b.nProbs-i))
			break
		}
		l.log.Warn("bank entry skipped", zap.String("bank", b.name), zap.String("problem", p.String()))
	}
}

// Start begins polling the bank files every ReloadInterval, until ctx ends
// or Close is called. Calling it again does nothing.
func (l *Local) Start(ctx context.Context) {
	l.startOnce.Do(func() {
		if l.interval < 0 {
			return
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			t := time.NewTicker(l.interval)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-l.stop:
					return
				case <-t.C:
					l.Reload()
				}
			}
		}()
	})
}

// Close stops the polling goroutine and waits for it. Lookups keep working
// on the banks last loaded.
func (l *Local) Close() error {
	l.closeOnce.Do(func() { close(l.stop) })
	l.wg.Wait()
	return nil
}

// Reload checks every enabled bank's files now and loads those that
// changed. A bank whose new content fails to load keeps its previous
// version; the returned error (also logged and shown by Status) names each
// such bank.
func (l *Local) Reload() error {
	l.reloadMu.Lock()
	old := l.state.Load()
	var next []*bankSlot
	var errs []error
	for i, s := range old.slots {
		if s.cfg.Disabled {
			continue
		}
		ns := l.check(s)
		if ns == nil {
			continue
		}
		if ns.lastErr != "" && !ns.lastErrAt.Equal(s.lastErrAt) {
			errs = append(errs, fmt.Errorf("matcher: bank %s: %s", s.cfg.Name, ns.lastErr))
		}
		if next == nil {
			next = slices.Clone(old.slots)
		}
		next[i] = ns
	}
	if next == nil {
		l.reloadMu.Unlock()
		return errors.Join(errs...)
	}
	st := &localState{slots: next}
	for _, s := range next {
		if !s.cfg.Disabled && s.bank != nil {
			st.active = append(st.active, s.bank)
		}
	}
	st.fp = l.fingerprint(st.active)
	// The generation is odd while the new banks are being published:
	// a verdict whose generation was odd, or changed, cannot say which
	// banks it saw (see Generation).
	generation.Add(1)
	l.state.Store(st)
	// Only now that lookups see the new banks: a clean verdict
	// reached against the old ones must carry the old generation.
	generation.Add(1)
	releaseLoadGarbage()
	if l.onChange == nil {
		l.reloadMu.Unlock()
		return errors.Join(errs...)
	}
	l.notifyMu.Lock()
	l.reloadMu.Unlock()
	defer l.notifyMu.Unlock()
	var changes []BankChange
	for i, s := range next {
		if s.cfg.Allow {
			// An allowlist's entries judge no media: there is nothing
			// for a retro-scan to block.
			continue
		}
		if was := old.slots[i].bank; s.bank != was {
			if ch := DiffBanks(was, s.bank); !ch.Empty() {
				changes = append(changes, ch)
			}
		}
	}
	for i, ch := range changes {
		ch.From, ch.Last = old.fp, i == len(changes)-1
		l.notify(ch, st.fp)
	}
	return errors.Join(errs...)
}

// notify passes a non-empty change to the OnChange hook. A panic there is
// logged rather than allowed to end the polling goroutine, and with it
// the process.
func (l *Local) notify(ch BankChange, fp string) {
	if ch.Empty() {
		return
	}
	ch.Fingerprint = fp
	defer func() {
		if r := recover(); r != nil {
			l.log.Error("bank change hook panicked", zap.String("bank", ch.Bank), zap.Any("panic", r), zap.Stack("stack"))
		}
	}()
	l.onChange(ch)
}

// check returns s's successor, or nil when nothing changed.
func (l *Local) check(s *bankSlot) *bankSlot {
	name, path := s.cfg.Name, s.cfg.Path
	sig, err := statSig(path)
	if err != nil {
		if s.lastErr == err.Error() {
			return nil
		}
		l.log.Error("bank file unreadable; keeping the loaded version", zap.String("bank", name), zap.String("path", path), zap.Error(err))
		ns := *s
		ns.lastErr, ns.lastErrAt, ns.tried = err.Error(), time.Now(), nil
		return &ns
	}
	if sig.equal(s.sig) {
		if s.lastErr == "" {
			return nil
		}
		// The file is back to the content in use (say, a bad edit was
		// reverted): the error no longer describes anything.
		ns := *s
		ns.lastErr, ns.lastErrAt, ns.tried = "", time.Time{}, nil
		return &ns
	}
	if sig.equal(s.tried) {
		return nil
	}
	bank, lsig, err := loadBank(name, path)
	if errors.Is(err, errChanged) {
		return nil // still being written; the next poll retries
	}
	if err == nil {
		bank.configure(s.cfg)
	}
	ns := *s
	if err != nil {
		l.log.Error("bank reload failed; keeping the loaded version", zap.String("bank", name), zap.String("path", path), zap.Error(err))
		ns.lastErr, ns.lastErrAt, ns.tried = err.Error(), time.Now(), sig
		return &ns
	}
	if bank.counts.Total() == 0 && s.bank != nil && s.bank.counts.Total() > 0 && !isOwnedFile(path) {
		// Most likely a writer truncated the file and has not yet
		// written it; the next poll picks up the content, but lookups
		// miss meanwhile.
		l.log.Warn("bank reloaded empty; publish bank files by renaming a complete file into place",
			zap.String("bank", name), zap.String("path", path))
	}
	ns.bank, ns.sig, ns.tried, ns.lastErr, ns.lastErrAt = bank, lsig, nil, "", time.Time{}
	l.logLoaded(bank, "bank reloaded")
	return &ns
}

// Bank returns the version in use of the named bank, nil when it is
// unknown, disabled or not loaded.
func (l *Local) Bank(name string) *Bank {
	for _, s := range l.state.Load().slots {
		if s.cfg.Name == name && !s.cfg.Disabled {
			return s.bank
		}
	}
	return nil
}

// Status describes every configured bank, disabled ones included.
func (l *Local) Status() []BankStatus {
	st := l.state.Load()
	out := make([]BankStatus, 0, len(st.slots))
	for _, s := range st.slots {
		bs := BankStatus{
			Name: s.cfg.Name, Path: s.cfg.Path, Enabled: !s.cfg.Disabled, Category: s.cfg.Category,
			LastError: s.lastErr, LastErrorAt: s.lastErrAt,
		}
		if s.cfg.Mode == ModeReport {
			bs.Mode = ModeReport
		}
		if s.bank != nil {
			bs.Counts, bs.LoadedAt, bs.Problems = s.bank.counts, s.bank.loadedAt, s.bank.nProbs
		}
		out = append(out, bs)
	}
	return out
}

// Problems returns the entries the version in use of the named bank
// rejected (at most the first 100; Status counts them all), nil for a
// bank that is unknown, disabled or without problems.
func (l *Local) Problems(bank string) []Problem {
	for _, s := range l.state.Load().slots {
		if s.cfg.Name == bank && s.bank != nil {
			return s.bank.Problems()
		}
	}
	return nil
}

// Stats is the number of entries per hash type over the enabled banks.
func (l *Local) Stats() Counts {
	var c Counts
	for _, b := range l.state.Load().active {
		c.add(b.counts)
	}
	return c
}

// pdqCand is one PDQ hit before ranking.
type pdqCand struct {
	bank    int32
	id      int32
	dist    int16
	variant int8
}

type pdqScratch struct {
	hits  []pdqindex.Hit
	cands []pdqCand
}

// Match looks q's digests up in every enabled bank. It never returns an
// error except for a finished ctx: local banks are always available.
func (l *Local) Match(ctx context.Context, q Query) (Verdict, error) {
	if err := ctx.Err(); err != nil {
		return Verdict{}, err
	}
	return l.match(l.state.Load(), &q), nil
}

// match is Match against the banks of st. Enforcing banks are matched
// first, and only without a match there are banks in report mode asked:
// evidence from a report-only bank could otherwise crowd an enforcing
// bank's out of the bounded evidence list and turn "listed" into "passes".
func (l *Local) match(st *localState, q *Query) Verdict {
	v := l.matchPass(st, q, false)
	if v.Match {
		return v
	}
	if st.hasReport() {
		rv := l.matchPass(st, q, true)
		if len(rv.Evidence) > 0 {
			rv.Notes = append(v.Notes, rv.Notes...)
			return rv
		}
	}
	// Only with no evidence at all is the review band searched, in its
	// own pass: its evidence can neither crowd out nor outrank a match.
	if l.review > 0 {
		if ev := l.reviewPDQ(st, q); len(ev) > 0 {
			v.Evidence = ev
			settle(&v)
		}
	}
	return v
}

// hasReport reports whether any active bank is in report mode.
func (st *localState) hasReport() bool {
	for _, b := range st.active {
		if b.report {
			return true
		}
	}
	return false
}

// matchPass matches q against st's active banks whose report flag is
// report.
func (l *Local) matchPass(st *localState, q *Query, report bool) Verdict {
	var v Verdict
	for _, b := range st.active {
		if b.report != report || b.allow {
			continue
		}
		if q.Has&HasMD5 != 0 {
			if r, ok := b.md5[q.MD5]; ok {
				v.Evidence = appendExact(v.Evidence, b, MD5, q.MD5[:], r, pdq.VariantStored)
			}
			if r, ok := b.videoMD5[q.MD5]; ok {
				v.Evidence = appendExact(v.Evidence, b, VideoMD5, q.MD5[:], r, pdq.VariantStored)
			}
		}
		if q.Has&HasSHA1 != 0 {
			if r, ok := b.sha1[q.SHA1]; ok {
				v.Evidence = appendExact(v.Evidence, b, SHA1, q.SHA1[:], r, pdq.VariantStored)
			}
		}
		if q.Has&HasSHA256 != 0 {
			if r, ok := b.sha256[q.SHA256]; ok {
				v.Evidence = appendExact(v.Evidence, b, SHA256, q.SHA256[:], r, pdq.VariantStored)
			}
		}
	}
	for _, e := range q.Embedded {
		for _, b := range st.active {
			if b.report != report || b.allow {
				continue
			}
			n := len(v.Evidence)
			if r, ok := b.md5[e.MD5]; ok {
				v.Evidence = appendExact(v.Evidence, b, MD5, e.MD5[:], r, pdq.VariantEmbedded)
			}
			if r, ok := b.sha1[e.SHA1]; ok {
				v.Evidence = appendExact(v.Evidence, b, SHA1, e.SHA1[:], r, pdq.VariantEmbedded)
			}
			if r, ok := b.sha256[e.SHA256]; ok {
				v.Evidence = appendExact(v.Evidence, b, SHA256, e.SHA256[:], r, pdq.VariantEmbedded)
			}
			for i := n; i < len(v.Evidence); i++ {
				v.Evidence[i].Form = e.Where
			}
		}
	}
	if len(v.Evidence) > maxEvidence {
		v.Evidence = v.Evidence[:maxEvidence]
	}
	if q.Has&HasPDQ != 0 {
		switch {
		case q.PDQ.IsZero():
			v.Notes = append(v.Notes, "pdq not matched: the hash is all zeros (image too small or blank)")
		case q.PDQQuality < l.minQuality:
			v.Notes = append(v.Notes, "pdq not matched: quality "+strconv.Itoa(q.PDQQuality)+
				" is below the minimum "+strconv.Itoa(l.minQuality))
		default:
			v.Evidence = l.matchPDQ(v.Evidence, st, q.PDQ, q.Dihedral, pdq.Form{Variant: pdq.VariantStored}, report, l.threshold)
		}
	}
	if len(q.Forms) > 0 {
		v.Evidence = l.matchForms(v.Evidence, st, q, report)
	}
	settle(&v)
	return v
}

func appendExact(ev []Evidence, b *Bank, t HashType, digest []byte, r entryRef, variant string) []Evidence {
	if ev == nil {
		ev = make([]Evidence, 0, 4)
	}
	return append(ev, Evidence{
		Bank: b.name, HashType: t, Hash: hex.EncodeToString(digest),
		Label: b.label(r), Source: b.source, Variant: variant,
		Category: b.category, ReportOnly: b.report,
	})
}

// matchForms matches every form of q with a usable hash, keeping the
// evidence as matchPDQ does: exact evidence first, then PDQ evidence by
// distance (the stored picture's first on ties), one per banked entry.
func (l *Local) matchForms(ev []Evidence, st *localState, q *Query, report bool) []Evidence {
	nExact := 0
	for nExact < len(ev) && ev[nExact].HashType != PDQ {
		nExact++
	}
	pdqEv := slices.Clone(ev[nExact:])
	for _, f := range q.Forms {
		if f.Hash.IsZero() || f.Quality < l.minQuality {
			continue
		}
		pdqEv = l.matchPDQ(pdqEv, st, f.Hash, nil, f, report, l.threshold)
	}
	slices.SortStableFunc(pdqEv, func(a, b Evidence) int { return a.Distance - b.Distance })
	out := ev[:nExact]
	seen := make(map[string]bool, len(pdqEv))
	for _, e := range pdqEv {
		k := e.Bank + "/" + e.Hash
		if seen[k] || len(out) >= maxEvidence {
			continue
		}
		seen[k] = true
		out = append(out, e)
	}
	return out
}

// matchPDQ appends the best PDQ evidence for hash h (smallest distance
// first, at most one per banked entry) after ev, up to maxEvidence; form
// is the form of the media h was taken from, whose name (empty for the
// stored picture) and kind the evidence carries. With dihedral matching
// on, dihedral holds h's 8 variants. Only banks whose report flag is
// report are searched, out to distance threshold.
func (l *Local) matchPDQ(ev []Evidence, st *localState, h pdq.Hash, dihedral []pdq.Hash, form pdq.Form, report bool, threshold int) []Evidence {
	room := maxEvidence - len(ev)
	if room <= 0 || len(st.active) == 0 {
		return ev
	}
	variants := [8]pdq.Hash{h}
	nv := 1
	if l.dihedral && len(dihedral) == 8 {
		// Variant 0 is the original, which h already is.
		copy(variants[1:], dihedral[1:])
		nv = 8
	}
	sc, _ := l.scratch.Get().(*pdqScratch)
	if sc == nil {
		sc = &pdqScratch{}
	}
	cands := sc.cands[:0]
	for bi, b := range st.active {
		if b.pdq == nil || b.pdq.Len() == 0 || b.report != report || b.allow {
			continue
		}
		for vi := 0; vi < nv; vi++ {
			if vi > 0 && variants[vi].IsZero() {
				continue
			}
			sc.hits = b.pdq.Search(sc.hits[:0], variants[vi], threshold)
			for _, h := range sc.hits {
				cands = append(cands, pdqCand{bank: int32(bi), id: h.ID, dist: int16(h.Distance), variant: int8(vi)})
			}
		}
	}
	if len(cands) > 0 {
		slices.SortFunc(cands, func(a, b pdqCand) int {
			if a.dist != b.dist {
				return int(a.dist) - int(b.dist)
			}
			if a.bank != b.bank {
				return int(a.bank) - int(b.bank)
			}
			if a.variant != b.variant {
				return int(a.variant) - int(b.variant)
			}
			return int(a.id) - int(b.id)
		})
		if ev == nil {
			ev = make([]Evidence, 0, min(len(cands), maxEvidence))
		}
		// Several variants may hit one entry: keep its closest hit only,
		// which sorting put first.
		var taken [maxEvidence]struct{ bank, id int32 }
		nt := 0
	next:
		for _, c := range cands {
			if nt >= room {
				break
			}
			for _, t := range taken[:nt] {
				if t.bank == c.bank && t.id == c.id {
					continue next
				}
			}
			taken[nt].bank, taken[nt].id = c.bank, c.id
			nt++
			b := st.active[c.bank]
			e := Evidence{
				Bank: b.name, HashType: PDQ, Hash: b.pdq.Hash(c.id).String(),
				Distance: int(c.dist), Label: b.pdqLabel(c.id), Source: b.source, Form: form.Name, Variant: form.Variant,
				Category: b.category, ReportOnly: b.report,
			}
			if c.variant > 0 {
				e.Dihedral = pdq.DihedralNames[c.variant]
			}
			ev = append(ev, e)
		}
	}
	// A query near a huge cluster of entries must not pin its buffers in
	// the pool for the life of the process.
	if cap(cands) <= 1<<14 && cap(sc.hits) <= 1<<14 {
		sc.cands = cands[:0]
		l.scratch.Put(sc)
	}
	return ev
}

func reason(e *Evidence) string {
	if e.HashType != PDQ {
		s := string(e.HashType)
		if e.Form != "" {
			s += " of the file embedded as " + e.Form
		}
		s += " matches bank " + e.Bank
		if e.Label != "" {
			s += " (" + e.Label + ")"
		}
		return s
	}
	s := "pdq"
	if e.Form != "" {
		s += " of the picture " + e.Form
	}
	if e.Dihedral != "" {
		s += " (" + e.Dihedral + " variant)"
	}
	s += " within distance " + strconv.Itoa(e.Distance) + " of bank " + e.Bank + " entry"
	if e.Label != "" {
		s += " (" + e.Label + ")"
	}
	return s
}
