// GraphQL over HTTP (queries and mutations) and over a graphql-ws
// WebSocket (live feeds), both authenticated with the session token, which
// lives only in this module's memory.
import { createClient } from "graphql-ws";

/** ApiError carries the first GraphQL error's extensions. */
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

/** fieldErrors maps extensions.field paths to messages. */
export function fieldErrors(err) {
  const out = {};
  if (!(err instanceof ApiError)) return out;
  for (const e of err.errors) {
    const f = e.extensions && e.extensions.field;
    if (f && !out[f]) out[f] = e.message.replace(new RegExp(`^${f.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: `), "");
  }
  return out;
}

const httpURL = new URL("/graphql", window.location.href).href;
const wsURL = httpURL.replace(/^http/, "ws");

/**
 * createApi returns the API of one session. onAuthError is called once
 * when the server says the token no longer works (expired, revoked).
 */
export function createApi(token, onAuthError) {
  let dead = false;
  const authFailed = (err) => {
    if (!dead) {
      dead = true;
      onAuthError(err);
    }
  };

  async function gql(query, variables) {
    let res;
    try {
      res = await fetch(httpURL, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json", Authorization: `Bearer ${token}` },
        body: JSON.stringify({ query, variables }),
        credentials: "omit",
        cache: "no-store",
      });
    } catch (e) {
      throw new ApiError([{ message: `Herald cannot be reached (${e.message}). Check your connection and try again.` }], 0);
    }
    let body;
    try {
      body = await res.json();
    } catch {
      throw new ApiError([{ message: `Herald answered HTTP ${res.status}. Try again in a moment.` }], res.status);
    }
    if (body.errors && body.errors.length) {
      const err = new ApiError(body.errors, res.status);
      if (err.code === "UNAUTHENTICATED") authFailed(err);
      throw err;
    }
    return body.data;
  }

  const ws = createClient({
    url: wsURL,
    lazy: true,
    connectionParams: { Authorization: `Bearer ${token}` },
    retryAttempts: 5,
    shouldRetry: (e) => !(e && e.code === 4401),
  });

  /**
   * subscribe starts a subscription; onData gets each result's data,
   * onError a message. It returns a function that stops it.
   */
  function subscribe(query, variables, onData, onError) {
    return ws.subscribe(
      { query, variables },
      {
        next: (r) => {
          if (r.errors && r.errors.length) {
            const err = new ApiError(r.errors, 0);
            if (err.code === "UNAUTHENTICATED") authFailed(err);
            onError(err.message);
            return;
          }
          onData(r.data);
        },
        error: (e) => {
          if (e && e.code === 4401) {
            // The close reason is short; ask once more over HTTP to learn
            // why (EXPIRED, REVOKED), which also ends the session here.
            gql("query PortalProbe { viewer { isAdmin } }").then(
              () => onError("The live connection was refused. Reload the page."),
              () => {},
            );
            return;
          }
          if (Array.isArray(e)) onError(e.map((x) => x.message).join("; "));
          else onError("The live connection closed. Reload to reconnect.");
        },
        complete: () => {},
      },
    );
  }

  return { gql, subscribe, close: () => ws.dispose() };
}
