// The portal's shell: the session, the app's branding, navigation between
// the views, and the pages shown without a working link.
import { useEffect, useMemo, useState } from "preact/hooks";
import { can as canOf, createApi } from "../api.js";
import { Endpoints } from "../endpoints.jsx";
import { Deliveries } from "../deliveries.jsx";
import { Catalog } from "../catalog.jsx";
import { AuditLog } from "../audit.jsx";
import { fmtTime } from "../ui.jsx";

const VIEWER = `query PortalViewer {
  viewer { app { id name portal { displayName accentColor theme } } apiKey { scopes expiresAt } }
}`;

const VIEWS = [
  { id: "endpoints", label: "Endpoints" },
  { id: "deliveries", label: "Deliveries" },
  { id: "catalog", label: "Event catalog" },
  { id: "audit", label: "Your changes" },
];

/** wellFormed reports whether a token looks whole: cut links fail here before asking the server. */
const wellFormed = (t) => /^hrld_[A-Za-z0-9_-]{43}$/.test(t);

/** applyBranding sets the app's accent colour and theme on the page. */
export function applyBranding(portal) {
  const root = document.documentElement;
  root.dataset.theme = (portal.theme || "AUTO").toLowerCase();
  if (portal.accentColor) root.style.setProperty("--accent", portal.accentColor);
  else root.style.removeProperty("--accent");
  document.title = `${portal.displayName} · Webhooks`;
}

export function App({ appId, token, onEnded }) {
  const [ended, setEnded] = useState(() => (!appId ? { reason: "NO_APP" } : !wellFormed(token) ? { reason: "INCOMPLETE" } : null));
  const api = useMemo(
    () =>
      !ended
        ? createApi(token, {
            onAuthError: (err) => {
              onEnded();
              setEnded({ reason: err.reason === "EXPIRED" || err.reason === "REVOKED" ? err.reason : "INCOMPLETE" });
            },
          })
        : null,
    [token],
  );
  const [viewer, setViewer] = useState(null);
  const [loadError, setLoadError] = useState("");
  const [view, setView] = useState("endpoints");
  const [focus, setFocus] = useState(null); // {endpointId} to open Deliveries filtered

  useEffect(() => {
    if (!api) return undefined;
    api
      .gql(VIEWER)
      .then((d) => {
        if (d.viewer.app.id !== appId) {
          // A link of another app's portal, pasted into this page.
          onEnded();
          setEnded({ reason: "INCOMPLETE" });
          return;
        }
        setViewer(d.viewer);
        applyBranding(d.viewer.app.portal);
      })
      .catch((e) => setLoadError(e.message));
    return () => api.close();
  }, [api]);

  if (ended) return ended.reason === "NO_APP" ? <About /> : <Ended reason={ended.reason} />;
  if (loadError) return <Centered title="The page could not start">{loadError}</Centered>;
  if (!viewer) return <Centered title="Loading…" busy />;

  const can = canOf(viewer.apiKey.scopes);
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
      <nav class="nav" aria-label="Sections">
        {VIEWS.map((v) => (
          <button
            type="button"
            class={`nav-item${view === v.id ? " nav-active" : ""}`}
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
        {view === "audit" && (
          <AuditLog api={api} title="Your changes" lead="The changes made in this portal session: what changed, when and from where. Secrets show as “changed”." />
        )}
      </main>
    </div>
  );
}

/** SessionClock says when the session ends. */
function SessionClock({ expiresAt }) {
  if (!expiresAt) return null;
  return (
    <span class="session-clock" title={new Date(expiresAt).toString()}>
      Access ends {fmtTime(expiresAt)}
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

/** About explains the portal to someone who opened /portal without a link. */
function About() {
  return (
    <main class="centered" data-testid="portal-about">
      <div class="card centered-card">
        <h1>Webhook settings</h1>
        <p>
          This is where the customers of a service that sends webhooks manage the addresses that receive them, watch every delivery, retry
          failed ones and learn how to check their signatures.
        </p>
        <p>
          <strong>To open it,</strong> use the link from the service's own settings page: each link is personal and works for a limited time.
        </p>
        <p class="hint">
          If you run the service: create a link with the console's <em>Open portal</em> button, or from your backend, and send your customer to
          it (or show it in a frame of your site).
        </p>
      </div>
    </main>
  );
}

/** Ended is the page of a link that does not work (any more). */
function Ended({ reason }) {
  const titles = {
    EXPIRED: "This link has expired",
    REVOKED: "This link was withdrawn",
    INCOMPLETE: "This link is incomplete",
  };
  const what = {
    EXPIRED: "For your security, links to this page work for a limited time, and this one's time is up.",
    REVOKED: "Access through this link was withdrawn by the service that sent it.",
    INCOMPLETE: "Part of the link is missing or wrong: it may have been cut when it was copied.",
  };
  const todo = {
    EXPIRED: "go back to the site where you opened this page and open it again from there: that creates a new link.",
    REVOKED: "go back to the site where you opened this page and open it again from there. If it keeps happening, contact the site's support.",
    INCOMPLETE: "copy the whole link again, or go back to the site where you got it and open the page from there.",
  };
  return (
    <main class="centered" data-testid="session-ended" data-reason={reason}>
      <div class="card centered-card" role="alert">
        <h1>{titles[reason]}</h1>
        <p>{what[reason]}</p>
        <p>
          <strong>What to do:</strong> {todo[reason]}
        </p>
      </div>
    </main>
  );
}
