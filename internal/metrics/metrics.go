// Package metrics is dmsfs's monitoring: Prometheus metrics of the
// repository calls (through Repo, which also logs each call at debug
// level) and of the filesystem's cache, spool and upload queue, served
// for scraping by Handler (dmsfs mount --metrics-addr).
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dmsfs/dmsfs/fs/core"
)

// Metrics holds one mount's metrics in a registry of its own.
type Metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	bytes    *prometheus.CounterVec
}

// New makes the metrics, with the Go runtime's and the process's.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dmsfs_remote_requests_total",
			Help: "Repository calls by backend, operation and outcome (ok, not_found, conflict, unavailable, …).",
		}, []string{"backend", "op", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "dmsfs_remote_request_duration_seconds",
			Help:    "How long repository calls took, by backend and operation.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12), // 1 ms … 24 s
		}, []string{"backend", "op"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dmsfs_remote_bytes_total",
			Help: "Content bytes read from (down) and sent to (up) the repository.",
		}, []string{"backend", "direction"}),
	}
	m.reg.MustRegister(m.requests, m.latency, m.bytes,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// WatchFS adds the filesystem's cache, spool and queue figures, read at
// each scrape.
func (m *Metrics) WatchFS(fsys *core.FS) {
	m.reg.MustRegister(fsCollector{fsys})
}

// Handler serves the metrics in Prometheus's text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

var (
	descCacheHits    = prometheus.NewDesc("dmsfs_cache_hits_total", "Block cache lookups that found the block.", nil, nil)
	descCacheMisses  = prometheus.NewDesc("dmsfs_cache_misses_total", "Block cache lookups that did not.", nil, nil)
	descCacheEvicted = prometheus.NewDesc("dmsfs_cache_evictions_total", "Blocks evicted from the block cache.", nil, nil)
	descCacheBytes   = prometheus.NewDesc("dmsfs_cache_bytes", "Bytes the block cache holds.", nil, nil)
	descSpoolBytes   = prometheus.NewDesc("dmsfs_spool_disk_bytes", "Disk the cache directory (spool, journal) uses.", nil, nil)
	descQueueFiles   = prometheus.NewDesc("dmsfs_upload_queue_files", "Uploads waiting in the queue.", nil, nil)
	descQueueBytes   = prometheus.NewDesc("dmsfs_upload_queue_bytes", "Bytes of the uploads waiting.", nil, nil)
	descRefused      = prometheus.NewDesc("dmsfs_upload_refused_files", "Uploads the repository refused for good (kept, not retried).", nil, nil)
	descFailures     = prometheus.NewDesc("dmsfs_upload_failures_total", "Upload attempts that failed (and are retried unless refused).", nil, nil)
	descConflicts    = prometheus.NewDesc("dmsfs_conflicts_total", "Conflict copies made because another client changed a document first.", nil, nil)
	descPolls        = prometheus.NewDesc("dmsfs_poll_rounds_total", "Rounds that asked the repository what other clients changed.", nil, nil)
	descDiskBytes    = prometheus.NewDesc("dmsfs_disk_cache_bytes", "Bytes of whole contents the disk cache holds.", nil, nil)
	descPassthrough  = prometheus.NewDesc("dmsfs_passthrough_opens_total", "Opens the kernel reads straight from a local copy (FUSE passthrough).", nil, nil)
)

// fsCollector reads core.FS.Stats at each scrape.
type fsCollector struct{ fsys *core.FS }

func (c fsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descCacheHits, descCacheMisses, descCacheEvicted, descCacheBytes,
		descSpoolBytes, descQueueFiles, descQueueBytes, descRefused, descFailures, descConflicts, descPolls, descDiskBytes, descPassthrough} {
		ch <- d
	}
}

func (c fsCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.fsys.Stats()
	counter := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	gauge := func(d *prometheus.Desc, v int64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v))
	}
	counter(descCacheHits, s.CacheHits)
	counter(descCacheMisses, s.CacheMisses)
	counter(descCacheEvicted, s.CacheEvicted)
	gauge(descCacheBytes, s.CacheBytes)
	gauge(descSpoolBytes, s.SpoolBytes)
	gauge(descQueueFiles, int64(s.QueueFiles))
	gauge(descQueueBytes, s.QueueBytes)
	gauge(descRefused, int64(s.Refused))
	counter(descFailures, s.UploadFailures)
	counter(descConflicts, s.Conflicts)
	counter(descPolls, s.PollRounds)
	gauge(descDiskBytes, s.DiskCacheBytes)
	counter(descPassthrough, s.PassthroughOpens)
}
