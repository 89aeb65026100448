// Herald's operator console: entry point. The API key is typed in once and
// held in this tab's session storage only (a reload keeps it; closing the
// tab or signing out forgets it). Views are addressed in the URL fragment
// (#/apps/<app id>/deliveries), which never holds the key.
import { render } from "preact";
import { Console } from "./console.jsx";
import "../style.css";

render(<Console />, document.getElementById("app"));
