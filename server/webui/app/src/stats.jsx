// Statistics on demand: StatsView loads the charts module (with uPlot) the
// first time it is shown, so pages without charts never fetch it.
import { useEffect, useState } from "preact/hooks";

/** STATS_FIELDS selects what StatsView shows of a DeliveryStats. */
export const STATS_FIELDS = `from to bucket
  total { attempts { total succeeded retryable permanent } deliveries { total succeeded failed } successRate deliverySuccessRate latency { p50Ms p95Ms p99Ms } }
  columns { start attempts attemptsSucceeded attemptsRetryable attemptsPermanent successRate p50Ms p95Ms p99Ms }`;

let loaded = null;

/** StatsView shows DeliveryStats as figures and charts (see charts.jsx). */
export function StatsView(props) {
  const [View, setView] = useState(() => loaded);
  useEffect(() => {
    if (!View) {
      import("./charts.jsx").then((m) => {
        loaded = m.StatsView;
        setView(() => m.StatsView);
      });
    }
  }, []);
  if (!View || !props.stats) return <p aria-busy="true">Loading statistics…</p>;
  return <View {...props} />;
}
