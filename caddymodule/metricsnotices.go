package caddymodule

import (
	"github.com/prometheus/client_golang/prometheus"
)

// noticeCollector reads the live service's notice channels at scrape
// time. Like the backend counters, they start again when a config is
// reloaded (a reload builds new notifiers), which rate() takes in its
// stride.
type noticeCollector struct {
	delivered, failed, retried, summarised, pending *prometheus.Desc
	// links counts the lookup API's blocks of room events reported in
	// the management room: they travel with its notices.
	links *prometheus.Desc
}

func (c noticeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.delivered, c.failed, c.retried, c.summarised, c.pending, c.links} {
		ch <- d
	}
}

func (c noticeCollector) Collect(ch chan<- prometheus.Metric) {
	s := live()
	if s == nil {
		return
	}
	for channel, st := range s.NoticeStats() {
		counter := func(d *prometheus.Desc, v uint64, labels ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), append([]string{channel}, labels...)...)
		}
		counter(c.delivered, st.Delivered)
		counter(c.retried, st.Retried)
		counter(c.summarised, st.Summarised)
		counter(c.failed, st.QueueFull, "queue_full")
		counter(c.failed, st.Rejected, "rejected")
		counter(c.failed, st.GaveUp, "gave_up")
		ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(st.Pending), channel)
	}
	if st, ok := s.LookupLinkStats(); ok {
		for outcome, n := range map[string]uint64{"linked": st.Linked, "duplicate": st.Duplicate, "dropped": st.Dropped} {
			ch <- prometheus.MustNewConstMetric(c.links, prometheus.CounterValue, float64(n), outcome)
		}
	}
}
