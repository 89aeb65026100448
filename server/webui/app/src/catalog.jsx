// The event catalog: every event type with its description, example
// payload and JSON Schema, grouped by the first part of their names
// (order.created and order.paid under "order") and searchable. Operators
// also see which catalog the app shares and which types are the app's own.
import { useEffect, useState } from "preact/hooks";
import { Field, Json, Notice, useIds } from "./ui.jsx";

const CATALOG = `query Catalog($after: Cursor) {
  eventTypes(first: 100, after: $after, orderBy: {field: NAME}, where: {archivedAtIsNil: true}) {
    pageInfo { hasNextPage endCursor }
    edges { node { id name description example jsonSchema builtIn shared } }
  }
}`;

/** loadCatalog returns every event type of the app that can be published. */
export async function loadCatalog(api) {
  const out = [];
  let after = null;
  for (let page = 0; page < 50; page++) {
    const d = await api.gql(CATALOG, { after });
    out.push(...d.eventTypes.edges.map((e) => e.node));
    if (!d.eventTypes.pageInfo.hasNextPage) break;
    after = d.eventTypes.pageInfo.endCursor;
  }
  return out;
}

const SHARED_CATALOG = `query SharedCatalog { viewer { app { catalog { name isDefault } } } }`;

/** SCOPES are the operator's filters of the catalog: which types to show. */
const SCOPES = [
  ["all", "All types"],
  ["shared", "Shared catalog"],
  ["own", "This app only"],
];

/** inScope reports whether an event type passes an operator's filter. */
export function inScope(t, scope) {
  return scope === "all" || (scope === "shared") === Boolean(t.shared);
}

/** prefixOf returns the group of an event type name: its first part. */
export function prefixOf(name) {
  const i = name.indexOf(".");
  return i < 0 ? name : name.slice(0, i);
}

/** groupTypes groups event types by prefix, in name order. */
export function groupTypes(types) {
  const groups = new Map();
  for (const t of types) {
    const p = prefixOf(t.name);
    if (!groups.has(p)) groups.set(p, []);
    groups.get(p).push(t);
  }
  return [...groups.entries()].sort(([a], [b]) => a.localeCompare(b));
}

/** matchesSearch reports whether an event type matches a search text. */
export function matchesSearch(t, q) {
  const s = q.trim().toLowerCase();
  return !s || t.name.toLowerCase().includes(s) || (t.description || "").toLowerCase().includes(s);
}

/**
 * Catalog lists the app's event types. With operator set (the console), it
 * names the shared catalog the app belongs to, marks each type shared or
 * the app's own, and filters by that.
 */
export function Catalog({ api, operator = false }) {
  const [types, setTypes] = useState(null);
  const [shared, setShared] = useState(null);
  const [error, setError] = useState("");
  const [q, setQ] = useState("");
  const [scope, setScope] = useState("all");
  const id = useIds("catalog-search", "catalog-scope");
  useEffect(() => {
    loadCatalog(api).then(setTypes, (e) => setError(e.message));
    if (operator) api.gql(SHARED_CATALOG).then((d) => setShared(d.viewer.app.catalog), (e) => setError(e.message));
  }, [api, operator]);
  const shown = (types || []).filter((t) => matchesSearch(t, q) && inScope(t, scope));
  return (
    <section aria-labelledby="catalog-title">
      <div class="section-head">
        <h1 id="catalog-title">Event catalog</h1>
      </div>
      {operator ? (
        <p class="lead" data-testid="catalog-shared">
          {shared ? (
            <>
              This app publishes the event types of the shared catalog <strong data-testid="catalog-name">{shared.name}</strong>
              {shared.isDefault ? " (every app's unless an administrator moves it)" : ""}, which are defined once for all its apps, and the types added for this app only. A type of
              this app's own takes the place of a shared one with the same name.
            </>
          ) : (
            "Loading the catalog…"
          )}
        </p>
      ) : (
        <p class="lead">The events you can receive. Every webhook's body is an envelope whose data field holds the payload shown here.</p>
      )}
      <div class="catalog-controls">
        <Field id={id["catalog-search"]} label="Search events" class="search">
          {(p) => <input {...p} type="search" value={q} onInput={(e) => setQ(e.currentTarget.value)} data-testid="catalog-search" autocomplete="off" />}
        </Field>
        {operator && (
          <Field id={id["catalog-scope"]} label="Show">
            {(p) => (
              <select {...p} value={scope} onChange={(e) => setScope(e.currentTarget.value)} data-testid="catalog-scope">
                {SCOPES.map(([v, label]) => (
                  <option value={v}>{label}</option>
                ))}
              </select>
            )}
          </Field>
        )}
      </div>
      <Notice kind="error">{error}</Notice>
      {types === null ? (
        <p aria-busy="true">Loading the catalog…</p>
      ) : shown.length === 0 ? (
        <p class="empty card">{q.trim() ? `No event matches "${q}".` : scope === "own" ? "This app has no event types of its own." : "No event types."}</p>
      ) : (
        <div data-testid="catalog">
          {groupTypes(shown).map(([prefix, list]) => (
            <section class="catalog-group" aria-labelledby={`group-${prefix}`} data-testid="catalog-group" data-prefix={prefix}>
              <h2 id={`group-${prefix}`} class="group-title">
                {prefix} <span class="hint">{list.length === 1 ? "1 event" : `${list.length} events`}</span>
              </h2>
              <ul class="catalog">
                {list.map((t) => (
                  <li class="card event-type" data-testid="event-type" data-name={t.name} data-shared={String(Boolean(t.shared))}>
                    <h3>
                      <code>{t.name}</code>
                      {operator && (
                        <>
                          {" "}
                          <span class={`badge${t.shared ? "" : " badge-own"}`} data-testid="event-type-origin">
                            {t.builtIn ? "Herald's own" : t.shared ? "Shared" : "This app only"}
                          </span>
                        </>
                      )}
                    </h3>
                    <p>{t.description || "No description."}</p>
                    <details class="example">
                      <summary>
                        Example and schema<span class="sr-only"> of {t.name}</span>
                      </summary>
                      <div class="event-type-docs">
                        <div>
                          <h4>Example payload</h4>
                          {t.example ? <Json value={t.example} label={`Example payload of ${t.name}`} /> : <p class="hint">No example.</p>}
                        </div>
                        <div>
                          <h4>JSON Schema</h4>
                          {t.jsonSchema ? <Json value={t.jsonSchema} label={`JSON Schema of ${t.name}`} /> : <p class="hint">Any JSON object.</p>}
                        </div>
                      </div>
                    </details>
                  </li>
                ))}
              </ul>
            </section>
          ))}
        </div>
      )}
    </section>
  );
}
