package caddymodule

import (
	"github.com/prometheus/client_golang/prometheus"
)

// spoolSpaceCollector measures the spool directory's filesystem at scrape
// time (one statfs). Where it cannot be measured it reports nothing
// rather than zeros, which would read as a full disk.
type spoolSpaceCollector struct{ avail, size *prometheus.Desc }

func (c spoolSpaceCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.avail; ch <- c.size }

func (c spoolSpaceCollector) Collect(ch chan<- prometheus.Metric) {
	s := live()
	if s == nil {
		return
	}
	avail, size, err := s.Proxy().SpoolSpace()
	if err != nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(c.avail, prometheus.GaugeValue, float64(avail))
	ch <- prometheus.MustNewConstMetric(c.size, prometheus.GaugeValue, float64(size))
}
