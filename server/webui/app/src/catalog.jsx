// The event catalog: every event type with its description, example
// payload and JSON Schema, grouped by the first part of their names
// (order.created and order.paid under "order") and searchable. Operators
// also see which catalog the app shares and which types are the app's own,
// the archived types, and, with the right to manage the catalog, add,
// edit, archive and unarchive types (the shared catalog's with an admin
// key only). The customer portal shows the same list with no controls.
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { Confirm, Dialog, Field, Json, Notice, fmtTime, focusFirstInvalid, useIds } from "./ui.jsx";
import { attention, mayChange, prettyJSON, problems, readForm, say } from "./catalog-form.js";

const CATALOG = `query Catalog($after: Cursor, $where: EventTypeWhereInput) {
  eventTypes(first: 100, after: $after, orderBy: {field: NAME}, where: $where) {
    pageInfo { hasNextPage endCursor }
    edges { node { id name description example jsonSchema builtIn shared archivedAt } }
  }
}`;

/** loadTypes returns every event type of the app: those that can be published, or (archived) those that cannot. */
async function loadTypes(api, archived) {
  const out = [];
  let after = null;
  for (let page = 0; page < 50; page++) {
    const d = await api.gql(CATALOG, { after, where: archived ? { archivedAtNotNil: true } : { archivedAtIsNil: true } });
    out.push(...d.eventTypes.edges.map((e) => e.node));
    if (!d.eventTypes.pageInfo.hasNextPage) break;
    after = d.eventTypes.pageInfo.endCursor;
  }
  return out;
}

/** loadCatalog returns every event type of the app that can be published. */
export function loadCatalog(api) {
  return loadTypes(api, false);
}

const SHARED_CATALOG = `query SharedCatalog { viewer { app { name catalog { id name isDefault } } } }`;
const CREATE = `mutation CreateEventType($catalog: ID, $in: CreateEventTypeInput!) { createEventType(catalogId: $catalog, input: $in) { id name } }`;
const UPDATE = `mutation UpdateEventType($id: ID!, $in: UpdateEventTypeInput!) { updateEventType(id: $id, input: $in) { id name } }`;
const ARCHIVE = `mutation ArchiveEventType($id: ID!) { archiveEventType(id: $id) { id archivedAt } }`;
const UNARCHIVE = `mutation UnarchiveEventType($id: ID!) { unarchiveEventType(id: $id) { id archivedAt } }`;

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
 * the app's own, filters by that, and lists the archived types. A key that
 * may manage the catalog (can.editCatalog) also gets the controls that
 * change it, for the types it may change (mayChange); viewer.isAdmin
 * decides whether that includes the shared catalog's.
 */
export function Catalog({ api, operator = false, viewer = null, can = null }) {
  const who = { manage: Boolean(operator && can && can.editCatalog), admin: Boolean(operator && viewer && viewer.isAdmin) };
  const [types, setTypes] = useState(null);
  const [archived, setArchived] = useState([]);
  const [app, setApp] = useState(null);
  const [error, setError] = useState("");
  const [info, setInfo] = useState("");
  const [dialog, setDialog] = useState(null);
  const [q, setQ] = useState("");
  const [scope, setScope] = useState("all");
  const id = useIds("catalog-search", "catalog-scope");
  const reload = useCallback(() => {
    loadTypes(api, false).then(setTypes, (e) => setError(e.message));
    if (operator) loadTypes(api, true).then(setArchived, (e) => setError(e.message));
  }, [api, operator]);
  useEffect(() => {
    reload();
    if (operator) api.gql(SHARED_CATALOG).then((d) => setApp(d.viewer.app), (e) => setError(e.message));
  }, [api, operator]);
  const shared = app && app.catalog;
  const keep = (t) => matchesSearch(t, q) && inScope(t, scope);
  const shown = (types || []).filter(keep);
  const shownArchived = archived.filter(keep);
  const done = (message) => {
    setDialog(null);
    setError("");
    setInfo(message);
    reload();
  };
  const unarchive = async (t) => {
    setInfo("");
    try {
      await api.gql(UNARCHIVE, { id: t.id });
      done(`${t.name} was unarchived: it can be published again.`);
    } catch (x) {
      setError(say(x.message));
    }
  };
  const card = (t) => (
    <TypeCard
      t={t}
      operator={operator}
      onEdit={mayChange(t, who) && !t.archivedAt ? () => setDialog({ kind: "edit", type: t }) : null}
      onArchive={mayChange(t, who) && !t.archivedAt ? () => setDialog({ kind: "archive", type: t }) : null}
      onUnarchive={mayChange(t, who) && t.archivedAt ? () => unarchive(t) : null}
    />
  );
  return (
    <section aria-labelledby="catalog-title">
      <div class="section-head">
        <h1 id="catalog-title">Event catalog</h1>
        {who.manage && (
          <button type="button" class="btn btn-primary" onClick={() => setDialog({ kind: "create" })} disabled={!app} data-testid="add-event-type">
            Add event type
          </button>
        )}
      </div>
      {operator ? (
        <p class="lead" data-testid="catalog-shared">
          {shared ? (
            <>
              This app publishes the event types of the shared catalog <strong data-testid="catalog-name">{shared.name}</strong>
              {shared.isDefault ? " (every app's unless an administrator moves it)" : ""}, which are defined once for all its apps, and the types added for this app only.
              {who.manage && !who.admin ? " Only an administrator changes the shared catalog's types." : ""}
            </>
          ) : (
            "Loading the catalog…"
          )}
        </p>
      ) : (
        <p class="lead">The events you can receive. Every webhook's body is an envelope whose data field holds the payload shown here.</p>
      )}
      <Notice kind="info" onDismiss={() => setInfo("")} testid="catalog-info">
        {info}
      </Notice>
      <Notice kind="error" onDismiss={() => setError("")} testid="catalog-error">
        {error}
      </Notice>
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
              <ul class="catalog">{list.map(card)}</ul>
            </section>
          ))}
        </div>
      )}
      {operator && shownArchived.length > 0 && (
        <section class="catalog-group catalog-archived" aria-labelledby="archived-title" data-testid="archived">
          <h2 id="archived-title" class="group-title">
            Archived <span class="hint">{shownArchived.length === 1 ? "1 event" : `${shownArchived.length} events`}</span>
          </h2>
          <p class="hint">Archived types cannot be published. Endpoints keep their subscriptions to them, and unarchiving a type lets it be published again.</p>
          <ul class="catalog">{shownArchived.map(card)}</ul>
        </section>
      )}
      {dialog && (dialog.kind === "create" || dialog.kind === "edit") && (
        <TypeForm api={api} type={dialog.type} admin={who.admin} app={app} onClose={() => setDialog(null)} onSaved={done} />
      )}
      {dialog && dialog.kind === "archive" && (
        <Confirm
          title={`Archive ${dialog.type.name}?`}
          action="Archive"
          danger
          testid="confirm-archive"
          onClose={() => setDialog(null)}
          onConfirm={async () => {
            try {
              await api.gql(ARCHIVE, { id: dialog.type.id });
            } catch (x) {
              throw new Error(say(x.message));
            }
            done(`${dialog.type.name} was archived: it can no longer be published. It is listed under Archived.`);
          }}
        >
          {dialog.type.shared ? `No app of the shared catalog ${shared ? shared.name : ""} can publish it once it is archived.` : "This app cannot publish it once it is archived."} Endpoints keep
          their subscriptions to it, and you can unarchive it at any time.
        </Confirm>
      )}
    </section>
  );
}

/** TypeCard shows one event type, with the controls the viewer may use (those given). */
function TypeCard({ t, operator, onEdit, onArchive, onUnarchive }) {
  return (
    <li class="card event-type" data-testid={t.archivedAt ? "archived-type" : "event-type"} data-name={t.name} data-shared={String(Boolean(t.shared))}>
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
      {t.archivedAt && <p class="hint">Archived {fmtTime(t.archivedAt)}</p>}
      <p data-testid="type-description">{t.description || "No description."}</p>
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
      {(onEdit || onArchive || onUnarchive) && (
        <div class="event-type-actions">
          {onEdit && (
            <button type="button" class="btn btn-small" onClick={onEdit} data-testid="edit-event-type">
              Edit<span class="sr-only"> {t.name}</span>
            </button>
          )}
          {onArchive && (
            <button type="button" class="btn btn-small btn-danger" onClick={onArchive} data-testid="archive-event-type">
              Archive<span class="sr-only"> {t.name}</span>
            </button>
          )}
          {onUnarchive && (
            <button type="button" class="btn btn-small" onClick={onUnarchive} data-testid="unarchive-event-type">
              Unarchive<span class="sr-only"> {t.name}</span>
            </button>
          )}
        </div>
      )}
    </li>
  );
}

/**
 * TypeForm adds an event type (type unset) or edits one's description,
 * example and schema. An admin key chooses where a new type goes: the
 * app's own types or the app's shared catalog. Invalid JSON is caught
 * before sending; the server's objections appear at their fields; after a
 * failed save the focus moves to the first field with an error.
 */
function TypeForm({ api, type, admin, app, onClose, onSaved }) {
  const initial = useRef(type ? { description: type.description || "", example: prettyJSON(type.example), jsonSchema: prettyJSON(type.jsonSchema) } : null).current;
  const [v, setV] = useState(() => ({ name: "", where: "own", description: "", example: "", jsonSchema: "", ...(initial || {}) }));
  const [errs, setErrs] = useState({});
  const [formError, setFormError] = useState("");
  const [busy, setBusy] = useState(false);
  const [attempt, setAttempt] = useState(0);
  const form = useRef(null);
  const id = useIds("et-name", "et-where", "et-description", "et-example", "et-schema");
  const set = (k) => (e) => setV((old) => ({ ...old, [k]: e.currentTarget.value }));
  useEffect(() => {
    if (attempt) focusFirstInvalid(form.current);
  }, [attempt]);
  const catalog = app && app.catalog;

  const submit = async (e) => {
    e.preventDefault();
    setFormError("");
    const { input, errors } = readForm(v, initial);
    if (Object.keys(errors).length) {
      setErrs(errors);
      setFormError(attention(errors));
      setAttempt((n) => n + 1);
      return;
    }
    const toShared = !type && admin && v.where === "shared";
    setBusy(true);
    try {
      if (type) {
        await api.gql(UPDATE, { id: type.id, in: input });
        onSaved(`${type.name} was saved.`);
      } else {
        await api.gql(CREATE, { catalog: toShared ? catalog.id : null, in: input });
        onSaved(
          toShared
            ? `${input.name} was added to the shared catalog ${catalog.name}: every app in it can publish it now.`
            : `${input.name} was added to the types of ${app.name} only.`,
        );
      }
      return;
    } catch (x) {
      const p = x.errors ? problems(x.errors, type ? type.name : input.name) : { fields: {}, form: x.message };
      setErrs(p.fields);
      setFormError([attention(p.fields), p.form].filter(Boolean).join(" "));
    } finally {
      setBusy(false);
    }
    setAttempt((n) => n + 1);
  };

  const whereErr = errs.where;
  return (
    <Dialog title={type ? `Edit ${type.name}` : "Add an event type"} onClose={onClose} testid="event-type-form" wide>
      <form ref={form} onSubmit={submit} novalidate>
        <Notice kind="error" testid="event-type-form-error">
          {formError}
        </Notice>
        {!type && (
          <Field id={id["et-name"]} label="Name" hint="Two or more lower-case parts separated by dots, such as invoice.paid. It cannot be changed later." error={errs.name}>
            {(p) => <input {...p} value={v.name} onInput={set("name")} data-testid="event-type-name" autocomplete="off" spellcheck={false} />}
          </Field>
        )}
        {!type && admin && catalog && (
          <fieldset class={`fieldset${whereErr ? " field-invalid" : ""}`} data-testid="event-type-where" aria-describedby={whereErr ? `${id["et-where"]}-error` : undefined}>
            <legend>Add it to</legend>
            {whereErr && (
              <p class="field-error" id={`${id["et-where"]}-error`} data-testid="field-error">
                {whereErr}
              </p>
            )}
            <label class="check">
              <input type="radio" name={id["et-where"]} value="own" checked={v.where === "own"} onChange={set("where")} aria-invalid={whereErr ? "true" : undefined} data-testid="where-own" />
              <span>
                This app only<span class="hint">: {app.name} publishes it, no other app</span>
              </span>
            </label>
            <label class="check">
              <input type="radio" name={id["et-where"]} value="shared" checked={v.where === "shared"} onChange={set("where")} data-testid="where-shared" />
              <span>
                The shared catalog {catalog.name}
                <span class="hint">: every app in it can publish it</span>
              </span>
            </label>
          </fieldset>
        )}
        <Field id={id["et-description"]} label="Description (optional)" hint="What happened, for the developers who receive it." error={errs.description}>
          {(p) => <textarea {...p} rows="2" value={v.description} onInput={set("description")} data-testid="event-type-description" />}
        </Field>
        <Field id={id["et-example"]} label="Example payload (optional)" hint="JSON: the data of one such event, as integrators will see it in the catalog." error={errs.example}>
          {(p) => <textarea {...p} rows="6" class="mono" value={v.example} onInput={set("example")} data-testid="event-type-example" spellcheck={false} />}
        </Field>
        <Field
          id={id["et-schema"]}
          label="JSON Schema (optional)"
          hint="JSON: the schema every published payload must match (draft 2020-12 or earlier). Empty: any JSON object."
          error={errs.jsonSchema}
        >
          {(p) => <textarea {...p} rows="6" class="mono" value={v.jsonSchema} onInput={set("jsonSchema")} data-testid="event-type-schema" spellcheck={false} />}
        </Field>
        <div class="dialog-actions">
          <button type="button" class="btn" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" class="btn btn-primary" disabled={busy} data-testid="save-event-type">
            {type ? "Save" : "Add event type"}
          </button>
        </div>
      </form>
    </Dialog>
  );
}
