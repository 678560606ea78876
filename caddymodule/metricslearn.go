package caddymodule

import "github.com/prometheus/client_golang/prometheus"

// learnCollector reads every quarantine learner's counters at scrape
// time. A learner outlives config reloads, so unlike the service's
// counters these do not start again at a reload.
type learnCollector struct {
	media, failures, invalid, checkpoint, pending, feedUp, lastPoll, banked *prometheus.Desc
}

var learnMetrics = learnCollector{
	media: prometheus.NewDesc("caddy_mediaguard_learn_media_total",
		"Quarantine feed records applied to the learned bank, by change: learned (a quarantined media's hashes added), unlearned (removed again by its unquarantine), duplicate (a quarantine of media already learned: the feed repeats records), not_quarantined (the media is no longer quarantined: a stale record), own (quarantined by synapse_admin's own user, from a match of a bank mediaguard has: not learned).", []string{"bank", "change"}, nil),
	failures: prometheus.NewDesc("caddy_mediaguard_learn_fetch_failures_total",
		"Quarantined media that could not be fetched from the homeserver, by outcome: retried (tried again later, with backoff) or skipped (given up on after its attempts, logged as a warning).", []string{"bank", "outcome"}, nil),
	invalid: prometheus.NewDesc("caddy_mediaguard_learn_invalid_records_total",
		"Quarantine feed records naming no usable media, skipped.", []string{"bank"}, nil),
	checkpoint: prometheus.NewDesc("caddy_mediaguard_learn_checkpoint",
		"The quarantine feed position applied to the learned bank and saved (Synapse's next_batch).", []string{"bank"}, nil),
	pending: prometheus.NewDesc("caddy_mediaguard_learn_pending",
		"Quarantined media waiting for another fetch.", []string{"bank"}, nil),
	feedUp: prometheus.NewDesc("caddy_mediaguard_learn_feed_up",
		"1 when the last poll of the quarantine feed was answered; 0 when it failed or the homeserver has no feed (Synapse older than 1.152: logged once as an error).", []string{"bank"}, nil),
	lastPoll: prometheus.NewDesc("caddy_mediaguard_learn_last_poll_timestamp_seconds",
		"When the quarantine feed last answered a poll (Unix time).", []string{"bank"}, nil),
	banked: prometheus.NewDesc("caddy_mediaguard_learn_bank_media",
		"Quarantined media whose hashes the learned bank holds.", []string{"bank"}, nil),
}

// The learners' metrics join the others, registered into each config
// load's registry.
func init() { collectors = append(collectors, learnMetrics) }

func (c learnCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.media, c.failures, c.invalid, c.checkpoint, c.pending, c.feedUp, c.lastPoll, c.banked} {
		ch <- d
	}
}

func (c learnCollector) Collect(ch chan<- prometheus.Metric) {
	learners.Range(func(_, v any) bool {
		l := v.(*liveLearner)
		bank, st := l.name(), l.poller.Stats()
		counter := func(d *prometheus.Desc, n int64, labels ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(n), append([]string{bank}, labels...)...)
		}
		gauge := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, bank)
		}
		counter(c.media, st.Learned, "learned")
		counter(c.media, st.Unlearned, "unlearned")
		counter(c.media, st.Duplicates, "duplicate")
		counter(c.media, st.NotQuarantined, "not_quarantined")
		counter(c.media, st.Own, "own")
		counter(c.failures, st.FetchRetries, "retried")
		counter(c.failures, st.FetchSkipped, "skipped")
		counter(c.invalid, st.Invalid)
		gauge(c.checkpoint, float64(st.Checkpoint))
		gauge(c.pending, float64(st.Pending))
		up := 0.0
		if st.FeedUp {
			up = 1
		}
		gauge(c.feedUp, up)
		if !st.LastPoll.IsZero() {
			gauge(c.lastPoll, float64(st.LastPoll.UnixNano())/1e9)
		}
		gauge(c.banked, float64(st.Media))
		return true
	})
}
