package caddymodule

import (
	"errors"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mediaguard/mediaguard/hashing/external"
	"github.com/mediaguard/mediaguard/mediaproxy"
	"github.com/mediaguard/mediaguard/service"
)

// Collectors are created once per process and registered into each config
// load's registry (Caddy makes a fresh one per load). Labels never carry
// hashes or media IDs: an attacker controls those.
var (
	scanned = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "mediaguard", Name: "requests_total",
		Help: "Media requests decided, by direction (upload, download) and verdict (not_stored: a clean upload the homeserver did not accept).",
	}, []string{"direction", "verdict"})
	bytesHashed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "mediaguard", Name: "hashed_bytes_total",
		Help: "Bytes hashed, by direction.",
	}, []string{"direction"})
	hashSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "caddy", Subsystem: "mediaguard", Name: "hash_duration_seconds",
		Help:    "Time to spool and hash a body (digests and PDQ), by direction. Its _count is the number of hashing jobs: media decided from memory or the ledger is not hashed.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
	}, []string{"direction"})
	matchSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "caddy", Subsystem: "mediaguard", Name: "match_duration_seconds",
		Help:    "Time the matcher took to answer, by direction.",
		Buckets: prometheus.ExponentialBuckets(0.00005, 2, 16),
	}, []string{"direction"})
	blocks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "mediaguard", Name: "blocks_total",
		Help: "Media blocked after hashing, by direction, the hash type that matched and the variant of the media it matched (stored, embedded, frame, displayed, composited, colour-managed, trimmed, peeled, degapped, quadrant, negative, stretched, window, rotated).",
	}, []string{"direction", "hash_type", "variant"})
	spoolBytes = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: "caddy", Subsystem: "mediaguard", Name: "spool_bytes",
		Help: "Bytes of uploads and downloads currently spooled to disk while being judged.",
	})
	downloadBuffered = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "caddy", Subsystem: "mediaguard", Name: "buffered_bytes",
		Help: "Bytes of media held in memory while being judged: uploads being spooled and downloads being buffered (bounded by max_buffered_total).",
	}, func() float64 {
		if s := live(); s != nil {
			return float64(s.Proxy().Buffered())
		}
		return 0
	})
	// Decoders that run as programs: without ffmpeg videos are judged by
	// exact hashes only; without djxl, JPEG XL in its ISO-box form is
	// refused as undecodable, and a bare codestream, whose 2-byte
	// signature random bytes share, is judged unscannable.
	decoderAvailable = func() prometheus.Collector {
		g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "caddy", Subsystem: "mediaguard", Name: "decoder_available",
			Help: "1 when the external decoder program is installed: ffmpeg (video frames), djxl (JPEG XL).",
		}, []string{"program"})
		for _, p := range []string{"ffmpeg", "djxl"} {
			v := 0.0
			if external.Available(p) {
				v = 1
			}
			g.WithLabelValues(p).Set(v)
		}
		return g
	}()
	hashWaiting = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "caddy", Subsystem: "mediaguard", Name: "hashing_waiting",
		Help: "Bodies waiting for a decode-and-PDQ slot (max_concurrent_hashing).",
	}, func() float64 {
		if s := live(); s != nil {
			return float64(s.Proxy().HashWaiting())
		}
		return 0
	})
	hashWorkersStarted = prometheus.NewCounterFunc(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "mediaguard", Name: "hash_workers_started_total",
		Help: "Hashing worker processes started (hashing process).",
	}, func() float64 { s, _ := hashRunner().Stats(); return float64(s) })
	hashWorkersFailed = prometheus.NewCounterFunc(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "mediaguard", Name: "hash_workers_failed_total",
		Help: "Hashing worker processes that crashed, timed out on an image, answered garbage or failed to start; each is replaced.",
	}, func() float64 { _, d := hashRunner().Stats(); return float64(d) })
	breakerState = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "caddy", Subsystem: "mediaguard", Name: "breaker_state",
		Help: "Circuit breaker state per remote backend: 0 closed, 1 half-open, 2 open.",
	}, []string{"backend"})
	breakerTransitions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "mediaguard", Name: "breaker_transitions_total",
		Help: "Circuit breaker state changes per remote backend, by the state entered.",
	}, []string{"backend", "to"})
	backendFailures = backendFailureCollector{
		failures: prometheus.NewDesc("caddy_mediaguard_backend_failures_total",
			"Remote backend lookups that failed, by kind: timeout, malformed (not the backend's protocol), error (refused, reset, HTTP error, index not loaded) and breaker_open (not attempted).",
			[]string{"backend", "kind"}, nil),
		calls: prometheus.NewDesc("caddy_mediaguard_backend_calls_total",
			"Remote backend lookups its circuit breaker let through, whatever their outcome (the failed ones are also in backend_failures_total; breaker_open ones are not calls).",
			[]string{"backend"}, nil),
	}
	backendBanksMissing = backendBanksMissingCollector{prometheus.NewDesc(
		"caddy_mediaguard_backend_banks_missing",
		"Configured banks the remote backend does not have (HMA banks A B checked against GET /c/banks): lookups in them match nothing. Should be 0.",
		[]string{"backend"}, nil)}
	banks = bankCollector{
		entries: prometheus.NewDesc("caddy_mediaguard_bank_entries",
			"Entries of the bank version in use, by bank and hash type.", []string{"bank", "type"}, nil),
		failing: prometheus.NewDesc("caddy_mediaguard_bank_load_failing",
			"1 while a bank file's latest change could not be loaded (the previous version stays in use), else 0.", []string{"bank"}, nil),
	}
	cacheHits = prometheus.NewCounterFunc(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "mediaguard", Name: "cache_hits_total",
		Help: "Remote verdicts served from the cache.",
	}, func() float64 { return guardStat(func(h, _ uint64) uint64 { return h }) })
	cacheMisses = prometheus.NewCounterFunc(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "mediaguard", Name: "cache_misses_total",
		Help: "Remote verdicts not in the cache.",
	}, func() float64 { return guardStat(func(_, m uint64) uint64 { return m }) })

	responses = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "mediaguard", Name: "responses_total",
		Help: "Responses to media requests (every method on a media path), by direction (upload, download, invalid: a disguised media path, refused) and HTTP status code, whoever produced it: mediaguard (403/404 blocks; 503 fail-closed or spool disk unusable; 502 homeserver unreachable) or the homeserver.",
	}, []string{"direction", "code"})
	bankBlocks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "mediaguard", Name: "bank_blocks_total",
		Help: "Media the proxy blocked after hashing (as blocks_total counts them), by the bank whose entry matched (a local bank, an HMA bank or a lookup service's bank; past 64 names not configured here, \"other\") and the hash type that matched.",
	}, []string{"bank", "hash_type"})
	bankWouldBlocks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "mediaguard", Name: "bank_would_block_total",
		Help: "Media a bank or backend in report mode matched and that passed (requests_total verdict would_block), by the bank whose entry matched and the hash type: what the list would block if enforced.",
	}, []string{"bank", "hash_type"})
	backendSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "caddy", Subsystem: "mediaguard", Name: "backend_match_duration_seconds",
		Help:    "Time one backend took to answer one query: local (the local banks, asked for every query) or a remote backend (each call its circuit breaker let through, failures and timeouts included; cache hits and refused calls are not calls).",
		Buckets: prometheus.ExponentialBuckets(0.00005, 2, 17),
	}, []string{"backend"})
	lookupRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "mediaguard", Name: "lookup_requests_total",
		Help: "Requests to the lookup API (mediaguard_lookup), by what they got (action: block, allow, unscanned = allowed without every backend consulted, health, bad_request, unauthorized, rate_limited, error = matcher unavailable) and the API key check (auth: ok, missing, wrong, off = no key configured, unchecked = answered before the check).",
	}, []string{"action", "auth"})
	lookupSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "caddy", Subsystem: "mediaguard", Name: "lookup_duration_seconds",
		Help:    "Time the lookup API took from receiving a request to its answer, matching included, by action (as lookup_requests_total).",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
	}, []string{"action"})
	hashBusy = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "caddy", Subsystem: "mediaguard", Name: "hashing_busy",
		Help: "Decode-and-PDQ slots in use now (of hashing_slots).",
	}, func() float64 {
		if s := live(); s != nil {
			b, _ := s.Proxy().HashSlots()
			return float64(b)
		}
		return 0
	})
	hashSlots = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "caddy", Subsystem: "mediaguard", Name: "hashing_slots",
		Help: "Decode-and-PDQ slots: max_concurrent_hashing, plus one only pictures up to 16 MP may take.",
	}, func() float64 {
		if s := live(); s != nil {
			_, n := s.Proxy().HashSlots()
			return float64(n)
		}
		return 0
	})
	bufferLimit = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "caddy", Subsystem: "mediaguard", Name: "buffered_limit_bytes",
		Help: "The most media bytes held in memory while being judged (max_buffered_total); past it bodies are spooled to disk.",
	}, func() float64 {
		if s := live(); s != nil {
			return float64(s.Proxy().BufferLimit())
		}
		return 0
	})
	spoolSpace = spoolSpaceCollector{
		avail: prometheus.NewDesc("caddy_mediaguard_spool_filesystem_avail_bytes",
			"Bytes available to mediaguard on the filesystem holding the spool directory (temp_dir); when none are left, uploads that spill to disk are refused with 503.", nil, nil),
		size: prometheus.NewDesc("caddy_mediaguard_spool_filesystem_size_bytes",
			"Size in bytes of the filesystem holding the spool directory (temp_dir).", nil, nil),
	}
	notices = noticeCollector{
		delivered: prometheus.NewDesc("caddy_mediaguard_notices_delivered_total",
			"Notices of blocks the receiver accepted, by channel: matrix (the management room; a burst summary counts once, Mjolnir commands not at all) or webhook.", []string{"channel"}, nil),
		failed: prometheus.NewDesc("caddy_mediaguard_notices_failed_total",
			"Notices given up on, by channel and reason: queue_full (refused when queued), rejected (refused by the receiver with an answer retrying cannot change), gave_up (webhook: every attempt failed). With audit_log set, the blocks are on record there.", []string{"channel", "reason"}, nil),
		retried: prometheus.NewDesc("caddy_mediaguard_notices_retried_total",
			"Notice delivery attempts that failed and were retried (network error, 429, 5xx), by channel.", []string{"channel"}, nil),
		summarised: prometheus.NewDesc("caddy_mediaguard_notices_summarised_total",
			"Detections folded into a burst summary instead of a notice of their own (identical detections past the threshold), by channel.", []string{"channel"}, nil),
		pending: prometheus.NewDesc("caddy_mediaguard_notices_pending",
			"Notices queued or being delivered now, by channel (matrix: burst summaries and Mjolnir commands included).", []string{"channel"}, nil),
		links: prometheus.NewDesc("caddy_mediaguard_lookup_links_total",
			"Lookup API blocks of a request naming a room event (Mjolnir's plugin), by outcome: linked (reported in the story of the picture in the management room), duplicate (the event was reported before), dropped (a queue was full: not reported, see the log).", []string{"outcome"}, nil),
	}
)

// collectors are every mediaguard metric, registered into each config
// load's registry.
var collectors = []prometheus.Collector{scanned, bytesHashed, hashSeconds, matchSeconds, blocks, spoolBytes, downloadBuffered, hashWaiting,
	decoderAvailable, hashWorkersStarted, hashWorkersFailed, breakerState, breakerTransitions, backendFailures, backendBanksMissing, banks,
	cacheHits, cacheMisses, responses, bankBlocks, bankWouldBlocks, backendSeconds, lookupRequests, lookupSeconds, hashBusy, hashSlots, bufferLimit,
	spoolSpace, notices, ledgerMetrics}

// verdictsByDirection are the requests_total verdicts each direction can
// get: only downloads are decided from memory or cut off late, only
// uploads go unstored.
var verdictsByDirection = map[string][]mediaproxy.Outcome{
	"upload": {mediaproxy.Clean, mediaproxy.Blocked, mediaproxy.Unscannable, mediaproxy.Unscanned, mediaproxy.Refused,
		mediaproxy.Undecodable, mediaproxy.WouldBlock, mediaproxy.Review, mediaproxy.Held, notStored},
	"download": {mediaproxy.Clean, mediaproxy.Blocked, mediaproxy.LateBlocked, mediaproxy.Unscannable, mediaproxy.Unscanned,
		mediaproxy.Refused, mediaproxy.Undecodable, mediaproxy.WouldBlock, mediaproxy.Review, mediaproxy.Held, mediaproxy.KnownBlocked, mediaproxy.KnownClean},
}

// A counter series first seen at 1 has no increase Prometheus can see, so
// the series alerts use start at 0 instead of at their first event (and
// their names show up in a scrape before any traffic).
func init() {
	for dir, verdicts := range verdictsByDirection {
		for _, v := range verdicts {
			scanned.WithLabelValues(dir, string(v))
		}
	}
}

// currentApp lets the scrape-time metrics read the live app's service.
var currentApp atomic.Pointer[App]

// live is the live app's service, nil when there is none.
func live() *service.Service {
	if a := currentApp.Load(); a != nil {
		return a.svc
	}
	return nil
}

func guardStat(pick func(hits, misses uint64) uint64) float64 {
	svc := live()
	if svc == nil {
		return 0
	}
	s := svc.Guard().Stats()
	return float64(pick(s.CacheHits, s.CacheMisses))
}

func registerMetrics(reg *prometheus.Registry) error {
	if reg == nil {
		return nil
	}
	for _, c := range collectors {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return err
			}
		}
	}
	return nil
}

func breakerStateValue(s string) float64 {
	switch s {
	case "half-open":
		return 1
	case "open":
		return 2
	}
	return 0
}

// backendFailureCollector reads the live Guard's per-remote counters at
// scrape time, so the hot path only bumps atomics.
type backendFailureCollector struct{ failures, calls *prometheus.Desc }

func (c backendFailureCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.failures
	ch <- c.calls
}

func (c backendFailureCollector) Collect(ch chan<- prometheus.Metric) {
	s := live()
	if s == nil {
		return
	}
	for name, r := range s.Guard().Stats().Remotes {
		ch <- prometheus.MustNewConstMetric(c.calls, prometheus.CounterValue, float64(r.Calls), name)
		for _, kv := range []struct {
			kind string
			n    uint64
		}{
			{"timeout", r.Timeouts},
			{"malformed", r.Malformed},
			{"error", r.Failures - r.Timeouts - r.Malformed},
			{"breaker_open", r.Rejected},
		} {
			ch <- prometheus.MustNewConstMetric(c.failures, prometheus.CounterValue, float64(kv.n), name, kv.kind)
		}
	}
}

// backendBanksMissingCollector reports, for every remote, how many of its
// configured banks its backend lacks, at scrape time.
type backendBanksMissingCollector struct{ desc *prometheus.Desc }

func (c backendBanksMissingCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c backendBanksMissingCollector) Collect(ch chan<- prometheus.Metric) {
	s := live()
	if s == nil {
		return
	}
	missing := s.Guard().MissingBanks()
	for name := range s.Guard().Stats().Remotes {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(len(missing[name])), name)
	}
}

// bankCollector reports the local banks' state at scrape time.
type bankCollector struct{ entries, failing *prometheus.Desc }

func (c bankCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.entries; ch <- c.failing }

func (c bankCollector) Collect(ch chan<- prometheus.Metric) {
	s := live()
	if s == nil {
		return
	}
	for _, b := range s.Local().Status() {
		if !b.Enabled {
			continue
		}
		for typ, n := range map[string]int{"md5": b.Counts.MD5, "sha1": b.Counts.SHA1, "sha256": b.Counts.SHA256, "pdq": b.Counts.PDQ, "video_md5": b.Counts.VideoMD5} {
			ch <- prometheus.MustNewConstMetric(c.entries, prometheus.GaugeValue, float64(n), b.Name, typ)
		}
		failing := 0.0
		if b.LastError != "" {
			failing = 1
		}
		ch <- prometheus.MustNewConstMetric(c.failing, prometheus.GaugeValue, failing, b.Name)
	}
}
