// Endpoints: the list with health, the last day's delivery rate and pace,
// and adding, editing, testing, turning on and off, rotating and revealing
// the secret, verifying signatures, statistics and deleting.
import { useCallback, useEffect, useState } from "preact/hooks";
import { Confirm, Dialog, Field, Json, Notice, copyText, fmtMs, fmtPct, fmtTime, useIds } from "./ui.jsx";
import { loadCatalog } from "./catalog.jsx";
import { EndpointForm } from "./endpoint-form/form.jsx";
import { STATS_FIELDS, StatsView } from "./stats.jsx";
import { Verify } from "./verify.jsx";
import { disabled, health, ordering, pace, plural } from "./words.js";

export const ENDPOINT_FIELDS = `id name description type transformation url eventTypes isActive disabledReason disabledAt health timeout
  retryPolicy { maxAttempts initialDelay backoffMultiplier maxDelay }
  ordering filter rateLimit { requests per }
  flow { concurrency maxConcurrency ratePerSecond pausedUntil throttled }
  auth { type token username password headerName headerValue secret }
  headers { name value }
  listener { connected lastSeenAt expiresAt }
  signatureScheme publicKey tls { expiresAt expiresSoon }`;

const LIST = `query Endpoints($after: Cursor) {
  endpoints(first: 100, after: $after, orderBy: {field: CREATED_AT, direction: DESC}) {
    pageInfo { hasNextPage endCursor }
    edges { node { ${ENDPOINT_FIELDS} stats(window: "24h", bucket: "1h") { total { deliveries { total succeeded failed } deliverySuccessRate } } } }
  }
}`;
const UPDATE = `mutation ToggleEndpoint($id: ID!, $in: UpdateEndpointInput!) { updateEndpoint(id: $id, input: $in) { id isActive } }`;
const DELETE = `mutation DeleteEndpoint($id: ID!) { deleteEndpoint(id: $id) { deletedId } }`;
const ROTATE = `mutation RotateSecret($id: ID!) { rotateEndpointSecret(id: $id) { secret endpoint { id previousSecretExpiresAt } } }`;
const REVEAL = `mutation RevealSecret($id: ID!) { revealEndpointSecret(id: $id) { secret } }`;
const TEST = `mutation TestEndpoint($id: ID!, $type: String) {
  testEndpoint(id: $id, input: {eventType: $type}) { delivered statusCode responseBody durationMs error }
}`;
const STATS = `query EndpointStats($id: ID!) { node(id: $id) { ... on Endpoint { id stats(window: "24h", bucket: "1h") { ${STATS_FIELDS} } } } }`;
const LIVE = `subscription EndpointFeed { endpointUpdated { endpointId reason } }`;

/** loadEndpoints returns every endpoint of the app, newest first. */
async function loadEndpoints(api) {
  const out = [];
  let after = null;
  for (let page = 0; page < 50; page++) {
    const d = await api.gql(LIST, { after });
    out.push(...d.endpoints.edges.map((e) => e.node));
    if (!d.endpoints.pageInfo.hasNextPage) break;
    after = d.endpoints.pageInfo.endCursor;
  }
  return out;
}

export function Endpoints({ api, can, onShowDeliveries }) {
  const [list, setList] = useState(null);
  const [catalog, setCatalog] = useState([]);
  const [error, setError] = useState("");
  const [info, setInfo] = useState("");
  const [dialog, setDialog] = useState(null); // {kind, endpoint, ...}

  const load = useCallback(() => loadEndpoints(api).then(setList, (e) => setError(e.message)), [api]);

  useEffect(() => {
    load();
    loadCatalog(api).then(setCatalog, (e) => setError(e.message));
    // Health and figures change as webhooks go out: reload on updates,
    // at most every second.
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
  }, [api, load]);

  const close = useCallback(() => setDialog(null), []);
  const done = (message) => {
    setDialog(null);
    setInfo(message);
    load();
  };
  const act = async (fn, message) => {
    setError("");
    try {
      await fn();
      done(message);
    } catch (e) {
      setError(e.message);
    }
  };
  const reveal = async (ep) => (await api.gql(REVEAL, { id: ep.id })).revealEndpointSecret.secret;

  return (
    <section aria-labelledby="endpoints-title">
      <div class="section-head">
        <h1 id="endpoints-title">Endpoints</h1>
        {can.editEndpoints && (
          <button type="button" class="btn btn-primary" data-testid="add-endpoint" onClick={() => setDialog({ kind: "form" })}>
            Add endpoint
          </button>
        )}
      </div>
      <p class="lead">The URLs that receive your webhooks. Each request is signed with the endpoint's secret so you can check that it came from us.</p>
      <Notice kind="error" onDismiss={() => setError("")} testid="endpoints-error">
        {error}
      </Notice>
      <Notice kind="info" onDismiss={() => setInfo("")} testid="endpoints-info">
        {info}
      </Notice>
      {list === null ? (
        <p aria-busy="true">Loading endpoints…</p>
      ) : list.length === 0 ? (
        <div class="empty card" data-testid="no-endpoints">
          <p class="empty-title">No endpoints yet</p>
          <p>{can.editEndpoints ? "Add an endpoint to start receiving webhooks." : "Nothing is set up to receive webhooks yet."}</p>
        </div>
      ) : (
        <ul class="endpoint-list" data-testid="endpoint-list">
          {list.map((ep) => (
            <EndpointRow
              key={ep.id}
              ep={ep}
              can={can}
              onEdit={() => setDialog({ kind: "form", endpoint: ep })}
              onTest={() => setDialog({ kind: "test", endpoint: ep })}
              onRotate={() => setDialog({ kind: "rotate", endpoint: ep })}
              onDelete={() => setDialog({ kind: "delete", endpoint: ep })}
              onVerify={() => setDialog({ kind: "verify", endpoint: ep })}
              onStats={() => setDialog({ kind: "stats", endpoint: ep })}
              onToggle={() =>
                act(
                  () => api.gql(UPDATE, { id: ep.id, in: { isActive: !ep.isActive } }),
                  `${ep.name} is ${ep.isActive ? "off: it receives nothing until you turn it on" : "on"}.`,
                )
              }
              onDeliveries={() => onShowDeliveries(ep.id)}
            />
          ))}
        </ul>
      )}
      {dialog && dialog.kind === "form" && (
        <EndpointForm
          api={api}
          catalog={catalog}
          endpoint={dialog.endpoint}
          others={list || []}
          onClose={close}
          onSaved={(secret, ep) => {
            if (secret) setDialog({ kind: "secret", endpoint: ep, secret, created: true });
            else done(`${ep.name} was saved.`);
            load();
          }}
        />
      )}
      {dialog && dialog.kind === "secret" && <SecretDialog endpoint={dialog.endpoint} secret={dialog.secret} created={dialog.created} onClose={close} />}
      {dialog && dialog.kind === "verify" && (
        <VerifyDialog endpoint={dialog.endpoint} onReveal={can.editEndpoints ? () => reveal(dialog.endpoint) : null} onClose={close} />
      )}
      {dialog && dialog.kind === "stats" && <StatsDialog api={api} endpoint={dialog.endpoint} onClose={close} />}
      {dialog && dialog.kind === "test" && <TestDialog api={api} endpoint={dialog.endpoint} catalog={catalog} onClose={close} />}
      {dialog && dialog.kind === "rotate" && (
        <Confirm
          title={`Change the secret of ${dialog.endpoint.name}?`}
          action="Change secret"
          testid="confirm-rotate"
          onClose={close}
          onConfirm={async () => {
            const d = await api.gql(ROTATE, { id: dialog.endpoint.id });
            setDialog({ kind: "secret", endpoint: dialog.endpoint, secret: d.rotateEndpointSecret.secret });
          }}
        >
          A new signing secret replaces the current one. For the next 24 hours webhooks are signed with both, so you have time to update your
          receiver.
        </Confirm>
      )}
      {dialog && dialog.kind === "delete" && (
        <Confirm
          title={`Delete ${dialog.endpoint.name}?`}
          action="Delete endpoint"
          danger
          testid="confirm-delete"
          onClose={close}
          onConfirm={async () => {
            await api.gql(DELETE, { id: dialog.endpoint.id });
            done(`${dialog.endpoint.name} was deleted.`);
          }}
        >
          It stops receiving webhooks at once and its waiting webhooks are cancelled. Its history stays visible. This cannot be undone.
        </Confirm>
      )}
    </section>
  );
}

function EndpointRow({ ep, can, onEdit, onTest, onRotate, onDelete, onToggle, onDeliveries, onVerify, onStats }) {
  const [label, help] = health[ep.health] || [ep.health, ""];
  const total = ep.stats.total;
  const sp = pace(ep);
  return (
    <li class="card endpoint" data-testid="endpoint" data-endpoint-id={ep.id} data-health={ep.health}>
      <div class="endpoint-main">
        <h2 class="endpoint-name">{ep.name}</h2>
        {ep.listener ? (
          <ListenerState ep={ep} />
        ) : (
          <p class="endpoint-url">
            <code>{ep.url}</code>
          </p>
        )}
        {ep.description && <p class="endpoint-desc">{ep.description}</p>}
        {ep.publicKey && (
          <p class="endpoint-url" data-testid="public-key">
            Ed25519 public key (verifies signatures): <span class="mono">{ep.publicKey}</span>
          </p>
        )}
        {ep.tls && ep.tls.expiresSoon && (
          <p class="field-error" data-testid="certificate-expiring">
            Its client certificate expires {fmtTime(ep.tls.expiresAt)}: renew it, or webhooks will fail.
          </p>
        )}
        <p class="endpoint-types" data-testid="subscriptions">
          {ep.eventTypes.map((t) => (
            <code class="chip" data-pattern={t}>
              {t === "*" ? "All events" : t.endsWith(".*") ? `All ${t.slice(0, -2)} events` : t}
            </code>
          ))}
          {ep.filter && (
            <span class="chip chip-control" data-testid="filtered">
              Filtered
            </span>
          )}
          {ep.ordering !== "NONE" && (
            <span class="chip chip-control" data-testid="ordered">
              {ordering[ep.ordering]}
            </span>
          )}
        </p>
        {!ep.isActive && (
          <p class="field-error" data-testid="disabled">
            {disabled(ep)}
          </p>
        )}
      </div>
      <dl class="endpoint-stats">
        <div>
          <dt>Health</dt>
          <dd>
            <span class={`health health-${ep.health.toLowerCase()}`} data-testid="health">
              {ep.isActive ? label : "Off"}
            </span>
            <span class="hint block">{ep.isActive ? help : ""}</span>
          </dd>
        </div>
        <div>
          <dt>Delivered, last 24 hours</dt>
          <dd data-testid="success-rate" data-value={total.deliverySuccessRate ?? ""} data-total={total.deliveries.total}>
            {total.deliveries.total ? `${fmtPct(total.deliverySuccessRate)} of ${plural(total.deliveries.total, "webhook")}` : "No webhooks"}
          </dd>
        </div>
        <div>
          <dt>Pace</dt>
          <dd>
            <span class={`pace pace-${sp.state}`} data-testid="pace" data-state={sp.state}>
              {sp.label}
            </span>
            <span class="hint block">{sp.help}</span>
          </dd>
        </div>
      </dl>
      <div class="endpoint-actions">
        <button type="button" class="btn btn-small" onClick={onDeliveries} data-testid="show-deliveries">
          Deliveries<span class="sr-only"> of {ep.name}</span>
        </button>
        <button type="button" class="btn btn-small" onClick={onStats} data-testid="show-stats">
          Statistics<span class="sr-only"> of {ep.name}</span>
        </button>
        <button type="button" class="btn btn-small" onClick={onVerify} data-testid="verify-signatures">
          Verify signatures<span class="sr-only"> of {ep.name}</span>
        </button>
        {can.editEndpoints && (
          <>
            <button type="button" class="btn btn-small" onClick={onTest} data-testid="send-test">
              Send test<span class="sr-only"> to {ep.name}</span>
            </button>
            {!ep.listener && (
              <button type="button" class="btn btn-small" onClick={onEdit} data-testid="edit">
                Edit<span class="sr-only"> {ep.name}</span>
              </button>
            )}
            <button type="button" class="btn btn-small" onClick={onToggle} data-testid="toggle">
              {ep.isActive ? "Turn off" : "Turn on"}
              <span class="sr-only"> {ep.name}</span>
            </button>
            <button type="button" class="btn btn-small" onClick={onRotate} data-testid="rotate">
              Change secret<span class="sr-only"> of {ep.name}</span>
            </button>
            <button type="button" class="btn btn-small btn-danger" onClick={onDelete} data-testid="delete">
              Delete<span class="sr-only"> {ep.name}</span>
            </button>
          </>
        )}
      </div>
    </li>
  );
}

/**
 * ListenerState tells that an endpoint is a listener (herald listen on a
 * developer's machine), whether it is connected, where it forwards, and
 * when it goes away unless it connects again.
 */
function ListenerState({ ep }) {
  const l = ep.listener;
  return (
    <p class="endpoint-url listener" data-testid="listener" data-connected={l.connected ? "true" : "false"}>
      <span class="chip chip-control listener-badge">Listener</span>{" "}
      {l.connected ? (
        <>Connected: herald listen forwards its webhooks to {ep.url}.</>
      ) : (
        <>
          Not connected: its webhooks wait for herald listen to come back
          {l.lastSeenAt ? ` (last seen ${fmtTime(l.lastSeenAt)})` : ""}. It is removed on {fmtTime(l.expiresAt)} unless it does.
        </>
      )}
    </p>
  );
}

/** SecretDialog shows a signing secret, with a copy button and the verification code. */
function SecretDialog({ endpoint, secret, created, onClose }) {
  const [copied, setCopied] = useState("");
  const id = useIds("secret").secret;
  return (
    <Dialog title={created ? `${endpoint.name} was added` : `New secret of ${endpoint.name}`} onClose={onClose} testid="secret-dialog" wide>
      <p>
        This is the endpoint's <strong>signing secret</strong>. Use it to check that webhooks come from us. Keep it safe: anyone who has it can
        sign requests as us.
      </p>
      <div class="secret-row">
        <label for={id} class="sr-only">
          Signing secret
        </label>
        <input id={id} class="mono" readonly value={secret} data-testid="secret" onFocus={(e) => e.currentTarget.select()} />
        <button
          type="button"
          class="btn btn-primary"
          onClick={async () => {
            const el = document.getElementById(id);
            setCopied(await copyText(secret, () => (el.focus(), el.select())));
          }}
          data-testid="copy-secret"
        >
          Copy
        </button>
      </div>
      <p role="status" class="hint" data-testid="copy-status">
        {copied}
      </p>
      <details class="advanced">
        <summary>How to verify signatures</summary>
        <Verify secret={secret} />
      </details>
      <div class="dialog-actions">
        <button type="button" class="btn" onClick={onClose} data-testid="secret-done">
          Done
        </button>
      </div>
    </Dialog>
  );
}

/** VerifyDialog explains signature checks, with the secret once revealed. */
function VerifyDialog({ endpoint, onReveal, onClose }) {
  const [secret, setSecret] = useState("");
  const [error, setError] = useState("");
  return (
    <Dialog title={`Verify the signatures of ${endpoint.name}`} onClose={onClose} testid="verify-dialog" wide>
      <Notice kind="error">{error}</Notice>
      {secret && (
        <p class="hint" data-testid="secret-shown">
          The code below holds this endpoint's signing secret. Keep it out of version control: read it from your configuration instead.
        </p>
      )}
      <Verify
        secret={secret}
        onReveal={
          onReveal &&
          (async () => {
            try {
              setSecret(await onReveal());
            } catch (e) {
              setError(e.message);
            }
          })
        }
      />
    </Dialog>
  );
}

/** StatsDialog charts an endpoint's last 24 hours. */
function StatsDialog({ api, endpoint, onClose }) {
  const [stats, setStats] = useState(null);
  const [error, setError] = useState("");
  useEffect(() => {
    api.gql(STATS, { id: endpoint.id }).then((d) => setStats(d.node.stats), (e) => setError(e.message));
  }, [api, endpoint.id]);
  return (
    <Dialog title={`${endpoint.name}, last 24 hours`} onClose={onClose} testid="stats-dialog" wide>
      <Notice kind="error">{error}</Notice>
      {!error && <StatsView stats={stats} title={`Statistics of ${endpoint.name}`} testid="endpoint-stats" />}
    </Dialog>
  );
}

/** TestDialog sends a test event and shows the endpoint's answer. */
function TestDialog({ api, endpoint, catalog, onClose }) {
  const [type, setType] = useState("test.ping");
  const [result, setResult] = useState(null);
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const typeId = useIds("test-type")["test-type"];
  const send = async () => {
    setBusy(true);
    setError("");
    setResult(null);
    try {
      const d = await api.gql(TEST, { id: endpoint.id, type });
      setResult(d.testEndpoint);
    } catch (e) {
      setError(e.message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Dialog title={`Send a test event to ${endpoint.name}`} onClose={onClose} testid="test-dialog">
      <Field id={typeId} label="Event type" hint="Sent with the type's example payload, signed like any other webhook.">
        {(p) => (
          <select {...p} value={type} onChange={(e) => setType(e.currentTarget.value)} data-testid="test-type">
            <option value="test.ping">test.ping</option>
            {catalog
              .filter((t) => t.name !== "test.ping")
              .map((t) => (
                <option value={t.name}>{t.name}</option>
              ))}
          </select>
        )}
      </Field>
      <div class="dialog-actions">
        <button type="button" class="btn btn-primary" onClick={send} disabled={busy} data-testid="send-test-now">
          {busy ? "Sending…" : "Send test event"}
        </button>
      </div>
      <Notice kind="error">{error}</Notice>
      {result && (
        <div class="test-result" data-testid="test-result" data-delivered={String(result.delivered)} role="status">
          <p class={result.delivered ? "ok" : "bad"}>
            <strong>{result.delivered ? "Delivered" : "Not delivered"}</strong>
            {result.statusCode ? ` · HTTP ${result.statusCode}` : ""} · {fmtMs(result.durationMs)}
          </p>
          {result.error && <p class="field-error">{result.error}</p>}
          <h3>Response body</h3>
          <Json value={result.responseBody || ""} label="Response body" />
        </div>
      )}
    </Dialog>
  );
}
