// The event catalog: every event type with its description, example
// payload and JSON Schema.
import { useEffect, useState } from "preact/hooks";
import { Json, Notice } from "./ui.jsx";

const CATALOG = `query PortalCatalog {
  eventTypes(first: 100, orderBy: {field: NAME}, where: {archivedAtIsNil: true}) {
    edges { node { id name description example jsonSchema builtIn } }
  }
}`;

/** loadCatalog returns the app's event types that can be published. */
export function loadCatalog(api) {
  return api.gql(CATALOG).then((d) => d.eventTypes.edges.map((e) => e.node));
}

export function Catalog({ api }) {
  const [types, setTypes] = useState(null);
  const [error, setError] = useState("");
  useEffect(() => {
    loadCatalog(api).then(setTypes, (e) => setError(e.message));
  }, [api]);
  return (
    <section aria-labelledby="catalog-title">
      <div class="section-head">
        <h1 id="catalog-title">Event catalog</h1>
      </div>
      <p class="lead">The events you can receive. Every webhook's body is an envelope whose data field holds the payload shown here.</p>
      <Notice kind="error">{error}</Notice>
      {types === null ? (
        <p aria-busy="true">Loading the catalog…</p>
      ) : (
        <ul class="catalog" data-testid="catalog">
          {types.map((t) => (
            <li class="card event-type" data-testid="event-type" data-name={t.name}>
              <h2>
                <code>{t.name}</code>
              </h2>
              <p>{t.description || "No description."}</p>
              <div class="event-type-docs">
                <div>
                  <h3>Example payload</h3>
                  {t.example ? <Json value={t.example} label={`Example payload of ${t.name}`} /> : <p class="hint">No example.</p>}
                </div>
                <div>
                  <h3>JSON Schema</h3>
                  {t.jsonSchema ? <Json value={t.jsonSchema} label={`JSON Schema of ${t.name}`} /> : <p class="hint">Any JSON object.</p>}
                </div>
              </div>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
