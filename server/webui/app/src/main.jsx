// Herald customer portal: entry point. The session token arrives in the URL
// fragment (/portal/<app id>#token=…), which browsers never send to a
// server; it is read once, removed from the address bar and history, and
// kept in memory only.
import { render } from "preact";
import { App } from "./app.jsx";
import "./style.css";

function takeToken() {
  const params = new URLSearchParams(window.location.hash.slice(1));
  const token = params.get("token") || "";
  if (window.location.hash) {
    history.replaceState(null, "", window.location.pathname);
  }
  return token;
}

render(<App token={takeToken()} />, document.getElementById("app"));
