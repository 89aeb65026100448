// The console's shell: signing in and out, the route in the URL fragment,
// and the app the operator works in.
import { useCallback, useEffect, useMemo, useState } from "preact/hooks";
import { can as canOf, createApi } from "../api.js";
import { Field, Notice, useIds } from "../ui.jsx";
import { Apps } from "./apps.jsx";
import { AppView } from "./app.jsx";
import { go, parseRoute } from "./route.js";

const KEY = "herald.console.key";

const VIEWER = `query ConsoleViewer { viewer { isAdmin app { id name } apiKey { id name scopes expiresAt } } }`;

function storedKey() {
  try {
    return sessionStorage.getItem(KEY) || "";
  } catch {
    return "";
  }
}

function storeKey(key) {
  try {
    if (key) sessionStorage.setItem(KEY, key);
    else sessionStorage.removeItem(KEY);
  } catch {
    // Storage is off: the key lives in memory until the page closes.
  }
}

export function Console() {
  const [key, setKey] = useState(storedKey);
  const [viewer, setViewer] = useState(null);
  const [error, setError] = useState("");
  const [route, setRoute] = useState(() => parseRoute(window.location.hash));
  const signOut = useCallback((message) => {
    storeKey("");
    setKey("");
    setViewer(null);
    setError(message || "");
  }, []);
  const api = useMemo(() => (key ? createApi(key, { onAuthError: (e) => signOut(keyProblem(e)) }) : null), [key]);

  useEffect(() => {
    const on = () => setRoute(parseRoute(window.location.hash));
    window.addEventListener("hashchange", on);
    return () => window.removeEventListener("hashchange", on);
  }, []);

  useEffect(() => {
    if (!api) return undefined;
    api.gql(VIEWER).then(
      (d) => {
        setViewer(d.viewer);
        // A key of one app goes straight to it.
        if (!d.viewer.isAdmin && !parseRoute(window.location.hash).app) go(d.viewer.app.id, "overview");
      },
      (e) => {
        if (e.code !== "UNAUTHENTICATED") setError(e.message);
      },
    );
    return () => api.close();
  }, [api]);

  if (!key) {
    return (
      <SignIn
        error={error}
        onKey={(k) => {
          storeKey(k);
          setError("");
          setKey(k);
        }}
      />
    );
  }
  if (!viewer) {
    return (
      <main class="centered" aria-busy={error ? undefined : "true"}>
        <div class="card centered-card">
          <h1>{error ? "The console could not start" : "Signing in…"}</h1>
          <Notice kind="error">{error}</Notice>
          {error && (
            <button type="button" class="btn" onClick={() => signOut("")}>
              Sign out
            </button>
          )}
        </div>
      </main>
    );
  }
  const appId = route.app || (viewer.isAdmin ? "" : viewer.app.id);
  return (
    <div class="shell">
      <header class="topbar">
        <a class="brand" href="#/" data-testid="home">
          <span class="brand-mark" aria-hidden="true" />
          <span class="brand-name">Herald</span>
          <span class="brand-sub">Console</span>
        </a>
        <span class="spacer" />
        <span class="who" data-testid="signed-in-as">
          {viewer.apiKey.name}
          {viewer.isAdmin ? " (admin)" : ""}
        </span>
        <a class="topbar-link" href="/">
          GraphiQL
        </a>
        <button type="button" class="btn btn-small" onClick={() => signOut("")} data-testid="sign-out">
          Sign out
        </button>
      </header>
      {appId ? (
        <AppView key={appId} apiKey={key} viewer={viewer} appId={appId} view={route.view} params={route.params} can={canOf(viewer.apiKey.scopes)} />
      ) : (
        <main class="main" id="main">
          <Apps api={api} />
        </main>
      )}
    </div>
  );
}

/** keyProblem says why a key stopped working, for the sign-in page. */
function keyProblem(e) {
  if (e.reason === "EXPIRED") return "Your API key has expired. Sign in with another one.";
  if (e.reason === "REVOKED") return "Your API key was revoked. Sign in with another one.";
  return `The key was refused: ${e.message}`;
}

function SignIn({ error, onKey }) {
  const [value, setValue] = useState("");
  const [problem, setProblem] = useState("");
  const id = useIds("api-key")["api-key"];
  return (
    <main class="centered" data-testid="sign-in">
      <form
        class="card centered-card"
        onSubmit={(e) => {
          e.preventDefault();
          const k = value.trim();
          if (!/^hrld_/.test(k)) {
            setProblem("Paste a Herald API key: it starts with hrld_.");
            document.getElementById(id).focus();
            return;
          }
          onKey(k);
        }}
        novalidate
      >
        <h1>Herald console</h1>
        <p>Manage apps, endpoints and deliveries, and open your customers' portals. Sign in with an API key: an admin key reaches every app.</p>
        <Notice kind="error" testid="sign-in-error">
          {error}
        </Notice>
        <Field id={id} label="API key" hint="Held for this browser tab only: closing it or signing out forgets the key." error={problem}>
          {(p) => (
            <input
              {...p}
              type="password"
              value={value}
              onInput={(e) => setValue(e.currentTarget.value)}
              autocomplete="off"
              spellcheck={false}
              data-testid="api-key"
              autofocus
            />
          )}
        </Field>
        <div class="dialog-actions">
          <button type="submit" class="btn btn-primary" data-testid="sign-in-button">
            Sign in
          </button>
        </div>
      </form>
    </main>
  );
}
