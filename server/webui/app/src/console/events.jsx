// Events: what the app published, searchable by event ID, delivery ID,
// idempotency key and type over a time range, paged both ways, each with
// its payload and deliveries.
import { useCallback, useEffect, useMemo, useState } from "preact/hooks";
import { Dialog, Field, Json, Notice, Status, fmtTime, useIds } from "../ui.jsx";
import { Pager, searchWhere, usePages } from "../paging.jsx";
import { DeliveryDetail } from "../deliveries.jsx";
import { statusLabel } from "../words.js";

const LIST = `query Events($first: Int, $last: Int, $after: Cursor, $before: Cursor, $where: EventWhereInput) {
  events(first: $first, last: $last, after: $after, before: $before, orderBy: {field: CREATED_AT, direction: DESC}, where: $where) {
    totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { node { id eventType createdAt idempotencyKey orderingKey deliverAt deliveryCount } }
  }
}`;
const DETAIL = `query Event($id: ID!) { node(id: $id) { ... on Event {
  id eventType createdAt idempotencyKey orderingKey deliverAt payload
  deliveries(first: 100) { edges { node { id status attemptCount lastResponseStatus endpoint { name } } } }
} } }`;

export function Events({ api, can, initial }) {
  const [q, setQ] = useState(initial);
  const [search, setSearch] = useState(initial);
  const [type, setType] = useState("");
  const [from, setFrom] = useState("");
  const [to, setTo] = useState("");
  const [open, setOpen] = useState(null);
  const id = useIds("e-q", "e-type", "e-from", "e-to");
  const where = useMemo(() => {
    const w = searchWhere(search, "events");
    if (type.trim()) w.eventTypeHasPrefix = type.trim().replace(/\*$/, "");
    if (from) w.createdAtGTE = new Date(from).toISOString();
    if (to) w.createdAtLTE = new Date(to).toISOString();
    return w;
  }, [search, type, from, to]);
  const load = useCallback((vars) => api.gql(LIST, { ...vars, where }).then((d) => d.events), [api, where]);
  const pages = usePages(load, where);
  const rows = pages.page ? pages.page.rows : null;
  return (
    <section aria-labelledby="events-title">
      <div class="section-head">
        <h1 id="events-title">Events</h1>
      </div>
      <p class="lead">Everything the app published, newest first, with the deliveries each one fanned out to.</p>
      <form
        class="filters card"
        role="search"
        aria-label="Find events"
        onSubmit={(e) => {
          e.preventDefault();
          setSearch(q);
        }}
      >
        <Field id={id["e-q"]} label="Event ID, delivery ID or idempotency key" class="field-wide">
          {(p) => (
            <span class="search-row">
              <input {...p} type="search" value={q} onInput={(e) => setQ(e.currentTarget.value)} data-testid="event-search" autocomplete="off" spellcheck={false} />
              <button type="submit" class="btn">
                Search
              </button>
            </span>
          )}
        </Field>
        <Field id={id["e-type"]} label="Event type or prefix">
          {(p) => <input {...p} value={type} onInput={(e) => setType(e.currentTarget.value)} placeholder="order." autocomplete="off" />}
        </Field>
        <Field id={id["e-from"]} label="From">
          {(p) => <input {...p} type="datetime-local" value={from} onChange={(e) => setFrom(e.currentTarget.value)} />}
        </Field>
        <Field id={id["e-to"]} label="To">
          {(p) => <input {...p} type="datetime-local" value={to} onChange={(e) => setTo(e.currentTarget.value)} />}
        </Field>
      </form>
      <Notice kind="error">{pages.error}</Notice>
      <div class="card table-card">
        <table class="table rows" data-testid="events">
          <caption class="sr-only">Events, newest first</caption>
          <thead>
            <tr>
              <th scope="col">Time</th>
              <th scope="col">Event type</th>
              <th scope="col">Event ID</th>
              <th scope="col">Idempotency key</th>
              <th scope="col" class="num">
                Deliveries
              </th>
              <th scope="col">
                <span class="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {(rows || []).map((ev) => (
              <tr data-event-id={ev.id}>
                <td data-label="Time">{fmtTime(ev.createdAt)}</td>
                <td data-label="Event type">
                  <code>{ev.eventType}</code>
                </td>
                <td data-label="Event ID" class="mono small">
                  {ev.id}
                </td>
                <td data-label="Idempotency key" class="mono small">
                  {ev.idempotencyKey || "—"}
                </td>
                <td class="num" data-label="Deliveries">
                  {ev.deliveryCount}
                </td>
                <td class="actions">
                  <button type="button" class="btn btn-small" onClick={() => setOpen(ev.id)} data-testid="event-details">
                    Details<span class="sr-only"> of event {ev.id}</span>
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {rows && rows.length === 0 && <p class="empty">No event matches.</p>}
        {rows === null && <p aria-busy="true">Loading events…</p>}
        <Pager pages={pages} what="events" />
      </div>
      {open && <EventDetail api={api} id={open} can={can} onClose={() => setOpen(null)} />}
    </section>
  );
}

function EventDetail({ api, id, can, onClose }) {
  const [ev, setEv] = useState(null);
  const [error, setError] = useState("");
  const [delivery, setDelivery] = useState(null);
  useEffect(() => {
    api.gql(DETAIL, { id }).then((d) => setEv(d.node), (e) => setError(e.message));
  }, [api, id]);
  if (delivery) return <DeliveryDetail api={api} id={delivery} can={can} onRetry={(d) => api.gql(`mutation R($id: ID!) { retryDelivery(id: $id) { id } }`, { id: d })} onClose={() => setDelivery(null)} />;
  return (
    <Dialog title={ev ? `${ev.eventType} · ${ev.id}` : "Event"} onClose={onClose} testid="event-detail" wide>
      <Notice kind="error">{error}</Notice>
      {ev && (
        <>
          <dl class="facts">
            <div>
              <dt>Published</dt>
              <dd>{fmtTime(ev.createdAt)}</dd>
            </div>
            {ev.idempotencyKey && (
              <div>
                <dt>Idempotency key</dt>
                <dd class="mono">{ev.idempotencyKey}</dd>
              </div>
            )}
            {ev.orderingKey && (
              <div>
                <dt>Ordering key</dt>
                <dd class="mono">{ev.orderingKey}</dd>
              </div>
            )}
            {ev.deliverAt && (
              <div>
                <dt>Scheduled for</dt>
                <dd>{fmtTime(ev.deliverAt)}</dd>
              </div>
            )}
          </dl>
          <h3>Payload</h3>
          <Json value={ev.payload} label="Payload" />
          <h3>Deliveries</h3>
          {ev.deliveries.edges.length === 0 ? (
            <p>No endpoint was subscribed to it.</p>
          ) : (
            <ul class="plain-list">
              {ev.deliveries.edges.map(({ node: d }) => (
                <li>
                  <Status status={d.status} label={statusLabel[d.status] || d.status} /> {d.endpoint.name} · {d.attemptCount} attempts
                  {d.lastResponseStatus ? ` · HTTP ${d.lastResponseStatus}` : ""}{" "}
                  <button type="button" class="btn btn-small" onClick={() => setDelivery(d.id)}>
                    Details<span class="sr-only"> of the delivery to {d.endpoint.name}</span>
                  </button>
                </li>
              ))}
            </ul>
          )}
        </>
      )}
    </Dialog>
  );
}
