// Deliveries: the whole history with filters, a time range and search
// (event ID, delivery ID, idempotency key), paged both ways; a live mode
// that follows new rows; a delivery's attempts with request and response;
// retrying one, retrying a selection, and replaying an endpoint's
// deliveries since a time.
import { useCallback, useEffect, useMemo, useRef, useState } from "preact/hooks";
import { Confirm, Dialog, Field, Json, Notice, Status, fmtMs, fmtTime, toLocalInput, useIds } from "./ui.jsx";
import { loadCatalog } from "./catalog.jsx";
import { Pager, searchWhere, usePages } from "./paging.jsx";
import { statusLabel, trigger as triggerWords, plural } from "./words.js";

const ROW = `id createdAt updatedAt eventID eventType endpointID status attemptCount lastResponseStatus lastError nextAttemptAt
  attempts(first: 1, orderBy: {field: ATTEMPT_NUMBER, direction: DESC}) { edges { node { durationMs } } }`;

const LIST = `query Deliveries($first: Int, $last: Int, $after: Cursor, $before: Cursor, $where: DeliveryWhereInput) {
  deliveries(first: $first, last: $last, after: $after, before: $before, orderBy: {field: CREATED_AT, direction: DESC}, where: $where) {
    totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor } edges { node { ${ROW} } }
  }
}`;
const ENDPOINTS = `query EndpointNames { endpoints(first: 100, orderBy: {field: NAME}) { edges { node { id name } } } }`;
const FEED = `subscription DeliveryFeed($ep: ID, $type: String) {
  deliveryUpdated(endpointId: $ep, eventType: $type) {
    kind deliveryId eventId endpointId eventType status attemptNumber responseStatus durationMs error nextAttemptAt at
  }
}`;
const DETAIL = `query Delivery($id: ID!) {
  node(id: $id) { ... on Delivery {
    id status eventType createdAt attemptCount nextAttemptAt lastError
    event { id eventType createdAt payload idempotencyKey }
    endpoint { id name url }
    attempts(first: 50, orderBy: {field: ATTEMPT_NUMBER, direction: DESC}) { edges { node {
      id attemptNumber trigger succeeded requestURL requestHeaders { name value }
      responseStatus responseHeaders { name value } responseBody responseBodyTruncated durationMs errorMessage startedAt
    } } }
  } }
}`;
const RETRY = `mutation Retry($id: ID!) { retryDelivery(id: $id) { id status } }`;
const RETRY_MANY = `mutation RetryMany($ids: [ID!]!) { retryDeliveries(ids: $ids) { count notRetried { id message } } }`;
const REPLAY = `mutation Replay($ep: ID!, $since: Time!, $status: DeliveryStatus) {
  replayDeliveries(endpointId: $ep, input: {since: $since, status: $status}) { count }
}`;

const STATUSES = ["PENDING", "RETRYING", "SUCCEEDED", "FAILED"];
const RETRYABLE = new Set(["FAILED", "RETRYING", "SUCCEEDED"]);
const SELECTABLE = new Set(["FAILED", "RETRYING"]);

const rowOf = (node) => ({ ...node, durationMs: node.attempts && node.attempts.edges.length ? node.attempts.edges[0].node.durationMs : null });

export function Deliveries({ api, can, initial }) {
  const [endpoints, setEndpoints] = useState([]);
  const [catalog, setCatalog] = useState([]);
  const [filters, setFilters] = useState({ endpointId: (initial && initial.endpointId) || "", status: "", eventType: "", from: "", to: "" });
  const [q, setQ] = useState((initial && initial.search) || "");
  const [search, setSearch] = useState((initial && initial.search) || "");
  const [live, setLive] = useState(true);
  const [liveState, setLiveState] = useState("connecting");
  const [fresh, setFresh] = useState(0); // new rows not shown (not on the newest page)
  const [error, setError] = useState("");
  const [info, setInfo] = useState("");
  const [detail, setDetail] = useState(initial && initial.deliveryId ? initial.deliveryId : null);
  const [replay, setReplay] = useState(false);
  const [selected, setSelected] = useState(() => new Set());
  const [resubscribe, setResubscribe] = useState(0);
  const lagged = useRef(0); // automatic resubscriptions after falling behind
  const id = useIds("f-ep", "f-st", "f-et", "f-from", "f-to", "f-q");

  useEffect(() => {
    api.gql(ENDPOINTS).then((d) => setEndpoints(d.endpoints.edges.map((e) => e.node)), (e) => setError(e.message));
    loadCatalog(api).then(setCatalog, () => {});
  }, [api]);

  const where = useMemo(() => {
    const w = searchWhere(search, "deliveries");
    if (filters.endpointId) w.endpointID = filters.endpointId;
    if (filters.status) w.status = filters.status;
    if (filters.eventType) w.eventType = filters.eventType;
    if (filters.from) w.createdAtGTE = new Date(filters.from).toISOString();
    if (filters.to) w.createdAtLTE = new Date(filters.to).toISOString();
    return w;
  }, [filters, search]);
  const load = useCallback((vars) => api.gql(LIST, { ...vars, where }).then((d) => d.deliveries), [api, where]);
  const pages = usePages(load, where);
  const page = pages.page;
  const rows = page ? page.rows.map((r) => (r.attempts ? rowOf(r) : r)) : null;

  // New rows join the list live only where they belong: on the newest
  // page, without a search or an end of the time range.
  const canFollow = live && pages.isNewest && !search && !filters.to;
  const follow = useRef(canFollow);
  follow.current = canFollow;
  const matches = useCallback(
    (c) =>
      (!filters.status || c.status === filters.status) &&
      (!filters.from || new Date(c.at) >= new Date(filters.from)),
    [filters],
  );

  // apply returns a page with one live change: a row of the page
  // updated, or a new row on top when it belongs there (else counted).
  const pending = useRef([]);
  const apply = useRef(null);
  apply.current = (p, c) => {
    const i = p.rows.findIndex((r) => r.id === c.deliveryId);
    if (i >= 0) {
      const r = p.rows[i];
      const seen = r.at || r.updatedAt;
      if (seen && Date.parse(c.at) < Date.parse(seen)) return p; // older than what is shown
      const finished = c.kind === "ATTEMPT_FINISHED";
      const next = {
        ...rowOf(r),
        attempts: null,
        status: c.status,
        attemptCount: finished && c.attemptNumber ? c.attemptNumber : r.attemptCount,
        lastResponseStatus: finished ? c.responseStatus : r.lastResponseStatus,
        lastError: finished ? c.error : r.lastError,
        durationMs: finished ? c.durationMs : rowOf(r).durationMs,
        nextAttemptAt: c.nextAttemptAt,
        at: c.at,
        flash: true,
      };
      return { ...p, rows: [...p.rows.slice(0, i), next, ...p.rows.slice(i + 1)] };
    }
    if (c.kind !== "CREATED" || !matches(c)) return p;
    if (!follow.current) {
      setFresh((n) => n + 1);
      return p;
    }
    const row = { id: c.deliveryId, createdAt: c.at, eventID: c.eventId, eventType: c.eventType, endpointID: c.endpointId, status: c.status, attemptCount: 0, at: c.at, flash: true };
    return { ...p, total: p.total + 1, rows: [row, ...p.rows].slice(0, Math.max(p.rows.length, 50)) };
  };
  useEffect(() => {
    if (page && pending.current.length) {
      const changes = pending.current.splice(0);
      pages.setPage((p) => changes.reduce((q, c) => apply.current(q, c), p));
    }
  }, [page]);

  useEffect(() => {
    if (!live) {
      lagged.current = 0;
      setLiveState("off");
      return undefined;
    }
    setLiveState("connecting");
    setFresh(0);
    const stop = api.subscribe(
      FEED,
      { ep: filters.endpointId || null, type: filters.eventType || null },
      (d) => {
        setLiveState("live");
        const c = d.deliveryUpdated;
        pages.setPage((p) => {
          if (!p) {
            // The page is loading: apply the change once it is there.
            pending.current.push(c);
            return p;
          }
          return apply.current(p, c);
        });
      },
      (e) => {
        if (e.reason === "SUBSCRIBER_LAGGED" && lagged.current === 0) {
          // Once: follow again, and reload what the gap may have missed.
          lagged.current += 1;
          setInfo("Too many changes came at once to show them one by one: the list was reloaded, and it follows new deliveries again.");
          pages.reload();
          setResubscribe((n) => n + 1);
          return;
        }
        setLiveState("stopped");
        setError(
          e.reason === "SUBSCRIBER_LAGGED"
            ? "Too many changes keep coming at once to follow them live. Narrow the list to one endpoint, or turn following off and on again."
            : e.message,
        );
      },
    );
    const cancel = api.whenConnected(() => setLiveState((st) => (st === "connecting" ? "live" : st)));
    return () => {
      cancel();
      stop();
    };
  }, [api, live, filters.endpointId, filters.eventType, matches, resubscribe]);

  const names = Object.fromEntries(endpoints.map((e) => [e.id, e.name]));
  const setF = (k) => (e) => setFilters((f) => ({ ...f, [k]: e.currentTarget.value }));

  const retry = async (deliveryId) => {
    setError("");
    try {
      await api.gql(RETRY, { id: deliveryId });
      setInfo("Another attempt was queued: it is sent now.");
    } catch (e) {
      setError(e.message);
    }
  };
  const retrySelected = async () => {
    setError("");
    try {
      const d = (await api.gql(RETRY_MANY, { ids: [...selected] })).retryDeliveries;
      setSelected(new Set());
      const not = d.notRetried.length ? ` ${plural(d.notRetried.length, "was", "were")} not: ${d.notRetried.map((x) => x.message).join("; ")}` : "";
      setInfo(`${plural(d.count, "delivery", "deliveries")} queued again.${not}`);
    } catch (e) {
      setError(e.message);
    }
  };
  const toggle = (rid, on) =>
    setSelected((s) => {
      const n = new Set(s);
      if (on) n.add(rid);
      else n.delete(rid);
      return n;
    });
  const selectable = (rows || []).filter((r) => SELECTABLE.has(r.status));

  return (
    <section aria-labelledby="deliveries-title">
      <div class="section-head">
        <h1 id="deliveries-title">Deliveries</h1>
        <span class={`live live-${liveState}`} data-testid="live-state" data-state={liveState} role="status">
          {liveState === "live" ? "Live" : liveState === "connecting" ? "Connecting…" : liveState === "off" ? "Paused" : "Not live"}
        </span>
        <label class="check inline">
          <input type="checkbox" checked={live} onChange={(e) => setLive(e.currentTarget.checked)} data-testid="live-toggle" />
          <span>Follow new deliveries</span>
        </label>
        {can.retry && (
          <button type="button" class="btn" onClick={() => setReplay(true)} data-testid="replay">
            Replay…
          </button>
        )}
      </div>
      <p class="lead">Every webhook sent to your endpoints, newest first.</p>
      <form
        class="filters card"
        role="search"
        aria-label="Find deliveries"
        onSubmit={(e) => {
          e.preventDefault();
          setSearch(q);
        }}
      >
        <Field id={id["f-q"]} label="Event ID, delivery ID or idempotency key" class="field-wide">
          {(p) => (
            <span class="search-row">
              <input {...p} type="search" value={q} onInput={(e) => setQ(e.currentTarget.value)} data-testid="search" autocomplete="off" spellcheck={false} />
              <button type="submit" class="btn" data-testid="search-go">
                Search
              </button>
            </span>
          )}
        </Field>
        <Field id={id["f-ep"]} label="Endpoint">
          {(p) => (
            <select {...p} value={filters.endpointId} onChange={setF("endpointId")} data-testid="filter-endpoint">
              <option value="">All endpoints</option>
              {endpoints.map((e) => (
                <option value={e.id}>{e.name}</option>
              ))}
            </select>
          )}
        </Field>
        <Field id={id["f-st"]} label="Status">
          {(p) => (
            <select {...p} value={filters.status} onChange={setF("status")} data-testid="filter-status">
              <option value="">Any status</option>
              {STATUSES.map((s) => (
                <option value={s}>{statusLabel[s]}</option>
              ))}
            </select>
          )}
        </Field>
        <Field id={id["f-et"]} label="Event type">
          {(p) => (
            <select {...p} value={filters.eventType} onChange={setF("eventType")} data-testid="filter-type">
              <option value="">Any event type</option>
              {catalog.map((t) => (
                <option value={t.name}>{t.name}</option>
              ))}
            </select>
          )}
        </Field>
        <Field id={id["f-from"]} label="From">
          {(p) => <input {...p} type="datetime-local" value={filters.from} onChange={setF("from")} data-testid="filter-from" />}
        </Field>
        <Field id={id["f-to"]} label="To">
          {(p) => <input {...p} type="datetime-local" value={filters.to} onChange={setF("to")} data-testid="filter-to" />}
        </Field>
      </form>
      <Notice kind="error" onDismiss={() => setError("")} testid="deliveries-error">
        {error || pages.error}
      </Notice>
      <Notice kind="info" onDismiss={() => setInfo("")} testid="deliveries-info">
        {info}
      </Notice>
      {fresh > 0 && (
        <p>
          <button
            type="button"
            class="btn btn-small"
            data-testid="show-fresh"
            onClick={() => {
              setFresh(0);
              pages.newest();
            }}
          >
            {plural(fresh, "new delivery", "new deliveries")}: show the newest
          </button>
        </p>
      )}
      {can.retry && (
        <div class="bulk" data-testid="bulk">
          <label class="check">
            <input
              type="checkbox"
              checked={selectable.length > 0 && selectable.every((r) => selected.has(r.id))}
              disabled={selectable.length === 0}
              onChange={(e) => setSelected(e.currentTarget.checked ? new Set(selectable.map((r) => r.id)) : new Set())}
              data-testid="select-all"
            />
            <span>Select every failed or retrying delivery on this page</span>
          </label>
          <button type="button" class="btn btn-small" disabled={selected.size === 0} onClick={retrySelected} data-testid="retry-selected">
            Retry selected ({selected.size})
          </button>
        </div>
      )}
      <div class="card table-card">
        <table class="table rows" data-testid="deliveries">
          <caption class="sr-only">Deliveries, newest first</caption>
          <thead>
            <tr>
              {can.retry && (
                <th scope="col">
                  <span class="sr-only">Select</span>
                </th>
              )}
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
              <tr key={r.id} data-delivery-id={r.id} data-event-id={r.eventID} data-status={r.status} class={r.flash ? "flash" : ""}>
                {can.retry && (
                  <td data-label="Select">
                    {SELECTABLE.has(r.status) && (
                      <input
                        type="checkbox"
                        checked={selected.has(r.id)}
                        onChange={(e) => toggle(r.id, e.currentTarget.checked)}
                        aria-label={`Select the ${r.eventType} delivery of ${fmtTime(r.createdAt)}`}
                        data-testid="select"
                      />
                    )}
                  </td>
                )}
                <td data-label="Time">{fmtTime(r.createdAt)}</td>
                <td data-label="Event type">
                  <code>{r.eventType}</code>
                </td>
                <td data-label="Endpoint">{names[r.endpointID] || "Deleted endpoint"}</td>
                <td data-label="Status">
                  <Status status={r.status} label={statusLabel[r.status] || r.status} />
                </td>
                <td class="num" data-col="code" data-label="HTTP">
                  {r.lastResponseStatus || "—"}
                </td>
                <td class="num" data-col="attempts" data-label="Attempts">
                  {r.attemptCount}
                </td>
                <td class="num" data-label="Duration">
                  {fmtMs(r.durationMs)}
                </td>
                <td class="error-cell" data-label="Error">
                  {r.lastError || "—"}
                </td>
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
            <p>{search ? `Nothing matches "${search}".` : "Nothing matches these filters yet. New deliveries appear here as they happen."}</p>
          </div>
        )}
        {rows === null && <p aria-busy="true">Loading deliveries…</p>}
        <Pager pages={pages} what="deliveries" />
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
            setInfo(`${plural(n, "delivery", "deliveries")} queued again.`);
          }}
        />
      )}
    </section>
  );
}

/** envelope is the body sent for an event. */
function envelope(ev) {
  return { id: ev.id, type: ev.eventType, timestamp: ev.createdAt, data: ev.payload };
}

/** DeliveryDetail shows a delivery's attempts, with request and response. */
export function DeliveryDetail({ api, id, can, onRetry, onClose }) {
  const [d, setD] = useState(null);
  const [error, setError] = useState("");
  const [attempt, setAttempt] = useState(null);
  const load = useCallback(
    () =>
      api.gql(DETAIL, { id }).then(
        (x) => {
          if (!x.node) {
            setError("This delivery was not found.");
            return;
          }
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
  // The delivery's own changes (an attempt sent after a retry, a
  // scheduled one) reload it while it is shown, whether or not the list
  // behind follows new deliveries.
  const endpointId = d && d.endpoint.id;
  useEffect(() => {
    if (!endpointId) return undefined;
    return api.subscribe(
      FEED,
      { ep: endpointId, type: null },
      (x) => {
        if (x.deliveryUpdated.deliveryId === id) load();
      },
      () => {},
    );
  }, [api, id, endpointId, load]);
  const att = d && d.attempts.edges.map((e) => e.node).find((a) => a.id === attempt);
  return (
    <Dialog title={d ? `${d.eventType} to ${d.endpoint.name}` : "Delivery"} onClose={onClose} testid="delivery-detail" wide>
      <Notice kind="error">{error}</Notice>
      {!d ? (
        !error && <p aria-busy="true">Loading…</p>
      ) : (
        <div>
          <dl class="facts">
            <div>
              <dt>Status</dt>
              <dd data-testid="detail-status">
                <Status status={d.status} label={statusLabel[d.status] || d.status} />
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
            <div>
              <dt>Event ID</dt>
              <dd class="mono" data-testid="detail-event-id">
                {d.event.id}
              </dd>
            </div>
            <div>
              <dt>Delivery ID</dt>
              <dd class="mono">{d.id}</dd>
            </div>
            {d.event.idempotencyKey && (
              <div>
                <dt>Idempotency key</dt>
                <dd class="mono">{d.event.idempotencyKey}</dd>
              </div>
            )}
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
            <>
              <p>No attempt yet.</p>
              <h3>Payload</h3>
              <Json value={envelope(d.event)} label="Payload" />
            </>
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
            {fmtTime(a.startedAt)} ({triggerWords[a.trigger] || "sent"})
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
          <h4>Body</h4>
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
  const id = useIds("r-ep", "r-since", "r-st");
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
      Send again every webhook to an endpoint with this status, created since this time. Your receiver should ignore events it already handled
      (their webhook-id header stays the same).
      <Field id={id["r-ep"]} label="Endpoint" error={errs.ep}>
        {(p) => (
          <select {...p} value={ep} onChange={(e) => setEp(e.currentTarget.value)} data-testid="replay-endpoint">
            {endpoints.map((e) => (
              <option value={e.id}>{e.name}</option>
            ))}
          </select>
        )}
      </Field>
      <Field id={id["r-since"]} label="Since" error={errs.since}>
        {(p) => <input {...p} type="datetime-local" value={since} onInput={(e) => setSince(e.currentTarget.value)} data-testid="replay-since" />}
      </Field>
      <Field id={id["r-st"]} label="Status">
        {(p) => (
          <select {...p} value={status} onChange={(e) => setStatus(e.currentTarget.value)} data-testid="replay-status">
            <option value="FAILED">Failed</option>
            <option value="SUCCEEDED">Succeeded</option>
          </select>
        )}
      </Field>
    </Confirm>
  );
}
