// Herald customer portal: entry point. The session token arrives in the
// URL fragment (/portal/<app id>#token=…), which browsers never send to a
// server. It is read once, removed from the address bar and history, and
// held in this tab's session storage only, so that a reload keeps the
// session and closing the tab ends it. A new link pasted into the open
// portal takes its place.
import { render } from "preact";
import { App } from "./app.jsx";
import "../style.css";

const appId = decodeURIComponent(window.location.pathname.replace(/^\/portal\/?/, "").split("/")[0] || "");
const storageKey = `herald.portal.${appId}`;

/** store keeps the token for this tab (or forgets it with ""). */
function store(token) {
  try {
    if (token) sessionStorage.setItem(storageKey, token);
    else sessionStorage.removeItem(storageKey);
  } catch {
    // Storage is off: the token lives in memory until the page closes.
  }
}

/** takeToken reads a token from the URL fragment, removing it from the address bar, or returns "". */
function takeToken() {
  const params = new URLSearchParams(window.location.hash.slice(1));
  const token = params.get("token") || "";
  if (window.location.hash) history.replaceState(null, "", window.location.pathname);
  return token;
}

function stored() {
  try {
    return sessionStorage.getItem(storageKey) || "";
  } catch {
    return "";
  }
}

function start() {
  // A link with a fragment but no token is an incomplete link, even if
  // an earlier one of this tab still works.
  const hadLink = window.location.hash.length > 1;
  const fresh = takeToken();
  const token = fresh || (hadLink ? "" : stored());
  store(token);
  render(<App key={token} appId={appId} token={token} onEnded={() => store("")} />, document.getElementById("app"));
}

window.addEventListener("hashchange", () => {
  if (/(^|[#&])token=/.test(window.location.hash)) start();
});
start();
