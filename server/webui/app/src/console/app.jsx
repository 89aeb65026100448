// One app in the console: its menu of views, each a component of its own
// (the list is route.js's VIEWS; a new view is one entry there and one
// here).
import { useEffect, useMemo, useState } from "preact/hooks";
import { createApi } from "../api.js";
import { Notice } from "../ui.jsx";
import { Endpoints } from "../endpoints.jsx";
import { Deliveries } from "../deliveries.jsx";
import { Catalog } from "../catalog.jsx";
import { Overview } from "./overview.jsx";
import { Events } from "./events.jsx";
import { PortalSettings } from "./portal-settings.jsx";
import { Keys } from "./keys.jsx";
import { AuditLog } from "../audit.jsx";
import { VIEWS, go } from "./route.js";

const APP = `query ConsoleApp { viewer { app { id name portal { displayName accentColor theme allowedOrigins } } } }`;

export function AppView({ apiKey, viewer, appId, view, params, can }) {
  const api = useMemo(() => createApi(apiKey, { app: appId === viewer.app.id ? "" : appId }), [apiKey, appId]);
  const [app, setApp] = useState(null);
  const [error, setError] = useState("");
  const reload = () => api.gql(APP).then((d) => setApp(d.viewer.app), (e) => setError(e.message));
  useEffect(() => {
    reload();
    return () => api.close();
  }, [api]);
  const views = VIEWS.filter((v) => v.id !== "keys" || can.full);
  return (
    <div class="app-layout">
      <nav class="nav" aria-label={app ? `${app.name}` : "App"}>
        {viewer.isAdmin && (
          <a class="nav-item nav-back" href="#/">
            All apps
          </a>
        )}
        <span class="nav-title" data-testid="app-title">
          {app ? app.name : "…"}
        </span>
        {views.map((v) => (
          <a
            class={`nav-item${view === v.id ? " nav-active" : ""}`}
            href={`#/apps/${encodeURIComponent(appId)}/${v.id}`}
            aria-current={view === v.id ? "page" : undefined}
            data-testid={`nav-${v.id}`}
          >
            {v.label}
          </a>
        ))}
      </nav>
      <main class="main" id="main">
        <Notice kind="error">{error}</Notice>
        {view === "overview" && <Overview api={api} onEndpoint={() => go(appId, "endpoints")} />}
        {view === "endpoints" && <Endpoints api={api} can={can} onShowDeliveries={(endpointId) => go(appId, "deliveries", { endpoint: endpointId })} />}
        {view === "deliveries" && (
          <Deliveries
            key={params.toString()}
            api={api}
            can={can}
            initial={{ search: params.get("q") || "", endpointId: params.get("endpoint") || "", deliveryId: params.get("open") || "" }}
          />
        )}
        {view === "events" && <Events api={api} can={can} initial={params.get("q") || ""} />}
        {view === "catalog" && <Catalog api={api} operator viewer={viewer} can={can} />}
        {view === "portal" && app && <PortalSettings api={api} app={app} onSaved={reload} />}
        {view === "keys" && can.full && <Keys api={api} appId={appId} viewer={viewer} />}
        {view === "audit" && <AuditLog api={api} />}
      </main>
    </div>
  );
}
