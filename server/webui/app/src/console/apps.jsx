// The apps: a searchable list with each app's health at a glance,
// creating and renaming them, opening a customer's portal, and finding
// the app of an event or delivery ID.
import { useCallback, useState } from "preact/hooks";
import { ApiError, fieldErrors } from "../api.js";
import { CopyButton, Dialog, Field, Notice, fmtPct, fmtTime, useIds } from "../ui.jsx";
import { Pager, usePages } from "../paging.jsx";
import { plural } from "../words.js";
import { go } from "./route.js";

const APPS = `query Apps($first: Int, $last: Int, $after: Cursor, $before: Cursor, $where: AppWhereInput) {
  apps(first: $first, last: $last, after: $after, before: $before, orderBy: {field: NAME}, where: $where) {
    totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { node { id name createdAt catalog { name isDefault }
      stats(window: "24h", bucket: "1h") { total { attempts { total } deliveries { total succeeded failed } deliverySuccessRate } }
      backlog { unfinished due oldestDueAt }
      endpointSummary { total needingAttention }
    } }
  }
}`;
const CREATE = `mutation CreateApp($in: CreateAppInput!) { createApp(input: $in) { id name } }`;
const RENAME = `mutation RenameApp($id: ID!, $name: String!) { updateApp(id: $id, input: {name: $name}) { id name } }`;
const LOCATE = `query Locate($id: ID!) { locate(id: $id) { id type app { id name } } }`;
export const OPEN_PORTAL = `mutation OpenPortal($app: ID!, $in: CreatePortalSessionInput!) { createPortalSession(appId: $app, input: $in) { url expiresAt } }`;

export function Apps({ api }) {
  const [q, setQ] = useState("");
  const [search, setSearch] = useState("");
  const [dialog, setDialog] = useState(null);
  const [info, setInfo] = useState("");
  const id = useIds("app-search");
  const load = useCallback(
    (vars) => api.gql(APPS, { ...vars, where: search ? { nameContainsFold: search } : null }).then((d) => d.apps),
    [api, search],
  );
  const pages = usePages(load, search);
  const rows = pages.page ? pages.page.rows : null;
  return (
    <section aria-labelledby="apps-title">
      <div class="section-head">
        <h1 id="apps-title">Apps</h1>
        <button type="button" class="btn btn-primary" onClick={() => setDialog({ kind: "create" })} data-testid="create-app">
          Create app
        </button>
      </div>
      <p class="lead">Each app is one of your products or tenants, with its own endpoints, events, keys and customer portal.</p>
      <Locate api={api} />
      <form
        class="filters card"
        role="search"
        aria-label="Find apps"
        onSubmit={(e) => {
          e.preventDefault();
          setSearch(q.trim());
        }}
      >
        <Field id={id["app-search"]} label="App name" class="field-wide">
          {(p) => (
            <span class="search-row">
              <input {...p} type="search" value={q} onInput={(e) => setQ(e.currentTarget.value)} data-testid="app-search" autocomplete="off" />
              <button type="submit" class="btn">
                Search
              </button>
            </span>
          )}
        </Field>
      </form>
      <Notice kind="error">{pages.error}</Notice>
      <Notice kind="info" onDismiss={() => setInfo("")}>
        {info}
      </Notice>
      <div class="card table-card">
        <table class="table rows" data-testid="apps">
          <caption class="sr-only">Apps and their last 24 hours</caption>
          <thead>
            <tr>
              <th scope="col">App</th>
              <th scope="col" class="num">
                Webhooks, 24 h
              </th>
              <th scope="col" class="num">
                Failed
              </th>
              <th scope="col" class="num">
                Waiting
              </th>
              <th scope="col">Endpoints</th>
              <th scope="col">
                <span class="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {(rows || []).map((a) => {
              const t = a.stats.total;
              const failRate = t.deliveries.total ? t.deliveries.failed / t.deliveries.total : null;
              const attention = a.endpointSummary.needingAttention;
              return (
                <tr data-app-id={a.id} data-testid="app-row">
                  <td data-label="App">
                    <a href={`#/apps/${encodeURIComponent(a.id)}/overview`} class="strong" data-testid="open-app">
                      {a.name}
                    </a>
                    <span class="hint block mono">{a.id}</span>
                    {a.catalog && !a.catalog.isDefault && (
                      <span class="hint block" data-testid="app-catalog">
                        Catalog: {a.catalog.name}
                      </span>
                    )}
                  </td>
                  <td class="num" data-label="Webhooks, 24 h" data-testid="app-deliveries">
                    {t.deliveries.total.toLocaleString()}
                  </td>
                  <td class={`num${failRate ? " bad" : ""}`} data-label="Failed" data-testid="app-failure-rate" data-value={failRate ?? ""}>
                    {failRate === null ? "—" : fmtPct(failRate)}
                  </td>
                  <td class="num" data-label="Waiting" data-testid="app-backlog" data-value={a.backlog.unfinished}>
                    {a.backlog.unfinished.toLocaleString()}
                    {a.backlog.oldestDueAt && <span class="hint block">since {fmtTime(a.backlog.oldestDueAt)}</span>}
                  </td>
                  <td data-label="Endpoints" data-testid="app-endpoints" data-attention={attention}>
                    {plural(a.endpointSummary.total, "endpoint")}
                    {attention > 0 && <span class="health health-attention block">{attention} need attention</span>}
                  </td>
                  <td class="actions">
                    <button type="button" class="btn btn-small" onClick={() => setDialog({ kind: "portal", app: a })} data-testid="open-portal">
                      Open portal<span class="sr-only"> of {a.name}</span>
                    </button>
                    <button type="button" class="btn btn-small" onClick={() => setDialog({ kind: "rename", app: a })} data-testid="rename-app">
                      Rename<span class="sr-only"> {a.name}</span>
                    </button>
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
        {rows && rows.length === 0 && <p class="empty">{search ? `No app is called "${search}".` : "No apps yet."}</p>}
        {rows === null && <p aria-busy="true">Loading apps…</p>}
        <Pager pages={pages} what="apps" labels={["First", "Previous", "Next", "Last"]} />
      </div>
      {dialog && dialog.kind === "create" && (
        <NameDialog
          title="Create an app"
          action="Create app"
          onClose={() => setDialog(null)}
          onSave={async (name) => {
            const d = await api.gql(CREATE, { in: { name } });
            setDialog(null);
            go(d.createApp.id, "overview");
          }}
        />
      )}
      {dialog && dialog.kind === "rename" && (
        <NameDialog
          title={`Rename ${dialog.app.name}`}
          action="Rename"
          initial={dialog.app.name}
          onClose={() => setDialog(null)}
          onSave={async (name) => {
            await api.gql(RENAME, { id: dialog.app.id, name });
            setDialog(null);
            setInfo(`The app is now called ${name}.`);
            pages.reload();
          }}
        />
      )}
      {dialog && dialog.kind === "portal" && <PortalLinkDialog api={api} app={dialog.app} onClose={() => setDialog(null)} />}
    </section>
  );
}

/** Locate finds the app of an event, delivery or endpoint ID and opens it there. */
function Locate({ api }) {
  const [q, setQ] = useState("");
  const [error, setError] = useState("");
  const id = useIds("locate").locate;
  return (
    <form
      class="filters card"
      role="search"
      aria-label="Find by ID"
      onSubmit={async (e) => {
        e.preventDefault();
        setError("");
        const s = q.trim();
        if (!s) return;
        try {
          const l = (await api.gql(LOCATE, { id: s })).locate;
          if (l.type === "Endpoint") go(l.app.id, "endpoints");
          else if (l.type === "Event") go(l.app.id, "deliveries", { q: s });
          else if (l.type === "Delivery") go(l.app.id, "deliveries", { q: s, open: s });
          else go(l.app.id, "overview");
        } catch (x) {
          setError(x.code === "NOT_FOUND" ? `No app has anything with the ID ${s}.` : x.message);
        }
      }}
    >
      <Field id={id} label="Find an event, delivery or endpoint by ID, in every app" error={error} class="field-wide">
        {(p) => (
          <span class="search-row">
            <input {...p} type="search" value={q} onInput={(e) => setQ(e.currentTarget.value)} data-testid="locate" autocomplete="off" spellcheck={false} />
            <button type="submit" class="btn" data-testid="locate-go">
              Find
            </button>
          </span>
        )}
      </Field>
    </form>
  );
}

/** NameDialog asks for a name, showing the server's error at the field. */
function NameDialog({ title, action, initial = "", onClose, onSave }) {
  const [name, setName] = useState(initial);
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const id = useIds("app-name")["app-name"];
  return (
    <Dialog title={title} onClose={onClose} testid="app-dialog">
      <form
        novalidate
        onSubmit={async (e) => {
          e.preventDefault();
          setBusy(true);
          try {
            await onSave(name.trim());
          } catch (x) {
            const fe = fieldErrors(x);
            setError(fe["input.name"] || fe.name || x.message);
            document.getElementById(id).focus();
          } finally {
            setBusy(false);
          }
        }}
      >
        <Field id={id} label="Name" error={error}>
          {(p) => <input {...p} value={name} onInput={(e) => setName(e.currentTarget.value)} data-testid="app-name-input" autocomplete="off" />}
        </Field>
        <div class="dialog-actions">
          <button type="button" class="btn" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" class="btn btn-primary" disabled={busy} data-testid="save-app">
            {action}
          </button>
        </div>
      </form>
    </Dialog>
  );
}

/** PortalLinkDialog makes a short-lived portal link for one of the app's customers. */
export function PortalLinkDialog({ api, app, onClose }) {
  const [link, setLink] = useState(null);
  const [error, setError] = useState("");
  const [readOnly, setReadOnly] = useState(false);
  const [who, setWho] = useState("");
  const id = useIds("who").who;
  return (
    <Dialog title={`Open the portal of ${app.name}`} onClose={onClose} testid="portal-link-dialog">
      <p>
        A link to the customer portal, valid for one hour, as your backend would create for a customer. Whoever has it can manage the app's
        endpoints.
      </p>
      <Field id={id} label="Label (optional)" hint="Shown in the app's list of portal sessions, such as the customer's name.">
        {(p) => <input {...p} value={who} onInput={(e) => setWho(e.currentTarget.value)} autocomplete="off" />}
      </Field>
      <label class="check">
        <input type="checkbox" checked={readOnly} onChange={(e) => setReadOnly(e.currentTarget.checked)} />
        <span>Read only</span>
      </label>
      <Notice kind="error">{error}</Notice>
      {link ? (
        <div class="secret-row" data-testid="portal-link">
          <a class="btn btn-primary" href={link.url} target="_blank" rel="noopener noreferrer" data-testid="portal-url">
            Open the portal
          </a>
          <CopyButton text={link.url} label="Copy link" testid="copy-portal-link" />
          <span class="hint">Works until {fmtTime(link.expiresAt)}.</span>
        </div>
      ) : (
        <div class="dialog-actions">
          <button
            type="button"
            class="btn btn-primary"
            data-testid="create-portal-link"
            onClick={async () => {
              try {
                const d = await api.gql(OPEN_PORTAL, { app: app.id, in: { expiresIn: "1h", readOnly, name: who.trim() || "Opened from the console" } });
                setLink(d.createPortalSession);
              } catch (x) {
                setError(x instanceof ApiError ? x.message : String(x));
              }
            }}
          >
            Create link
          </button>
        </div>
      )}
    </Dialog>
  );
}
