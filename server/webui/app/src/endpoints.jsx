// Endpoints: the list with health and recent success rate, and creating,
// editing, testing, enabling and disabling, rotating and deleting them.
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { fieldErrors } from "./api.js";
import { Dialog, Field, Json, Notice, fmtMs, fmtTime, uid } from "./ui.jsx";
import { loadCatalog } from "./catalog.jsx";

const ENDPOINT_FIELDS = `id name description url eventTypes isActive disabledReason health timeout
  retryPolicy { maxAttempts initialDelay backoffMultiplier maxDelay }
  ordering filter rateLimit { requests per }
  flow { concurrency maxConcurrency ratePerSecond pausedUntil throttled }
  auth { type token username password headerName headerValue secret }
  headers { name value }`;

const LIST = `query PortalEndpoints($since: Time!) {
  endpoints(first: 100, orderBy: {field: CREATED_AT, direction: DESC}) { edges { node {
    ${ENDPOINT_FIELDS}
    deliveries(first: 50, orderBy: {field: CREATED_AT, direction: DESC}, where: {createdAtGTE: $since}) { edges { node { status } } }
  } } }
}`;

const CREATE = `mutation PortalCreateEndpoint($in: CreateEndpointInput!) {
  createEndpoint(input: $in) { secret endpoint { id name } }
}`;
const UPDATE = `mutation PortalUpdateEndpoint($id: ID!, $in: UpdateEndpointInput!) { updateEndpoint(id: $id, input: $in) { id isActive } }`;
const DELETE = `mutation PortalDeleteEndpoint($id: ID!) { deleteEndpoint(id: $id) { deletedId } }`;
const ROTATE = `mutation PortalRotateSecret($id: ID!) { rotateEndpointSecret(id: $id) { secret endpoint { id previousSecretExpiresAt } } }`;
const TEST = `mutation PortalTestEndpoint($id: ID!, $type: String) {
  testEndpoint(id: $id, eventType: $type) { delivered statusCode responseBody durationMs error }
}`;
const TRY_FILTER = `query PortalTestFilter($f: JSON!) { testFilter(filter: $f, recent: 20) { matchCount results { matched } } }`;
const LIVE = `subscription PortalEndpointFeed { endpointUpdated { endpointId reason } }`;

const HEALTH = {
  SETUP: ["Not used yet", "Nothing has been sent to it yet."],
  READY: ["Ready", "Active, no recent traffic."],
  LIVE: ["Healthy", "Received a delivery in the last 24 hours."],
  ATTENTION: ["Needs attention", "Disabled, or its latest attempt failed."],
};

const ORDERINGS = [
  ["NONE", "Any order (fastest)"],
  ["KEY", "One at a time per ordering key, in publish order"],
  ["STRICT", "One at a time, in publish order"],
];

/** pace says how fast Herald sends to an endpoint now, and why. */
function pace(ep) {
  const f = ep.flow;
  if (f.pausedUntil) return { state: "paused", label: `Paused until ${fmtTime(f.pausedUntil)}`, help: "It answered 429 or 503 with Retry-After: nothing is sent until then." };
  if (f.throttled) {
    const rate = f.ratePerSecond ? `, ${f.ratePerSecond < 10 ? f.ratePerSecond.toFixed(1) : Math.round(f.ratePerSecond)} per second` : "";
    return {
      state: "throttled",
      label: `Slowed down: ${f.concurrency} at a time${rate}`,
      help: "It answered 429, 502, 503 or 504, so Herald sends more slowly, and speeds up again as requests succeed.",
    };
  }
  if (ep.rateLimit) return { state: "limited", label: `At most ${ep.rateLimit.requests} per ${ep.rateLimit.per}`, help: "Its rate limit: deliveries beyond it wait." };
  return { state: "full", label: `Full speed, ${f.maxConcurrency} at a time`, help: "" };
}

/** successRate of the recent finished deliveries, or null. */
function successRate(ep) {
  const statuses = ep.deliveries.edges.map((e) => e.node.status);
  const ok = statuses.filter((s) => s === "SUCCEEDED").length;
  const done = ok + statuses.filter((s) => s === "FAILED" || s === "RETRYING").length;
  return done ? { pct: Math.round((100 * ok) / done), n: done } : null;
}

export function Endpoints({ api, can, onShowDeliveries }) {
  const [list, setList] = useState(null);
  const [catalog, setCatalog] = useState([]);
  const [error, setError] = useState("");
  const [info, setInfo] = useState("");
  const [dialog, setDialog] = useState(null); // {kind, endpoint, ...}

  const load = useCallback(() => {
    const since = new Date(Date.now() - 24 * 3600 * 1000).toISOString();
    return api
      .gql(LIST, { since })
      .then((d) => setList(d.endpoints.edges.map((e) => e.node)))
      .catch((e) => setError(e.message));
  }, [api]);

  useEffect(() => {
    load();
    loadCatalog(api).then(setCatalog, (e) => setError(e.message));
    // Health and counters change as deliveries happen: reload on updates,
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
              onToggle={() =>
                act(
                  () => api.gql(UPDATE, { id: ep.id, in: { isActive: !ep.isActive } }),
                  `${ep.name} is ${ep.isActive ? "disabled: it receives nothing until you enable it" : "enabled"}.`,
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
          onClose={close}
          onSaved={(secret, ep) => {
            if (secret) setDialog({ kind: "secret", endpoint: ep, secret, created: true });
            else done(`${ep.name} was saved.`);
            load();
          }}
        />
      )}
      {dialog && dialog.kind === "secret" && <SecretDialog endpoint={dialog.endpoint} secret={dialog.secret} created={dialog.created} onClose={close} />}
      {dialog && dialog.kind === "test" && <TestDialog api={api} endpoint={dialog.endpoint} catalog={catalog} onClose={close} />}
      {dialog && dialog.kind === "rotate" && (
        <Confirm
          title={`Rotate the secret of ${dialog.endpoint.name}?`}
          action="Rotate secret"
          testid="confirm-rotate"
          onClose={close}
          onConfirm={async () => {
            const d = await api.gql(ROTATE, { id: dialog.endpoint.id });
            setDialog({ kind: "secret", endpoint: dialog.endpoint, secret: d.rotateEndpointSecret.secret });
          }}
        >
          A new signing secret replaces the current one. For the next 24 hours requests are signed with both, so you have time to update your
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
          It stops receiving webhooks at once and its queued deliveries are cancelled. Its delivery history stays visible. This cannot be undone.
        </Confirm>
      )}
    </section>
  );
}

function EndpointRow({ ep, can, onEdit, onTest, onRotate, onDelete, onToggle, onDeliveries }) {
  const [label, help] = HEALTH[ep.health] || [ep.health, ""];
  const rate = successRate(ep);
  const sp = pace(ep);
  return (
    <li class="card endpoint" data-testid="endpoint" data-endpoint-id={ep.id} data-health={ep.health}>
      <div class="endpoint-main">
        <h2 class="endpoint-name">{ep.name}</h2>
        <p class="endpoint-url">{ep.url}</p>
        {ep.description && <p class="endpoint-desc">{ep.description}</p>}
        <p class="endpoint-types">
          {ep.eventTypes.map((t) => (
            <code class="chip">{t === "*" ? "All events" : t}</code>
          ))}
          {ep.filter && (
            <span class="chip chip-control" title={JSON.stringify(ep.filter)} data-testid="filtered">
              Filtered
            </span>
          )}
          {ep.ordering !== "NONE" && (
            <span class="chip chip-control" data-testid="ordering">
              {ep.ordering === "KEY" ? "Ordered by key" : "Strict order"}
            </span>
          )}
        </p>
        {!ep.isActive && ep.disabledReason && <p class="field-error">Disabled: {ep.disabledReason}</p>}
      </div>
      <dl class="endpoint-stats">
        <div>
          <dt>Health</dt>
          <dd>
            <span class={`health health-${ep.health.toLowerCase()}`} title={help} data-testid="health">
              {ep.isActive ? label : "Disabled"}
            </span>
          </dd>
        </div>
        <div>
          <dt>Success, last 24 h</dt>
          <dd data-testid="success-rate">{rate ? `${rate.pct}% of ${rate.n}` : "No deliveries"}</dd>
        </div>
        <div>
          <dt>Pace</dt>
          <dd>
            <span class={`pace pace-${sp.state}`} title={sp.help} data-testid="pace" data-state={sp.state}>
              {sp.label}
            </span>
          </dd>
        </div>
      </dl>
      <div class="endpoint-actions">
        <button type="button" class="btn btn-small" onClick={onDeliveries} data-testid="show-deliveries">
          Deliveries<span class="sr-only"> of {ep.name}</span>
        </button>
        {can.editEndpoints && (
          <>
            <button type="button" class="btn btn-small" onClick={onTest} data-testid="send-test">
              Send test<span class="sr-only"> to {ep.name}</span>
            </button>
            <button type="button" class="btn btn-small" onClick={onEdit} data-testid="edit">
              Edit<span class="sr-only"> {ep.name}</span>
            </button>
            <button type="button" class="btn btn-small" onClick={onToggle} data-testid="toggle">
              {ep.isActive ? "Disable" : "Enable"}
              <span class="sr-only"> {ep.name}</span>
            </button>
            <button type="button" class="btn btn-small" onClick={onRotate} data-testid="rotate">
              Rotate secret<span class="sr-only"> of {ep.name}</span>
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

const AUTH_TYPES = [
  ["NONE", "None (verify the signature only)"],
  ["BEARER", "Bearer token"],
  ["BASIC", "Basic (username and password)"],
  ["API_KEY", "API key in a header"],
  ["HMAC", "HMAC signature header (GitHub style)"],
  ["SIGNATURE", "Timestamped signature header (Stripe style)"],
];
const AUTH_FIELDS = {
  NONE: [],
  BEARER: [["token", "Token"]],
  BASIC: [
    ["username", "Username"],
    ["password", "Password"],
  ],
  API_KEY: [
    ["headerName", "Header name"],
    ["headerValue", "Header value"],
  ],
  HMAC: [
    ["secret", "Secret (16+ characters)"],
    ["headerName", "Header name (optional)"],
  ],
  SIGNATURE: [
    ["secret", "Secret (16+ characters)"],
    ["headerName", "Header name (optional)"],
  ],
};

/** EndpointForm creates an endpoint, or edits one. */
function EndpointForm({ api, catalog, endpoint, onClose, onSaved }) {
  const ep = endpoint;
  const ids = useRef(null);
  if (!ids.current)
    ids.current = Object.fromEntries(
      ["name", "url", "desc", "auth", "attempts", "initial", "mult", "max", "timeout", "active", "ordering", "requests", "per", "filter"].map((k) => [k, uid(k)]),
    );
  const id = ids.current;
  const [v, setV] = useState(() => ({
    name: ep ? ep.name : "",
    url: ep ? ep.url : "",
    description: ep ? ep.description : "",
    eventTypes: ep ? ep.eventTypes : [],
    auth: ep ? Object.fromEntries(Object.entries(ep.auth).filter(([, x]) => x !== null)) : { type: "NONE" },
    headers: ep ? ep.headers.map((h) => ({ ...h })) : [],
    retryPolicy: ep ? { ...ep.retryPolicy } : { maxAttempts: 8, initialDelay: "5s", backoffMultiplier: 6, maxDelay: "12h" },
    timeout: ep ? ep.timeout : "10s",
    isActive: ep ? ep.isActive : true,
    ordering: ep ? ep.ordering : "NONE",
    limitRequests: ep && ep.rateLimit ? String(ep.rateLimit.requests) : "",
    limitPer: ep && ep.rateLimit ? ep.rateLimit.per : "1s",
    filter: ep && ep.filter ? JSON.stringify(ep.filter, null, 2) : "",
  }));
  const [tried, setTried] = useState(null); // {text} or {error}
  const [errs, setErrs] = useState({});
  const [formError, setFormError] = useState("");
  const [busy, setBusy] = useState(false);
  const set = (k, x) => setV((old) => ({ ...old, [k]: x }));
  const err = (path) => errs[`input.${path}`] || Object.entries(errs).find(([k]) => k.startsWith(`input.${path}[`) || k.startsWith(`input.${path}.`))?.[1];

  /** parseFilter returns the filter as JSON (null when empty), or throws. */
  const parseFilter = () => {
    if (!v.filter.trim()) return null;
    try {
      return JSON.parse(v.filter);
    } catch (x) {
      throw Object.assign(new Error(`This is not valid JSON: ${x.message}`), { field: "input.filter" });
    }
  };
  const tryFilter = async () => {
    setTried(null);
    try {
      const f = parseFilter();
      if (!f) return setTried({ text: "Without a filter, every event of the chosen types is delivered." });
      const d = await api.gql(TRY_FILTER, { f });
      const n = d.testFilter.results.length;
      setTried({ text: n ? `Matches ${d.testFilter.matchCount} of the latest ${n} events.` : "There are no events yet to try it on." });
    } catch (x) {
      const fe = x.field ? { [x.field]: x.message } : fieldErrors(x);
      const first = Object.entries(fe)[0];
      setTried({ error: first ? `${first[0].replace(/^(input\.)?filter\.?/, "") || "filter"}: ${first[1]}` : x.message });
    }
  };

  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setErrs({});
    setFormError("");
    let filter;
    try {
      filter = parseFilter();
    } catch (x) {
      setErrs({ [x.field]: x.message });
      setFormError("Some fields need your attention.");
      setBusy(false);
      return;
    }
    const auth = { type: v.auth.type };
    for (const [k] of AUTH_FIELDS[v.auth.type]) if (v.auth[k]) auth[k] = v.auth[k];
    const input = {
      name: v.name,
      url: v.url.trim(),
      description: v.description,
      eventTypes: v.eventTypes,
      auth,
      headers: v.headers.filter((h) => h.name || h.value),
      retryPolicy: {
        maxAttempts: Number(v.retryPolicy.maxAttempts),
        initialDelay: v.retryPolicy.initialDelay,
        backoffMultiplier: Number(v.retryPolicy.backoffMultiplier),
        maxDelay: v.retryPolicy.maxDelay,
      },
      timeout: v.timeout,
      isActive: v.isActive,
      ordering: v.ordering,
      rateLimit: v.limitRequests.trim() ? { requests: Number(v.limitRequests), per: v.limitPer.trim() } : null,
      filter,
    };
    try {
      if (ep) {
        await api.gql(UPDATE, { id: ep.id, in: input });
        onSaved(null, { ...ep, name: input.name });
      } else {
        const d = await api.gql(CREATE, { in: input });
        onSaved(d.createEndpoint.secret, d.createEndpoint.endpoint);
      }
    } catch (x) {
      const fe = fieldErrors(x);
      setErrs(fe);
      setFormError(Object.keys(fe).length ? "Some fields need your attention." : x.message);
      if (x.code === "CONFLICT") setFormError(`${x.message} Tick "Allow a duplicate" below if you really want a second one.`);
    } finally {
      setBusy(false);
    }
  };

  const toggleType = (name, on) => set("eventTypes", on ? [...v.eventTypes.filter((t) => t !== name), name] : v.eventTypes.filter((t) => t !== name));
  return (
    <Dialog title={ep ? `Edit ${ep.name}` : "Add an endpoint"} onClose={onClose} testid="endpoint-form" wide>
      <form onSubmit={submit} novalidate>
        <Notice kind="error" testid="form-error">
          {formError}
        </Notice>
        <Field id={id.url} label="URL" hint="The HTTPS address that receives the webhooks, such as https://example.com/webhooks." error={err("url")}>
          {(p) => <input {...p} type="url" required value={v.url} onInput={(e) => set("url", e.currentTarget.value)} data-testid="url" autocomplete="off" />}
        </Field>
        <Field id={id.name} label="Name" hint="To tell your endpoints apart." error={err("name")}>
          {(p) => <input {...p} required value={v.name} onInput={(e) => set("name", e.currentTarget.value)} data-testid="name" autocomplete="off" />}
        </Field>
        <Field id={id.desc} label="Description (optional)" error={err("description")}>
          {(p) => <textarea {...p} rows="2" value={v.description} onInput={(e) => set("description", e.currentTarget.value)} />}
        </Field>

        <fieldset class={`fieldset${err("eventTypes") ? " field-invalid" : ""}`} data-testid="event-types">
          <legend>Events to receive</legend>
          <label class="check">
            <input type="checkbox" checked={v.eventTypes.includes("*")} onChange={(e) => toggleType("*", e.currentTarget.checked)} data-testid="type-*" />
            <span>
              <strong>All events</strong>, including ones added later
            </span>
          </label>
          {catalog.map((et) => (
            <div class="type-choice">
              <label class="check">
                <input
                  type="checkbox"
                  checked={v.eventTypes.includes(et.name)}
                  disabled={v.eventTypes.includes("*")}
                  onChange={(e) => toggleType(et.name, e.currentTarget.checked)}
                  data-testid={`type-${et.name}`}
                />
                <span>
                  <code>{et.name}</code>
                  {et.description && <span class="type-desc"> · {et.description}</span>}
                </span>
              </label>
              {et.example && (
                <details class="example">
                  <summary>
                    Example payload<span class="sr-only"> of {et.name}</span>
                  </summary>
                  <Json value={et.example} label={`Example payload of ${et.name}`} />
                </details>
              )}
            </div>
          ))}
          {err("eventTypes") && <p class="field-error">{err("eventTypes")}</p>}
        </fieldset>

        <details class="advanced" open={!!(err("auth") || err("headers") || err("retryPolicy") || err("timeout"))}>
          <summary>Authentication, headers and retries</summary>
          <Field id={id.auth} label="Authentication" hint="Sent on top of the signature every request carries." error={err("auth.type")}>
            {(p) => (
              <select {...p} value={v.auth.type} onChange={(e) => set("auth", { type: e.currentTarget.value })} data-testid="auth-type">
                {AUTH_TYPES.map(([k, label]) => (
                  <option value={k}>{label}</option>
                ))}
              </select>
            )}
          </Field>
          {AUTH_FIELDS[v.auth.type].map(([k, label]) => {
            const fid = `${id.auth}-${k}`;
            return (
              <Field id={fid} label={label} error={err(`auth.${k}`)}>
                {(p) => (
                  <input
                    {...p}
                    type={k === "password" || k === "secret" || k === "token" || k === "headerValue" ? "password" : "text"}
                    autocomplete="off"
                    value={v.auth[k] || ""}
                    onInput={(e) => set("auth", { ...v.auth, [k]: e.currentTarget.value })}
                  />
                )}
              </Field>
            );
          })}
          <fieldset class="fieldset">
            <legend>Custom headers</legend>
            {v.headers.map((h, i) => (
              <div class="header-row">
                <Field id={`${id.auth}-h${i}n`} label={`Header ${i + 1} name`} error={err(`headers[${i}].name`) || err(`headers[${i}]`)}>
                  {(p) => <input {...p} value={h.name} onInput={(e) => set("headers", v.headers.map((x, j) => (j === i ? { ...x, name: e.currentTarget.value } : x)))} />}
                </Field>
                <Field id={`${id.auth}-h${i}v`} label={`Header ${i + 1} value`} error={err(`headers[${i}].value`)}>
                  {(p) => <input {...p} value={h.value} onInput={(e) => set("headers", v.headers.map((x, j) => (j === i ? { ...x, value: e.currentTarget.value } : x)))} />}
                </Field>
                <button type="button" class="btn btn-small btn-quiet" onClick={() => set("headers", v.headers.filter((_, j) => j !== i))}>
                  Remove<span class="sr-only"> header {i + 1}</span>
                </button>
              </div>
            ))}
            <button type="button" class="btn btn-small" onClick={() => set("headers", [...v.headers, { name: "", value: "" }])}>
              Add header
            </button>
          </fieldset>
          <fieldset class="fieldset grid-4">
            <legend>Retries</legend>
            <Field id={id.attempts} label="Attempts" hint="1-50, the first included." error={err("retryPolicy.maxAttempts")}>
              {(p) => (
                <input {...p} type="number" min="1" max="50" value={v.retryPolicy.maxAttempts} onInput={(e) => set("retryPolicy", { ...v.retryPolicy, maxAttempts: e.currentTarget.value })} />
              )}
            </Field>
            <Field id={id.initial} label="First wait" hint="Such as 5s." error={err("retryPolicy.initialDelay")}>
              {(p) => <input {...p} value={v.retryPolicy.initialDelay} onInput={(e) => set("retryPolicy", { ...v.retryPolicy, initialDelay: e.currentTarget.value })} />}
            </Field>
            <Field id={id.mult} label="Growth" hint="Each wait × this." error={err("retryPolicy.backoffMultiplier")}>
              {(p) => (
                <input
                  {...p}
                  type="number"
                  min="1"
                  step="0.5"
                  value={v.retryPolicy.backoffMultiplier}
                  onInput={(e) => set("retryPolicy", { ...v.retryPolicy, backoffMultiplier: e.currentTarget.value })}
                />
              )}
            </Field>
            <Field id={id.max} label="Longest wait" hint="Such as 12h." error={err("retryPolicy.maxDelay")}>
              {(p) => <input {...p} value={v.retryPolicy.maxDelay} onInput={(e) => set("retryPolicy", { ...v.retryPolicy, maxDelay: e.currentTarget.value })} />}
            </Field>
          </fieldset>
          <Field id={id.timeout} label="Timeout" hint="How long one request may take, 100ms-30s." error={err("timeout")}>
            {(p) => <input {...p} value={v.timeout} onInput={(e) => set("timeout", e.currentTarget.value)} />}
          </Field>
        </details>
        <details class="advanced" open={!!(err("filter") || err("rateLimit") || err("ordering"))} data-testid="controls">
          <summary>Filter, rate limit and ordering</summary>
          <Field
            id={id.filter}
            label="Payload filter (optional)"
            hint={'JSON that events must match, such as {"data.total": {"$gte": 100}}. Paths start at type, id, timestamp or data; operators: $eq $ne $gt $gte $lt $lte $in $nin $exists $startsWith $endsWith $and $or $not.'}
            error={err("filter")}
          >
            {(p) => <textarea {...p} rows="4" class="mono" value={v.filter} onInput={(e) => set("filter", e.currentTarget.value)} data-testid="filter" spellcheck={false} />}
          </Field>
          <p class="try-filter">
            <button type="button" class="btn btn-small" onClick={tryFilter} data-testid="try-filter">
              Try it on recent events
            </button>{" "}
            <span role="status" data-testid="filter-result" class={tried && tried.error ? "field-error" : ""}>
              {tried && (tried.error || tried.text)}
            </span>
          </p>
          <fieldset class="fieldset grid-4">
            <legend>Rate limit</legend>
            <Field id={id.requests} label="Requests" hint="Empty: no limit." error={err("rateLimit.requests")}>
              {(p) => <input {...p} type="number" min="1" max="10000" value={v.limitRequests} onInput={(e) => set("limitRequests", e.currentTarget.value)} data-testid="limit-requests" />}
            </Field>
            <Field id={id.per} label="Per" hint="Such as 1s or 1m." error={err("rateLimit.per")}>
              {(p) => <input {...p} value={v.limitPer} onInput={(e) => set("limitPer", e.currentTarget.value)} data-testid="limit-per" />}
            </Field>
          </fieldset>
          <Field id={id.ordering} label="Order" hint="Ordered endpoints get events one at a time: a failing one holds back those after it." error={err("ordering")}>
            {(p) => (
              <select {...p} value={v.ordering} onChange={(e) => set("ordering", e.currentTarget.value)} data-testid="ordering">
                {ORDERINGS.map(([k, label]) => (
                  <option value={k}>{label}</option>
                ))}
              </select>
            )}
          </Field>
        </details>
        <label class="check">
          <input id={id.active} type="checkbox" checked={v.isActive} onChange={(e) => set("isActive", e.currentTarget.checked)} data-testid="active" />
          <span>Enabled: receives webhooks</span>
        </label>
        <div class="dialog-actions">
          <button type="button" class="btn" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" class="btn btn-primary" disabled={busy} data-testid="save-endpoint">
            {ep ? "Save" : "Add endpoint"}
          </button>
        </div>
      </form>
    </Dialog>
  );
}

/** SecretDialog shows a signing secret once, with a copy button. */
function SecretDialog({ endpoint, secret, created, onClose }) {
  const [copied, setCopied] = useState("");
  const inputId = useRef(uid("secret")).current;
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(secret);
      setCopied("Copied to the clipboard.");
    } catch {
      const input = document.getElementById(inputId);
      input.focus();
      input.select();
      setCopied("Your browser blocked copying: the secret is selected, press Ctrl+C (⌘C on a Mac).");
    }
  };
  return (
    <Dialog title={created ? `${endpoint.name} was added` : `New secret of ${endpoint.name}`} onClose={onClose} testid="secret-dialog">
      <p>
        This is the endpoint's <strong>signing secret</strong>. Use it to verify that requests come from us. It is shown only now: copy it and store
        it safely.
      </p>
      <div class="secret-row">
        <label for={inputId} class="sr-only">
          Signing secret
        </label>
        <input id={inputId} class="mono" readonly value={secret} data-testid="secret" onFocus={(e) => e.currentTarget.select()} />
        <button type="button" class="btn btn-primary" onClick={copy} data-testid="copy-secret">
          Copy
        </button>
      </div>
      <p role="status" class="hint" data-testid="copy-status">
        {copied}
      </p>
      <div class="dialog-actions">
        <button type="button" class="btn" onClick={onClose} data-testid="secret-done">
          I stored it
        </button>
      </div>
    </Dialog>
  );
}

/** TestDialog sends a test event and shows the endpoint's answer. */
function TestDialog({ api, endpoint, catalog, onClose }) {
  const [type, setType] = useState("test.ping");
  const [result, setResult] = useState(null);
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const typeId = useRef(uid("test-type")).current;
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

/** Confirm asks before a consequential action. */
export function Confirm({ title, action, danger, onClose, onConfirm, children, testid }) {
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  return (
    <Dialog title={title} onClose={onClose} testid={testid}>
      <div class="confirm-body">{children}</div>
      <Notice kind="error">{error}</Notice>
      <div class="dialog-actions">
        <button type="button" class="btn" onClick={onClose}>
          Cancel
        </button>
        <button
          type="button"
          class={`btn ${danger ? "btn-danger" : "btn-primary"}`}
          disabled={busy}
          data-testid="confirm"
          onClick={async () => {
            setBusy(true);
            try {
              await onConfirm();
            } catch (e) {
              setError(e.message);
              setBusy(false);
            }
          }}
        >
          {action}
        </button>
      </div>
    </Dialog>
  );
}

export { fmtTime };
