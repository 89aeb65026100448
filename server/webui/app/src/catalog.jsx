// The event catalog: every event type with its description, example
// payload and JSON Schema, grouped by the first part of their names
// (order.created and order.paid under "order") and searchable.
import { useEffect, useState } from "preact/hooks";
import { Field, Json, Notice, useIds } from "./ui.jsx";

const CATALOG = `query Catalog($after: Cursor) {
  eventTypes(first: 100, after: $after, orderBy: {field: NAME}, where: {archivedAtIsNil: true}) {
    pageInfo { hasNextPage endCursor }
    edges { node { id name description example jsonSchema builtIn } }
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

export function Catalog({ api }) {
  const [types, setTypes] = useState(null);
  const [error, setError] = useState("");
  const [q, setQ] = useState("");
  const id = useIds("catalog-search");
  useEffect(() => {
    loadCatalog(api).then(setTypes, (e) => setError(e.message));
  }, [api]);
  const shown = (types || []).filter((t) => matchesSearch(t, q));
  return (
    <section aria-labelledby="catalog-title">
      <div class="section-head">
        <h1 id="catalog-title">Event catalog</h1>
      </div>
      <p class="lead">The events you can receive. Every webhook's body is an envelope whose data field holds the payload shown here.</p>
      <Field id={id["catalog-search"]} label="Search events" class="search">
        {(p) => <input {...p} type="search" value={q} onInput={(e) => setQ(e.currentTarget.value)} data-testid="catalog-search" autocomplete="off" />}
      </Field>
      <Notice kind="error">{error}</Notice>
      {types === null ? (
        <p aria-busy="true">Loading the catalog…</p>
      ) : shown.length === 0 ? (
        <p class="empty card">No event matches "{q}".</p>
      ) : (
        <div data-testid="catalog">
          {groupTypes(shown).map(([prefix, list]) => (
            <section class="catalog-group" aria-labelledby={`group-${prefix}`} data-testid="catalog-group" data-prefix={prefix}>
              <h2 id={`group-${prefix}`} class="group-title">
                {prefix} <span class="hint">{list.length === 1 ? "1 event" : `${list.length} events`}</span>
              </h2>
              <ul class="catalog">
                {list.map((t) => (
                  <li class="card event-type" data-testid="event-type" data-name={t.name}>
                    <h3>
                      <code>{t.name}</code>
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
