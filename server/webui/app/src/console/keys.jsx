// An app's API keys: who uses them, what they may do, creating one (with
// scopes and an expiry; the token is shown once) and revoking one.
import { useCallback, useState } from "preact/hooks";
import { fieldErrors } from "../api.js";
import { Confirm, CopyButton, Dialog, Field, Notice, fmtTime, focusFirstInvalid, useIds } from "../ui.jsx";
import { Pager, usePages } from "../paging.jsx";

const KEYS = `query Keys($first: Int, $last: Int, $after: Cursor, $before: Cursor, $where: APIKeyWhereInput) {
  apiKeys(first: $first, last: $last, after: $after, before: $before, orderBy: {field: CREATED_AT, direction: DESC}, where: $where) {
    totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { node { id name prefix admin scopes createdAt expiresAt lastUsedAt revokedAt } }
  }
}`;
const CREATE = `mutation CreateKey($app: ID, $in: CreateAPIKeyInput!) { createAPIKey(appId: $app, input: $in) { token apiKey { id name } } }`;
const REVOKE = `mutation RevokeKey($id: ID!) { revokeAPIKey(id: $id) { id revokedAt } }`;

/** SCOPES are what a restricted key may be allowed, with what each means. */
const SCOPES = [
  ["EVENTS_PUBLISH", "Publish events", "for a backend that only sends events"],
  ["EVENTS_READ", "Read events and deliveries", "their history, statistics and live feeds"],
  ["DELIVERIES_WRITE", "Retry and replay deliveries", ""],
  ["ENDPOINTS_READ", "Read endpoints", ""],
  ["ENDPOINTS_WRITE", "Manage endpoints", "add, change, test and delete them"],
  ["CATALOG_READ", "Read the event catalog", ""],
  ["CATALOG_WRITE", "Manage the event catalog", ""],
  ["PORTAL_SESSIONS", "Open customer portals", "create and end portal sessions"],
];
const SCOPE_LABEL = Object.fromEntries(SCOPES.map(([k, l]) => [k, l]));
const EXPIRIES = [
  ["", "Never"],
  ["24h", "In a day"],
  ["720h", "In 30 days"],
  ["2160h", "In 90 days"],
  ["8760h", "In a year"],
];

export function Keys({ api, appId, viewer }) {
  const [dialog, setDialog] = useState(null);
  const [info, setInfo] = useState("");
  const load = useCallback(
    (vars) => api.gql(KEYS, { ...vars, where: { kind: "API_KEY", hasAppWith: [{ id: appId }] } }).then((d) => d.apiKeys),
    [api, appId],
  );
  const pages = usePages(load, appId);
  const rows = pages.page ? pages.page.rows : null;
  return (
    <section aria-labelledby="keys-title">
      <div class="section-head">
        <h1 id="keys-title">API keys</h1>
        {viewer.isAdmin && (
          <button type="button" class="btn btn-primary" onClick={() => setDialog({ kind: "create" })} data-testid="create-key">
            Create key
          </button>
        )}
      </div>
      <p class="lead">The keys your services use to call Herald for this app. Give each service its own key with only the scopes it needs.</p>
      <Notice kind="info" onDismiss={() => setInfo("")} testid="keys-info">
        {info}
      </Notice>
      <Notice kind="error">{pages.error}</Notice>
      <div class="card table-card">
        <table class="table rows" data-testid="keys">
          <caption class="sr-only">API keys, newest first</caption>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">May</th>
              <th scope="col">Created</th>
              <th scope="col">Last used</th>
              <th scope="col">Expires</th>
              <th scope="col">
                <span class="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {(rows || []).map((k) => (
              <tr data-key-id={k.id} data-testid="key-row" data-revoked={k.revokedAt ? "true" : "false"}>
                <td data-label="Name">
                  <span class="strong">{k.name}</span>
                  <span class="hint block mono">{k.prefix}…</span>
                </td>
                <td data-label="May">{k.admin ? "Everything, in every app" : k.scopes ? k.scopes.map((s) => SCOPE_LABEL[s] || s).join(", ") : "Everything in this app"}</td>
                <td data-label="Created">{fmtTime(k.createdAt)}</td>
                <td data-label="Last used">{k.lastUsedAt ? fmtTime(k.lastUsedAt) : "Never"}</td>
                <td data-label="Expires">{k.revokedAt ? <span class="bad">Revoked {fmtTime(k.revokedAt)}</span> : k.expiresAt ? fmtTime(k.expiresAt) : "Never"}</td>
                <td class="actions">
                  {viewer.isAdmin && !k.revokedAt && k.id !== viewer.apiKey.id && (
                    <button type="button" class="btn btn-small btn-danger" onClick={() => setDialog({ kind: "revoke", key: k })} data-testid="revoke-key">
                      Revoke<span class="sr-only"> {k.name}</span>
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {rows && rows.length === 0 && <p class="empty">No keys.</p>}
        {rows === null && <p aria-busy="true">Loading keys…</p>}
        <Pager pages={pages} what="keys" />
      </div>
      {dialog && dialog.kind === "create" && (
        <CreateKey
          api={api}
          appId={appId}
          onClose={() => setDialog(null)}
          onCreated={(token, key) => {
            setDialog({ kind: "token", token, key });
            pages.reload();
          }}
        />
      )}
      {dialog && dialog.kind === "token" && (
        <Dialog title={`${dialog.key.name} was created`} onClose={() => setDialog(null)} testid="token-dialog">
          <p>This is the key's token. It is shown only now: copy it into your service's configuration.</p>
          <pre class="code" data-testid="token">
            {dialog.token}
          </pre>
          <CopyButton text={dialog.token} label="Copy token" testid="copy-token" />
          <div class="dialog-actions">
            <button type="button" class="btn" onClick={() => setDialog(null)} data-testid="token-done">
              Done
            </button>
          </div>
        </Dialog>
      )}
      {dialog && dialog.kind === "revoke" && (
        <Confirm
          title={`Revoke ${dialog.key.name}?`}
          action="Revoke key"
          danger
          testid="confirm-revoke"
          onClose={() => setDialog(null)}
          onConfirm={async () => {
            await api.gql(REVOKE, { id: dialog.key.id });
            setDialog(null);
            setInfo(`${dialog.key.name} was revoked: it stopped working at once.`);
            pages.reload();
          }}
        >
          It stops working at once, and its live connections close. This cannot be undone.
        </Confirm>
      )}
    </section>
  );
}

function CreateKey({ api, appId, onClose, onCreated }) {
  const [name, setName] = useState("");
  const [full, setFull] = useState(false);
  const [scopes, setScopes] = useState(["EVENTS_PUBLISH"]);
  const [expires, setExpires] = useState("");
  const [errs, setErrs] = useState({});
  const [error, setError] = useState("");
  const id = useIds("k-name", "k-exp", "k-scopes");
  return (
    <Dialog title="Create an API key" onClose={onClose} testid="key-form">
      <form
        novalidate
        onSubmit={async (e) => {
          e.preventDefault();
          const form = e.currentTarget;
          setError("");
          const input = { name: name.trim(), scopes: full ? null : scopes };
          if (expires) input.expiresIn = expires;
          try {
            const d = await api.gql(CREATE, { app: appId, in: input });
            onCreated(d.createAPIKey.token, d.createAPIKey.apiKey);
          } catch (x) {
            const fe = fieldErrors(x);
            setErrs(fe);
            if (!Object.keys(fe).length) setError(x.message);
            setTimeout(() => focusFirstInvalid(form));
          }
        }}
      >
        <Notice kind="error">{error}</Notice>
        <Field id={id["k-name"]} label="Name" hint="Such as the service that uses it." error={errs["input.name"]}>
          {(p) => <input {...p} value={name} onInput={(e) => setName(e.currentTarget.value)} data-testid="key-name" autocomplete="off" />}
        </Field>
        <fieldset class={`fieldset${errs["input.scopes"] ? " field-invalid" : ""}`} data-testid="key-scopes">
          <legend>What it may do</legend>
          {errs["input.scopes"] && <p class="field-error">{errs["input.scopes"]}</p>}
          <label class="check">
            <input type="checkbox" checked={full} onChange={(e) => setFull(e.currentTarget.checked)} data-testid="key-full" />
            <span>
              <strong>Everything in this app</strong>
            </span>
          </label>
          {SCOPES.map(([k, label, hint]) => (
            <label class="check">
              <input
                type="checkbox"
                checked={full || scopes.includes(k)}
                disabled={full}
                onChange={(e) => setScopes((s) => (e.currentTarget.checked ? [...s, k] : s.filter((x) => x !== k)))}
                data-testid={`scope-${k}`}
              />
              <span>
                {label}
                {hint && <span class="hint">, {hint}</span>}
              </span>
            </label>
          ))}
        </fieldset>
        <Field id={id["k-exp"]} label="Expires" error={errs["input.expiresIn"]}>
          {(p) => (
            <select {...p} value={expires} onChange={(e) => setExpires(e.currentTarget.value)} data-testid="key-expires">
              {EXPIRIES.map(([v, l]) => (
                <option value={v}>{l}</option>
              ))}
            </select>
          )}
        </Field>
        <div class="dialog-actions">
          <button type="button" class="btn" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" class="btn btn-primary" data-testid="save-key">
            Create key
          </button>
        </div>
      </form>
    </Dialog>
  );
}
