// Delivery statistics as charts (uPlot) and figures: the same numbers the
// API's DeliveryStats holds, for an app or one endpoint. Pages load this
// module (and uPlot) only when they show statistics: see stats.jsx.
import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { fmtMs, fmtPct, uid } from "./ui.jsx";

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

/** Chart draws one uPlot chart of series over time and redraws it when data changes. */
function Chart({ title, series, data, percent, testid }) {
  const box = useRef(null);
  const plot = useRef(null);
  const titleId = useRef(uid("chart")).current;
  useEffect(() => {
    const el = box.current;
    const axis = { stroke: cssVar("--muted"), grid: { stroke: cssVar("--border") }, ticks: { stroke: cssVar("--border") } };
    const y = percent ? { ...axis, values: (u, vals) => vals.map((v) => `${Math.round(v * 100)}%`) } : axis;
    const width = () => Math.max(200, Math.floor(el.getBoundingClientRect().width));
    plot.current = new uPlot(
      {
        width: width(),
        height: 150,
        legend: { show: true },
        cursor: { drag: { x: false, y: false } },
        scales: { x: { time: true }, y: percent ? { range: [0, 1] } : {} },
        axes: [{ ...axis, space: 70 }, y],
        series: [{}].concat(
          series.map((s) => ({
            label: s.label,
            stroke: cssVar(s.color),
            width: 1.5,
            spanGaps: true,
            points: { show: !s.volume, size: 4 },
            value: percent ? (u, v) => fmtPct(v) : (u, v) => (v === null || v === undefined ? "—" : String(Math.round(v * 10) / 10)),
          })),
        ),
      },
      data,
      el,
    );
    const ro = new ResizeObserver(() => plot.current && plot.current.setSize({ width: width(), height: 150 }));
    ro.observe(el);
    return () => {
      ro.disconnect();
      plot.current.destroy();
      plot.current = null;
    };
  }, []);
  useEffect(() => {
    if (plot.current) plot.current.setData(data);
  }, [data]);
  return (
    <figure class="chart">
      <figcaption id={titleId}>{title}</figcaption>
      <div ref={box} class="chart-box" role="img" aria-labelledby={titleId} data-testid={testid} />
    </figure>
  );
}

/**
 * StatsView shows DeliveryStats: figures over the window and three charts
 * (volume, success rate, latency) per bucket. data-* attributes carry the
 * raw numbers for tests.
 */
export function StatsView({ stats, title, testid = "stats" }) {
  if (!stats) return <p aria-busy="true">Loading statistics…</p>;
  const t = stats.total;
  const c = stats.columns;
  const x = c.start.map((v) => Date.parse(v) / 1000);
  const attempts = c.attempts.reduce((a, b) => a + b, 0);
  return (
    <section class="card stats" aria-label={title} data-testid={testid} data-attempts={attempts}>
      <dl class="tiles">
        <div class="tile">
          <dt>Webhooks delivered</dt>
          <dd data-testid="tile-delivered" data-value={t.deliverySuccessRate ?? ""}>
            {t.deliveries.total === 0 ? "None finished" : `${fmtPct(t.deliverySuccessRate)} of ${t.deliveries.total.toLocaleString()}`}
          </dd>
        </div>
        <div class="tile">
          <dt>Requests answered with success</dt>
          <dd data-testid="tile-success" data-value={t.successRate ?? ""}>
            {t.attempts.total === 0 ? "No requests" : `${fmtPct(t.successRate)} of ${t.attempts.total.toLocaleString()}`}
          </dd>
        </div>
        <div class="tile">
          <dt>Response time, typical · slowest 5% · slowest 1%</dt>
          <dd data-testid="tile-latency">{t.latency ? `${fmtMs(t.latency.p50Ms)} · ${fmtMs(t.latency.p95Ms)} · ${fmtMs(t.latency.p99Ms)}` : "—"}</dd>
        </div>
      </dl>
      <div class="charts">
        <Chart
          title="Requests"
          testid="chart-volume"
          series={[
            { label: "Succeeded", color: "--ok", volume: true },
            { label: "Will retry", color: "--warn", volume: true },
            { label: "Failed", color: "--bad", volume: true },
          ]}
          data={[x, c.attemptsSucceeded, c.attemptsRetryable, c.attemptsPermanent]}
        />
        <Chart title="Success rate" testid="chart-success" percent series={[{ label: "Succeeded", color: "--ok" }]} data={[x, c.successRate]} />
        <Chart
          title="Response time (ms)"
          testid="chart-latency"
          series={[
            { label: "Typical", color: "--accent" },
            { label: "Slowest 5%", color: "--warn" },
            { label: "Slowest 1%", color: "--bad" },
          ]}
          data={[x, c.p50Ms, c.p95Ms, c.p99Ms]}
        />
      </div>
    </section>
  );
}
