// The console's routes, kept in the URL fragment: "#/" for the apps,
// "#/apps/<app id>/<view>?q=…" for a view of one app.

/** VIEWS are the views of one app, in the order of its menu. */
export const VIEWS = [
  { id: "overview", label: "Overview" },
  { id: "endpoints", label: "Endpoints" },
  { id: "deliveries", label: "Deliveries" },
  { id: "events", label: "Events" },
  { id: "catalog", label: "Event catalog" },
  { id: "portal", label: "Portal" },
  { id: "keys", label: "API keys" },
  { id: "audit", label: "Audit log" },
];

/** parseRoute reads a route from a URL fragment. */
export function parseRoute(hash) {
  const [path, query] = hash.replace(/^#/, "").split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  const params = new URLSearchParams(query || "");
  if (parts[0] === "apps" && parts[1]) {
    return { app: parts[1], view: VIEWS.some((v) => v.id === parts[2]) ? parts[2] : "overview", params };
  }
  return { app: "", view: "apps", params };
}

/** go changes the route. */
export function go(app, view, params) {
  const q = params ? `?${new URLSearchParams(params)}` : "";
  window.location.hash = app ? `#/apps/${encodeURIComponent(app)}/${view || "overview"}${q}` : "#/";
}
