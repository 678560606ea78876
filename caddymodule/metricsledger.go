package caddymodule

import "github.com/prometheus/client_golang/prometheus"

// ledgerCollector reads the live service's media ledger counters at
// scrape time; like the notice counters, they start again at a reload.
type ledgerCollector struct {
	records, recalls, retroScans, retroBlocked *prometheus.Desc
}

var ledgerMetrics = ledgerCollector{
	records: prometheus.NewDesc("caddy_mediaguard_ledger_records_total",
		"Media ledger writes by outcome: written, dropped (the write queue was full: the media is judged from its bytes at its next download), failed (the store refused; logged).", []string{"outcome"}, nil),
	recalls: prometheus.NewDesc("caddy_mediaguard_ledger_recalls_total",
		"Media the proxy's memory did not know, asked of the ledger: kind trusted (decided from the stored verdict), rederived (the banks changed since: matched again from the stored digests, without hashing) or read_failed (the store did not answer: judged from the bytes).", []string{"kind"}, nil),
	retroScans: prometheus.NewDesc("caddy_mediaguard_retro_scans_total",
		"Retro-scans of the ledger after a bank change, by outcome: done, skipped (another instance sharing the ledger had done it), failed (logged; the next change re-judges the whole ledger).", []string{"outcome"}, nil),
	retroBlocked: prometheus.NewDesc("caddy_mediaguard_retro_blocked_total",
		"Stored media a retro-scan found listed after a bank change: blocked, quarantined where configured and notified.", nil, nil),
}

func (c ledgerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.records, c.recalls, c.retroScans, c.retroBlocked} {
		ch <- d
	}
}

func (c ledgerCollector) Collect(ch chan<- prometheus.Metric) {
	s := live()
	if s == nil {
		return
	}
	st, ok := s.LedgerStats()
	if !ok {
		return
	}
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	counter(c.records, st.Written, "written")
	counter(c.records, st.Dropped, "dropped")
	counter(c.records, st.Failed, "failed")
	counter(c.recalls, st.Recalled-st.Rederived, "trusted")
	counter(c.recalls, st.Rederived, "rederived")
	counter(c.recalls, st.ReadFailed, "read_failed")
	for outcome, n := range st.RetroScans {
		counter(c.retroScans, n, outcome)
	}
	counter(c.retroBlocked, st.RetroBlocked)
}
