// GraphQL over HTTP (queries and mutations) and over a graphql-ws
// WebSocket (live feeds), both authenticated with one credential: a portal
// session's token or an operator's API key. An admin key acting in another
// app sends its ID as X-Herald-App.
import { createClient } from "graphql-ws";

/** ApiError carries the GraphQL errors of a request; code, reason and field are the first one's. */
export class ApiError extends Error {
  constructor(errors, status) {
    const first = errors[0] || {};
    super(errors.map((e) => e.message).join("; ") || `HTTP ${status}`);
    const ext = first.extensions || {};
    this.code = ext.code || "";
    this.reason = ext.reason || "";
    this.field = ext.field || "";
    this.errors = errors;
  }
}

const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/**
 * fieldErrors maps the extensions.field of every error to its message,
 * without the field's name in front (the form shows it at the field).
 */
export function fieldErrors(err) {
  const out = {};
  if (!(err instanceof ApiError)) return out;
  for (const e of err.errors) {
    const f = e.extensions && e.extensions.field;
    if (f && !out[f]) out[f] = e.message.replace(new RegExp(`^${escape(f)}: `), "");
  }
  return out;
}

const httpURL = new URL("/graphql", window.location.href).href;
const wsURL = httpURL.replace(/^http/, "ws");

/**
 * createApi returns the API of one credential. app, when set, is the app an
 * admin key acts in. onAuthError is called once when the server says the
 * credential no longer works (expired, revoked, unknown).
 */
export function createApi(token, { app = "", onAuthError = () => {} } = {}) {
  let dead = false;
  const authFailed = (err) => {
    if (!dead) {
      dead = true;
      onAuthError(err);
    }
  };
  const headers = { "Content-Type": "application/json", Accept: "application/json", Authorization: `Bearer ${token}` };
  if (app) headers["X-Herald-App"] = app;

  async function gql(query, variables) {
    let res;
    try {
      res = await fetch(httpURL, { method: "POST", headers, body: JSON.stringify({ query, variables }), credentials: "omit", cache: "no-store" });
    } catch (e) {
      throw new ApiError([{ message: `The server cannot be reached (${e.message}). Check your connection and try again.` }], 0);
    }
    let body;
    try {
      body = await res.json();
    } catch {
      throw new ApiError([{ message: `The server answered HTTP ${res.status}. Try again in a moment.` }], res.status);
    }
    if (body.errors && body.errors.length) {
      const err = new ApiError(body.errors, res.status);
      if (err.code === "UNAUTHENTICATED") authFailed(err);
      throw err;
    }
    return body.data;
  }

  const params = { Authorization: `Bearer ${token}` };
  if (app) params["X-Herald-App"] = app;
  const ws = createClient({
    url: wsURL,
    lazy: true,
    connectionParams: params,
    retryAttempts: 5,
    shouldRetry: (e) => !(e && e.code === 4401),
  });
  // The live connection's state, for "Live" indicators.
  let connected = false;
  const waiting = new Set();
  ws.on("connected", () => {
    connected = true;
    for (const f of waiting) f();
    waiting.clear();
  });
  ws.on("closed", () => {
    connected = false;
  });
  /** whenConnected calls f once the live connection is open (at once if it is); it returns a function that cancels. */
  function whenConnected(f) {
    if (connected) {
      const t = setTimeout(f);
      return () => clearTimeout(t);
    }
    waiting.add(f);
    return () => waiting.delete(f);
  }

  /**
   * subscribe starts a subscription; onData gets each result's data,
   * onError an ApiError (reason SUBSCRIBER_LAGGED when it fell behind). It
   * returns a function that stops it.
   */
  function subscribe(query, variables, onData, onError) {
    return ws.subscribe(
      { query, variables },
      {
        next: (r) => {
          if (r.errors && r.errors.length) {
            const err = new ApiError(r.errors, 0);
            if (err.code === "UNAUTHENTICATED") authFailed(err);
            onError(err);
            return;
          }
          onData(r.data);
        },
        error: (e) => {
          if (e && e.code === 4401) {
            // The close reason is short; ask once more over HTTP to learn
            // why (expired, revoked), which also ends the session here.
            gql("query Probe { viewer { isAdmin } }").then(
              () => onError(new ApiError([{ message: "The live connection was refused. Reload the page." }], 0)),
              () => {},
            );
            return;
          }
          if (Array.isArray(e)) onError(new ApiError(e, 0));
          else onError(new ApiError([{ message: "The live connection closed. Reload to reconnect." }], 0));
        },
        complete: () => {},
      },
    );
  }

  return { gql, subscribe, whenConnected, app, close: () => ws.dispose() };
}

/** can returns what a credential with these scopes (null: full access) may do. */
export function can(scopes) {
  const has = (s) => scopes === null || scopes === undefined || scopes.includes(s);
  return {
    editEndpoints: has("ENDPOINTS_WRITE"),
    retry: has("DELIVERIES_WRITE"),
    publish: has("EVENTS_PUBLISH"),
    editCatalog: has("CATALOG_WRITE"),
    readEvents: has("EVENTS_READ") || has("DELIVERIES_WRITE"),
    portalSessions: has("PORTAL_SESSIONS"),
    full: scopes === null || scopes === undefined,
  };
}
