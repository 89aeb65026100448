// Deliveries: the log with filters and live updates, a delivery's attempts
// in detail, retrying one, and replaying an endpoint's deliveries since a
// time.
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { Dialog, Field, Json, Notice, Status, fmtMs, fmtTime, uid } from "./ui.jsx";
import { loadCatalog } from "./catalog.jsx";
import { Confirm } from "./endpoints.jsx";

const ROW = `id createdAt eventType endpointID status attemptCount lastResponseStatus lastError nextAttemptAt
  attempts(first: 1, orderBy: {field: ATTEMPT_NUMBER, direction: DESC}) { edges { node { durationMs } } }`;

const LIST = `query PortalDeliveries($where: DeliveryWhereInput) {
  deliveries(first: 50, orderBy: {field: CREATED_AT, direction: DESC}, where: $where) { totalCount edges { node { ${ROW} } } }
}`;
const ENDPOINTS = `query PortalEndpointNames { endpoints(first: 100, orderBy: {field: NAME}) { edges { node { id name } } } }`;
const FEED = `subscription PortalDeliveryFeed($ep: ID, $type: String) {
  deliveryUpdated(endpointId: $ep, eventType: $type) {
    kind deliveryId eventId endpointId eventType status attemptNumber responseStatus durationMs error nextAttemptAt at
  }
}`;
const DETAIL = `query PortalDelivery($id: ID!) {
  node(id: $id) { ... on Delivery {
    id status eventType createdAt attemptCount nextAttemptAt lastError
    event { id eventType createdAt payload }
    endpoint { id name url }
    attempts(first: 50, orderBy: {field: ATTEMPT_NUMBER, direction: DESC}) { edges { node {
      id attemptNumber trigger succeeded requestURL requestHeaders { name value }
      responseStatus responseHeaders { name value } responseBody responseBodyTruncated durationMs errorMessage startedAt
    } } }
  } }
}`;
const RETRY = `mutation PortalRetry($id: ID!) { retryDelivery(id: $id) { id status } }`;
const REPLAY = `mutation PortalReplay($ep: ID!, $since: Time!, $status: DeliveryStatus) {
  replayDeliveries(endpointId: $ep, since: $since, status: $status) { count }
}`;

const STATUSES = ["PENDING", "RETRYING", "SUCCEEDED", "FAILED"];
const RETRYABLE = new Set(["FAILED", "RETRYING", "PENDING"]);
const MAX_ROWS = 200;

/** localInput turns an ISO time into a datetime-local value and back. */
function toLocalInput(d) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

export function Deliveries({ api, can, initial }) {
  const [endpoints, setEndpoints] = useState([]);
  const [catalog, setCatalog] = useState([]);
  const [filters, setFilters] = useState({ endpointId: (initial && initial.endpointId) || "", status: "", eventType: "", since: "" });
  const [rows, setRows] = useState(null);
  const [total, setTotal] = useState(0);
  const [live, setLive] = useState("connecting");
  const [error, setError] = useState("");
  const [info, setInfo] = useState("");
  const [detail, setDetail] = useState(null);
  const [replay, setReplay] = useState(false);
  const ids = useRef(null);
  if (!ids.current) ids.current = { ep: uid("f-ep"), st: uid("f-st"), et: uid("f-et"), since: uid("f-since") };
  const id = ids.current;

  useEffect(() => {
    api.gql(ENDPOINTS).then((d) => setEndpoints(d.endpoints.edges.map((e) => e.node)), (e) => setError(e.message));
    loadCatalog(api).then(setCatalog, () => {});
  }, [api]);

  const where = useCallback(() => {
    const w = {};
    if (filters.endpointId) w.endpointID = filters.endpointId;
    if (filters.status) w.status = filters.status;
    if (filters.eventType) w.eventType = filters.eventType;
    if (filters.since) w.createdAtGTE = new Date(filters.since).toISOString();
    return w;
  }, [filters]);

  const matches = useCallback(
    (c) =>
      (!filters.endpointId || c.endpointId === filters.endpointId) &&
      (!filters.status || c.status === filters.status) &&
      (!filters.eventType || c.eventType === filters.eventType) &&
      (!filters.since || new Date(c.at) >= new Date(filters.since)),
    [filters],
  );

  // Load the log and follow it live; changing a filter starts over.
  useEffect(() => {
    let stopped = false;
    setRows(null);
    setLive("connecting");
    const pending = [];
    let loaded = false;
    const apply = (c) => {
      setRows((old) => {
        const list = old || [];
        const i = list.findIndex((r) => r.id === c.deliveryId);
        if (i >= 0) {
          const r = list[i];
          const next = {
            ...r,
            status: c.status,
            attemptCount: c.attemptNumber && c.kind === "ATTEMPT_FINISHED" ? c.attemptNumber : r.attemptCount,
            lastResponseStatus: c.responseStatus ?? (c.kind === "ATTEMPT_FINISHED" ? null : r.lastResponseStatus),
            lastError: c.kind === "ATTEMPT_FINISHED" ? c.error : r.lastError,
            durationMs: c.durationMs ?? r.durationMs,
            nextAttemptAt: c.nextAttemptAt,
            flash: true,
          };
          return [...list.slice(0, i), next, ...list.slice(i + 1)];
        }
        if (c.kind !== "CREATED" || !matches(c)) return list;
        setTotal((n) => n + 1);
        const row = { id: c.deliveryId, createdAt: c.at, eventType: c.eventType, endpointID: c.endpointId, status: c.status, attemptCount: 0, flash: true };
        return [row, ...list].slice(0, MAX_ROWS);
      });
    };
    const stop = api.subscribe(
      FEED,
      { ep: filters.endpointId || null, type: filters.eventType || null },
      (d) => {
        setLive("live");
        if (loaded) apply(d.deliveryUpdated);
        else pending.push(d.deliveryUpdated);
      },
      (message) => {
        setLive("stopped");
        setError(message);
      },
    );
    api
      .gql(LIST, { where: where() })
      .then((d) => {
        if (stopped) return;
        setTotal(d.deliveries.totalCount);
        setRows(
          d.deliveries.edges.map(({ node }) => ({
            ...node,
            durationMs: node.attempts.edges.length ? node.attempts.edges[0].node.durationMs : null,
          })),
        );
        loaded = true;
        pending.splice(0).forEach(apply);
        setLive((s) => (s === "connecting" ? "live" : s));
      })
      .catch((e) => setError(e.message));
    return () => {
      stopped = true;
      stop();
    };
  }, [api, filters, where, matches]);

  const names = Object.fromEntries(endpoints.map((e) => [e.id, e.name]));
  const setF = (k) => (e) => setFilters((f) => ({ ...f, [k]: e.currentTarget.value }));

  const retry = async (deliveryId) => {
    setError("");
    try {
      await api.gql(RETRY, { id: deliveryId });
      setInfo("Queued another attempt now.");
    } catch (e) {
      setError(e.message);
    }
  };

  return (
    <section aria-labelledby="deliveries-title">
      <div class="section-head">
        <h1 id="deliveries-title">Deliveries</h1>
        <span class={`live live-${live}`} data-testid="live-state" data-state={live} role="status">
          {live === "live" ? "Live" : live === "connecting" ? "Connecting…" : "Not live"}
        </span>
        {can.retry && (
          <button type="button" class="btn" onClick={() => setReplay(true)} data-testid="replay">
            Replay…
          </button>
        )}
      </div>
      <p class="lead">Every webhook sent to your endpoints, newest first. The list updates by itself as deliveries happen.</p>
      <form class="filters card" onSubmit={(e) => e.preventDefault()} aria-label="Filters">
        <Field id={id.ep} label="Endpoint">
          {(p) => (
            <select {...p} value={filters.endpointId} onChange={setF("endpointId")} data-testid="filter-endpoint">
              <option value="">All endpoints</option>
              {endpoints.map((e) => (
                <option value={e.id}>{e.name}</option>
              ))}
            </select>
          )}
        </Field>
        <Field id={id.st} label="Status">
          {(p) => (
            <select {...p} value={filters.status} onChange={setF("status")} data-testid="filter-status">
              <option value="">Any status</option>
              {STATUSES.map((s) => (
                <option value={s}>{s.charAt(0) + s.slice(1).toLowerCase()}</option>
              ))}
            </select>
          )}
        </Field>
        <Field id={id.et} label="Event type">
          {(p) => (
            <select {...p} value={filters.eventType} onChange={setF("eventType")} data-testid="filter-type">
              <option value="">Any event type</option>
              {catalog.map((t) => (
                <option value={t.name}>{t.name}</option>
              ))}
            </select>
          )}
        </Field>
        <Field id={id.since} label="Since">
          {(p) => <input {...p} type="datetime-local" value={filters.since} onChange={setF("since")} data-testid="filter-since" />}
        </Field>
      </form>
      <Notice kind="error" onDismiss={() => setError("")} testid="deliveries-error">
        {error}
      </Notice>
      <Notice kind="info" onDismiss={() => setInfo("")} testid="deliveries-info">
        {info}
      </Notice>
      <div class="card table-card">
        <table class="table" data-testid="deliveries">
          <caption class="sr-only">Deliveries, newest first</caption>
          <thead>
            <tr>
              <th scope="col">Time</th>
              <th scope="col">Event type</th>
              <th scope="col">Endpoint</th>
              <th scope="col">Status</th>
              <th scope="col" class="num">
                HTTP
              </th>
              <th scope="col" class="num">
                Attempts
              </th>
              <th scope="col" class="num">
                Duration
              </th>
              <th scope="col">Error</th>
              <th scope="col">
                <span class="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {(rows || []).map((r) => (
              <tr key={r.id} data-delivery-id={r.id} data-status={r.status} class={r.flash ? "flash" : ""}>
                <td>{fmtTime(r.createdAt)}</td>
                <td>
                  <code>{r.eventType}</code>
                </td>
                <td>{names[r.endpointID] || r.endpointID}</td>
                <td>
                  <Status status={r.status} />
                </td>
                <td class="num" data-col="code">
                  {r.lastResponseStatus || "—"}
                </td>
                <td class="num" data-col="attempts">
                  {r.attemptCount}
                </td>
                <td class="num">{fmtMs(r.durationMs)}</td>
                <td class="error-cell">{r.lastError || "—"}</td>
                <td class="actions">
                  <button type="button" class="btn btn-small" onClick={() => setDetail(r.id)} data-testid="details">
                    Details<span class="sr-only"> of the {r.eventType} delivery</span>
                  </button>
                  {can.retry && RETRYABLE.has(r.status) && (
                    <button type="button" class="btn btn-small" onClick={() => retry(r.id)} data-testid="retry">
                      Retry<span class="sr-only"> the {r.eventType} delivery</span>
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {rows !== null && rows.length === 0 && (
          <div class="empty" data-testid="no-deliveries">
            <p class="empty-title">No deliveries</p>
            <p>Nothing matches these filters yet. New deliveries appear here as they happen.</p>
          </div>
        )}
        {rows === null && <p aria-busy="true">Loading deliveries…</p>}
        {rows && total > rows.length && <p class="hint table-foot">Showing the newest {rows.length} of {total}: narrow the filters to see older ones.</p>}
      </div>
      {detail && <DeliveryDetail api={api} id={detail} can={can} onRetry={retry} onClose={() => setDetail(null)} />}
      {replay && (
        <ReplayDialog
          api={api}
          endpoints={endpoints}
          endpointId={filters.endpointId}
          onClose={() => setReplay(false)}
          onDone={(n) => {
            setReplay(false);
            setInfo(n === 1 ? "1 delivery was queued again." : `${n} deliveries were queued again.`);
          }}
        />
      )}
    </section>
  );
}

/** envelope is the body Herald sends for an event. */
function envelope(ev) {
  return { id: ev.id, type: ev.eventType, timestamp: ev.createdAt, data: ev.payload };
}

function DeliveryDetail({ api, id, can, onRetry, onClose }) {
  const [d, setD] = useState(null);
  const [error, setError] = useState("");
  const [attempt, setAttempt] = useState(null);
  const load = useCallback(
    () =>
      api.gql(DETAIL, { id }).then(
        (x) => {
          setD(x.node);
          setAttempt((a) => a || (x.node.attempts.edges[0] && x.node.attempts.edges[0].node.id));
        },
        (e) => setError(e.message),
      ),
    [api, id],
  );
  useEffect(() => {
    load();
  }, [load]);
  const att = d && d.attempts.edges.map((e) => e.node).find((a) => a.id === attempt);
  return (
    <Dialog title={d ? `${d.eventType} to ${d.endpoint.name}` : "Delivery"} onClose={onClose} testid="delivery-detail" wide>
      <Notice kind="error">{error}</Notice>
      {!d ? (
        <p aria-busy="true">Loading…</p>
      ) : (
        <div>
          <dl class="facts">
            <div>
              <dt>Status</dt>
              <dd>
                <Status status={d.status} />
              </dd>
            </div>
            <div>
              <dt>Created</dt>
              <dd>{fmtTime(d.createdAt)}</dd>
            </div>
            <div>
              <dt>Attempts</dt>
              <dd>{d.attemptCount}</dd>
            </div>
            {d.nextAttemptAt && (
              <div>
                <dt>Next attempt</dt>
                <dd>{fmtTime(d.nextAttemptAt)}</dd>
              </div>
            )}
            <div>
              <dt>Endpoint</dt>
              <dd class="mono">{d.endpoint.url}</dd>
            </div>
          </dl>
          {can.retry && RETRYABLE.has(d.status) && (
            <p>
              <button
                type="button"
                class="btn btn-primary"
                data-testid="retry-detail"
                onClick={async () => {
                  await onRetry(d.id);
                  load();
                }}
              >
                Retry now
              </button>
            </p>
          )}
          {d.attempts.edges.length === 0 ? (
            <p>No attempt yet.</p>
          ) : (
            <div class="attempts">
              <div role="group" aria-label="Attempts" class="attempt-tabs">
                {d.attempts.edges.map(({ node: a }) => (
                  <button
                    type="button"
                    class={`btn btn-small${a.id === attempt ? " btn-selected" : ""}`}
                    aria-pressed={a.id === attempt ? "true" : "false"}
                    data-testid="attempt"
                    onClick={() => setAttempt(a.id)}
                  >
                    Attempt {a.attemptNumber} · {a.succeeded ? "OK" : "failed"}
                  </button>
                ))}
              </div>
              {att && <AttemptView a={att} event={d.event} />}
            </div>
          )}
        </div>
      )}
    </Dialog>
  );
}

function Headers({ list, label }) {
  if (!list || !list.length) return <p class="hint">None.</p>;
  return (
    <table class="table headers-table">
      <caption class="sr-only">{label}</caption>
      <tbody>
        {list.map((h) => (
          <tr>
            <th scope="row" class="mono">
              {h.name}
            </th>
            <td class="mono">{h.value}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function AttemptView({ a, event }) {
  const trigger = { SCHEDULED: "scheduled", MANUAL_RETRY: "retried by hand", TEST: "test" }[a.trigger] || a.trigger;
  return (
    <div class="attempt" data-testid="attempt-detail" data-attempt={a.attemptNumber}>
      <dl class="facts">
        <div>
          <dt>Response</dt>
          <dd data-testid="attempt-status">{a.responseStatus ? `HTTP ${a.responseStatus}` : "No response"}</dd>
        </div>
        <div>
          <dt>Duration</dt>
          <dd>{fmtMs(a.durationMs)}</dd>
        </div>
        <div>
          <dt>Sent</dt>
          <dd>
            {fmtTime(a.startedAt)} ({trigger})
          </dd>
        </div>
      </dl>
      {a.errorMessage && (
        <p class="field-error" data-testid="attempt-error">
          {a.errorMessage}
        </p>
      )}
      <div class="two-col">
        <div>
          <h3>Request</h3>
          <p class="mono small">POST {a.requestURL}</p>
          <h4>Headers</h4>
          <Headers list={a.requestHeaders} label="Request headers" />
          <h4>Body (the event's envelope)</h4>
          <Json value={envelope(event)} label="Request body" />
        </div>
        <div>
          <h3>Response</h3>
          <h4>Headers</h4>
          <Headers list={a.responseHeaders} label="Response headers" />
          <h4>Body{a.responseBodyTruncated ? " (first 64 KiB)" : ""}</h4>
          <Json value={a.responseBody} label="Response body" />
        </div>
      </div>
    </div>
  );
}

function ReplayDialog({ api, endpoints, endpointId, onClose, onDone }) {
  const ids = useRef(null);
  if (!ids.current) ids.current = { ep: uid("r-ep"), since: uid("r-since"), st: uid("r-st") };
  const id = ids.current;
  const [ep, setEp] = useState(endpointId || (endpoints[0] && endpoints[0].id) || "");
  const [since, setSince] = useState(toLocalInput(new Date(Date.now() - 3600 * 1000)));
  const [status, setStatus] = useState("FAILED");
  const [errs, setErrs] = useState({});
  return (
    <Confirm
      title="Replay deliveries"
      action="Replay"
      testid="replay-dialog"
      onClose={onClose}
      onConfirm={async () => {
        if (!ep || !since) {
          setErrs({ ep: ep ? "" : "Choose an endpoint.", since: since ? "" : "Choose a time." });
          throw new Error("Some fields need your attention.");
        }
        const d = await api.gql(REPLAY, { ep, since: new Date(since).toISOString(), status });
        onDone(d.replayDeliveries.count);
      }}
    >
      Send again every delivery to an endpoint with this status, created since this time. Your receiver should ignore events it already handled
      (their webhook-id header stays the same).
      <Field id={id.ep} label="Endpoint" error={errs.ep}>
        {(p) => (
          <select {...p} value={ep} onChange={(e) => setEp(e.currentTarget.value)} data-testid="replay-endpoint">
            {endpoints.map((e) => (
              <option value={e.id}>{e.name}</option>
            ))}
          </select>
        )}
      </Field>
      <Field id={id.since} label="Since" error={errs.since}>
        {(p) => <input {...p} type="datetime-local" value={since} onInput={(e) => setSince(e.currentTarget.value)} data-testid="replay-since" />}
      </Field>
      <Field id={id.st} label="Status">
        {(p) => (
          <select {...p} value={status} onChange={(e) => setStatus(e.currentTarget.value)}>
            <option value="FAILED">Failed</option>
            <option value="SUCCEEDED">Succeeded</option>
          </select>
        )}
      </Field>
    </Confirm>
  );
}
