package caddymodule

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/mediaguard/mediaguard/learn"
	"github.com/mediaguard/mediaguard/matcher"
	"github.com/mediaguard/mediaguard/mediaproxy"
	"github.com/mediaguard/mediaguard/service"
)

// learnPool shares the quarantine learners across config reloads, one per
// bank file: the old and new apps overlap during a reload, and two
// pollers writing one bank file would undo each other's writes. Each
// running app lends the shared poller its scanner, matcher and admin
// credentials (learn.Poller.Use).
var learnPool = caddy.NewUsagePool()

type sharedLearner struct {
	*learn.Poller
	key  string
	live *liveLearner
}

func (s sharedLearner) Destruct() error {
	s.Close()
	// Only its own entry: a stop and a start may put a new learner of
	// the same bank there meanwhile.
	learners.CompareAndDelete(s.key, s.live)
	return nil
}

// learners are the pollers alive, by pool key, for the scrape-time
// metrics; the value is a *liveLearner.
var learners sync.Map

type liveLearner struct {
	poller *learn.Poller
	mu     sync.Mutex
	bank   string // the name the running config gives the bank
}

func (l *liveLearner) name() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.bank
}

// learnState is an app's part in learning from quarantines.
type learnState struct {
	key      string // learnPool key, "" when not learning
	settings learn.Settings
	release  func()
}

// learnBank finds the bank learn_quarantines names; ok is false when
// learning is off.
func (a *App) learnBank() (bc matcher.BankConfig, ok bool, err error) {
	sa := a.SynapseAdmin
	if sa == nil || sa.LearnQuarantines == "" {
		return bc, false, nil
	}
	name := sa.LearnQuarantines
	for _, b := range a.Banks {
		if b.Name == name {
			if st, err := os.Stat(b.Path); err == nil && st.IsDir() {
				return bc, false, fmt.Errorf("mediaguard: synapse_admin learn_quarantines %s: its bank is the directory %s; mediaguard writes one file: give the bank a file path", name, b.Path)
			}
			return b, true, nil
		}
	}
	return bc, false, fmt.Errorf("mediaguard: synapse_admin learn_quarantines %s: no bank %s is declared; add `bank %s PATH` (a file mediaguard creates and writes) to the mediaguard block", name, name, name)
}

// provisionLearn takes (or shares) the poller of the learned bank before
// the service is built: it creates the bank file when missing, so the
// banks load.
func (a *App) provisionLearn(cfg service.Config) error {
	bc, ok, err := a.learnBank()
	if err != nil || !ok {
		return err
	}
	if bc.Disabled {
		a.log.Warn("the bank learn_quarantines writes is disabled: media is learned but not matched until it is enabled", zap.String("bank", bc.Name))
	}
	abs, err := filepath.Abs(bc.Path)
	if err != nil {
		return fmt.Errorf("mediaguard: learn_quarantines: %w", err)
	}
	key := "learn:" + abs
	_, _, err = learnPool.LoadOrNew(key, func() (caddy.Destructor, error) {
		p, err := learn.New(learn.Config{Path: bc.Path})
		if err != nil {
			return nil, err
		}
		live := &liveLearner{poller: p, bank: bc.Name}
		learners.Store(key, live)
		return sharedLearner{Poller: p, key: key, live: live}, nil
	})
	if err != nil {
		return fmt.Errorf("mediaguard: learn_quarantines %s: %w", bc.Name, err)
	}
	a.learn.key = key
	if cfg.SynapseAdmin == nil {
		return errors.New("mediaguard: learn_quarantines: synapse_admin is not mapped")
	}
	minQ := matcher.DefaultMinPDQQuality
	if a.MinPDQQuality != nil {
		minQ = *a.MinPDQQuality
	}
	maxSize := a.MaxUploadSize
	if maxSize <= 0 {
		maxSize = mediaproxy.DefaultMaxUploadSize
	}
	a.learn.settings = learn.Settings{
		Bank: bc.Name, Admin: *cfg.SynapseAdmin, Every: time.Duration(a.SynapseAdmin.LearnEvery),
		MinPDQQuality: minQ, MaxSize: maxSize, Logger: a.log.Named("learn"),
	}
	return nil
}

// startLearn lends the shared poller this app's proxy and matcher.
func (a *App) startLearn() error {
	if a.learn.key == "" {
		return nil
	}
	val, ok := learners.Load(a.learn.key)
	if !ok {
		return errors.New("mediaguard: learn_quarantines: the learner is gone")
	}
	live := val.(*liveLearner)
	s := a.learn.settings
	s.Scanner = a.svc.Proxy()
	s.Reload = a.svc.Local().Reload
	// The proxy's private spool directory: a leftover of a crash is
	// swept with the spool files at the next start.
	s.TempDir = a.svc.Proxy().SpoolDir()
	release, err := live.poller.Use(s)
	if err != nil {
		return fmt.Errorf("mediaguard: learn_quarantines: %w", err)
	}
	live.mu.Lock()
	live.bank = s.Bank
	live.mu.Unlock()
	a.learn.release = release
	return nil
}

// stopLearn takes this app's proxy and matcher back from the poller,
// waiting for a round that uses them; before the service closes.
func (a *App) stopLearn() {
	if a.learn.release != nil {
		a.learn.release()
	}
}

// dropLearn gives up this app's share of the poller (the last one
// closes it); once, from close's releaseOnce.
func (a *App) dropLearn() {
	if a.learn.key != "" {
		learnPool.Delete(a.learn.key)
	}
}

// learnName is the bank learn_quarantines writes, "" when it is off.
func learnName(a *App) string {
	if a.SynapseAdmin == nil {
		return ""
	}
	return a.SynapseAdmin.LearnQuarantines
}
