package metrics

import (
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// pgxPoolCollector reports a PostgreSQL connection pool. Herald's SQL over
// database/sql borrows the pool's connections only for a statement, so
// go_sql_* says little there: this is the pool that matters.
type pgxPoolCollector struct {
	pool                                      *pgxpool.Pool
	acquired, idle, total, max                *prometheus.Desc
	acquires, acquireSeconds, emptyAcquires   *prometheus.Desc
	canceledAcquires, newConns, destroyedIdle *prometheus.Desc
}

func newPgxPoolCollector(p *pgxpool.Pool) *pgxPoolCollector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(Namespace+"_pgxpool_"+name, help, nil, nil)
	}
	return &pgxPoolCollector{
		pool:             p,
		acquired:         d("acquired_connections", "PostgreSQL connections in use."),
		idle:             d("idle_connections", "Idle PostgreSQL connections in the pool."),
		total:            d("total_connections", "PostgreSQL connections open (in use, idle and being opened)."),
		max:              d("max_connections", "Most connections the pool opens (--db-max-conns)."),
		acquires:         d("acquires_total", "Connections taken from the pool."),
		acquireSeconds:   d("acquire_duration_seconds_total", "Time spent taking connections from the pool."),
		emptyAcquires:    d("empty_acquires_total", "Takes that had to wait because no connection was idle."),
		canceledAcquires: d("canceled_acquires_total", "Takes abandoned because their context ended."),
		newConns:         d("new_connections_total", "Connections opened."),
		destroyedIdle:    d("idle_destroyed_total", "Idle connections closed for idling too long."),
	}
}

func (c *pgxPoolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.acquired, c.idle, c.total, c.max, c.acquires, c.acquireSeconds,
		c.emptyAcquires, c.canceledAcquires, c.newConns, c.destroyedIdle} {
		ch <- d
	}
}

func (c *pgxPoolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.pool.Stat()
	gauge := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	gauge(c.acquired, float64(s.AcquiredConns()))
	gauge(c.idle, float64(s.IdleConns()))
	gauge(c.total, float64(s.TotalConns()))
	gauge(c.max, float64(s.MaxConns()))
	counter(c.acquires, float64(s.AcquireCount()))
	counter(c.acquireSeconds, s.AcquireDuration().Seconds())
	counter(c.emptyAcquires, float64(s.EmptyAcquireCount()))
	counter(c.canceledAcquires, float64(s.CanceledAcquireCount()))
	counter(c.newConns, float64(s.NewConnsCount()))
	counter(c.destroyedIdle, float64(s.MaxIdleDestroyCount()))
}
