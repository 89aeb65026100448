// The portal's shell: the session, the app's branding, navigation between
// the three views, and the page shown when the session no longer works.
import { useEffect, useMemo, useState } from "preact/hooks";
import { createApi } from "./api.js";
import { Endpoints } from "./endpoints.jsx";
import { Deliveries } from "./deliveries.jsx";
import { Catalog } from "./catalog.jsx";

const VIEWER = `query PortalViewer {
  viewer { app { id name portal { displayName accentColor theme } } apiKey { scopes expiresAt } }
}`;

const VIEWS = [
  { id: "endpoints", label: "Endpoints" },
  { id: "deliveries", label: "Deliveries" },
  { id: "catalog", label: "Event catalog" },
];

/** applyBranding sets the app's accent colour and theme on the page. */
function applyBranding(portal) {
  const root = document.documentElement;
  root.dataset.theme = (portal.theme || "AUTO").toLowerCase();
  if (portal.accentColor) root.style.setProperty("--accent", portal.accentColor);
  document.title = `${portal.displayName} · Webhooks`;
}

export function App({ token }) {
  const [ended, setEnded] = useState(token ? null : { reason: "MISSING" });
  const api = useMemo(() => (token ? createApi(token, (err) => setEnded({ reason: err.reason, message: err.message })) : null), [token]);
  const [viewer, setViewer] = useState(null);
  const [loadError, setLoadError] = useState("");
  const [view, setView] = useState("endpoints");
  const [focus, setFocus] = useState(null); // {endpointId} to open Deliveries filtered

  useEffect(() => {
    if (!api) return undefined;
    api
      .gql(VIEWER)
      .then((d) => {
        setViewer(d.viewer);
        applyBranding(d.viewer.app.portal);
      })
      .catch((e) => setLoadError(e.message));
    return () => api.close();
  }, [api]);

  if (ended) return <Ended {...ended} />;
  if (loadError) return <Centered title="The portal could not start">{loadError}</Centered>;
  if (!viewer) return <Centered title="Loading…" busy />;

  const scopes = viewer.apiKey.scopes || [];
  const can = {
    editEndpoints: scopes.includes("ENDPOINTS_WRITE"),
    retry: scopes.includes("DELIVERIES_WRITE"),
  };
  const name = viewer.app.portal.displayName;
  const show = (id, f) => {
    setFocus(f || null);
    setView(id);
  };
  return (
    <div class="shell">
      <header class="topbar">
        <div class="brand">
          <span class="brand-mark" aria-hidden="true" />
          <span class="brand-name" data-testid="app-name">
            {name}
          </span>
          <span class="brand-sub">Webhooks</span>
        </div>
        {!can.editEndpoints && (
          <span class="pill" data-testid="read-only">
            Read only
          </span>
        )}
        <SessionClock expiresAt={viewer.apiKey.expiresAt} />
      </header>
      <nav class="tabs" aria-label="Portal">
        {VIEWS.map((v) => (
          <button
            type="button"
            class={`tab${view === v.id ? " tab-active" : ""}`}
            aria-current={view === v.id ? "page" : undefined}
            data-testid={`tab-${v.id}`}
            onClick={() => show(v.id)}
          >
            {v.label}
          </button>
        ))}
      </nav>
      <main class="main" id="main">
        {view === "endpoints" && <Endpoints api={api} can={can} onShowDeliveries={(endpointId) => show("deliveries", { endpointId })} />}
        {view === "deliveries" && <Deliveries api={api} can={can} initial={focus} />}
        {view === "catalog" && <Catalog api={api} />}
      </main>
    </div>
  );
}

/** SessionClock says when the session ends. */
function SessionClock({ expiresAt }) {
  if (!expiresAt) return null;
  const at = new Date(expiresAt);
  return (
    <span class="session-clock" title={at.toString()}>
      Session ends {at.toLocaleString(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" })}
    </span>
  );
}

function Centered({ title, children, busy, testid }) {
  return (
    <main class="centered" data-testid={testid} aria-busy={busy ? "true" : undefined}>
      <div class="card centered-card">
        <h1>{title}</h1>
        {children && <p>{children}</p>}
      </div>
    </main>
  );
}

/** Ended is the page of a session that does not work (any more). */
function Ended({ reason, message }) {
  const titles = {
    EXPIRED: "This link has expired",
    REVOKED: "This link was revoked",
    MISSING: "This link is incomplete",
  };
  const what = {
    EXPIRED: "For your security, links to this page work for a limited time.",
    REVOKED: "Access through this link was withdrawn.",
    MISSING: "The link has no session token: it may have been cut when it was copied.",
  };
  return (
    <main class="centered" data-testid="session-ended" data-reason={reason || "UNAUTHENTICATED"}>
      <div class="card centered-card" role="alert">
        <h1>{titles[reason] || "This link no longer works"}</h1>
        <p>{what[reason] || message}</p>
        <p>
          <strong>What to do:</strong> go back to the site where you opened this page and open it again from there; that creates a new link. If it
          keeps happening, contact the site's support.
        </p>
        {message && <p class="hint">Details: {message}</p>}
      </div>
    </main>
  );
}
