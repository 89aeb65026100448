// An app's overview: the last hour's statistics charted live, what is
// waiting to be sent, and the endpoints that need attention, for the app
// or one endpoint.
import { useEffect, useState } from "preact/hooks";
import { STATS_FIELDS, StatsView } from "../stats.jsx";
import { Field, Notice, fmtTime, useIds } from "../ui.jsx";
import { disabled, pace, plural } from "../words.js";

const STATS = `subscription LiveStats($ep: ID) { statsUpdated(endpointId: $ep, window: "1h", bucket: "1m") { ${STATS_FIELDS} } }`;
const ENDPOINTS = `query OverviewEndpoints { endpoints(first: 100, orderBy: {field: NAME}) { edges { node {
  id name url isActive disabledReason disabledAt health rateLimit { requests per }
  flow { concurrency maxConcurrency ratePerSecond pausedUntil throttled }
} } } }`;
const LIVE = `subscription OverviewEndpointFeed { endpointUpdated { endpointId } }`;
const APP_BACKLOG = `query AppBacklog { viewer { app { backlog { unfinished due oldestDueAt } } } }`;
const ENDPOINT_BACKLOG = `query EndpointBacklog($id: ID!) { node(id: $id) { ... on Endpoint { backlog { unfinished due oldestDueAt } } } }`;

export function Overview({ api }) {
  const [endpoints, setEndpoints] = useState([]);
  const [ep, setEp] = useState("");
  const [stats, setStats] = useState(null);
  const [backlog, setBacklog] = useState(null);
  const [error, setError] = useState("");
  const id = useIds("ov-ep")["ov-ep"];

  useEffect(() => {
    const load = () => api.gql(ENDPOINTS).then((d) => setEndpoints(d.endpoints.edges.map((e) => e.node)), (e) => setError(e.message));
    load();
    // Health changes as attempts are recorded: read again, at most every second.
    let timer = null;
    const stop = api.subscribe(
      LIVE,
      {},
      () => {
        if (!timer) timer = setTimeout(() => ((timer = null), load()), 1000);
      },
      () => {},
    );
    return () => {
      stop();
      clearTimeout(timer);
    };
  }, [api]);
  useEffect(() => {
    setStats(null);
    return api.subscribe(STATS, { ep: ep || null }, (d) => setStats(d.statsUpdated), (e) => setError(e.message));
  }, [api, ep]);
  useEffect(() => {
    let timer = null;
    let stopped = false;
    const read = async () => {
      try {
        const d = ep ? await api.gql(ENDPOINT_BACKLOG, { id: ep }) : await api.gql(APP_BACKLOG);
        if (!stopped) setBacklog(ep ? d.node.backlog : d.viewer.app.backlog);
      } catch {
        // Read again at the next turn.
      }
      if (!stopped) timer = setTimeout(read, 5000);
    };
    setBacklog(null);
    read();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [api, ep]);

  const attention = endpoints
    .map((e) => {
      const p = pace(e);
      const why = !e.isActive ? disabled(e) : e.health === "ATTENTION" ? "Its latest webhook failed." : p.state === "paused" || p.state === "throttled" ? p.label : "";
      return { e, why };
    })
    .filter((x) => x.why);
  const name = ep ? (endpoints.find((e) => e.id === ep) || {}).name : "All endpoints";
  return (
    <section aria-labelledby="overview-title">
      <div class="section-head">
        <h1 id="overview-title">Overview</h1>
      </div>
      <Field id={id} label="Endpoint">
        {(p) => (
          <select {...p} value={ep} onChange={(e) => setEp(e.currentTarget.value)} data-testid="overview-endpoint">
            <option value="">All endpoints</option>
            {endpoints.map((e) => (
              <option value={e.id}>{e.name}</option>
            ))}
          </select>
        )}
      </Field>
      <Notice kind="error" onDismiss={() => setError("")}>
        {error}
      </Notice>
      <h2 data-testid="stats-title">{name}, last hour</h2>
      <StatsView stats={stats} title={`${name}, last hour`} />
      <section class="card" aria-labelledby="backlog-title">
        <h2 id="backlog-title">Waiting to be sent</h2>
        <p data-testid="backlog" data-unfinished={backlog ? backlog.unfinished : ""} data-due={backlog ? backlog.due : ""}>
          {!backlog
            ? "…"
            : backlog.unfinished === 0
              ? "Nothing: every webhook has been delivered or has failed for good."
              : `${plural(backlog.unfinished, "webhook")} not finished, ${backlog.due.toLocaleString()} of them due now${backlog.oldestDueAt ? `, the oldest since ${fmtTime(backlog.oldestDueAt)}` : ""}.`}
        </p>
      </section>
      <section class="card" aria-labelledby="attention-title" data-testid="attention">
        <h2 id="attention-title">Endpoints needing attention</h2>
        {attention.length === 0 ? (
          <p>None: every endpoint is on, healthy and at full pace.</p>
        ) : (
          <ul class="attention-list" data-testid="attention-list">
            {attention.map(({ e, why }) => (
              <li data-endpoint-id={e.id}>
                <button type="button" class="btn btn-small btn-quiet" onClick={() => setEp(e.id)}>
                  {e.name}
                </button>{" "}
                <span class="hint">{why}</span>
              </li>
            ))}
          </ul>
        )}
      </section>
    </section>
  );
}
