// An app's customer portal: how it looks (name, colour, theme), which
// sites may embed it, opening it, and ending every open session.
import { useRef, useState } from "preact/hooks";
import { fieldErrors } from "../api.js";
import { Confirm, Field, Notice, focusFirstInvalid, useIds } from "../ui.jsx";
import { PortalLinkDialog } from "./apps.jsx";

const SAVE = `mutation SavePortal($app: ID, $in: PortalSettingsInput!) {
  updatePortalSettings(appId: $app, input: $in) { id portal { displayName accentColor theme allowedOrigins } }
}`;
const REVOKE_ALL = `mutation RevokeSessions($app: ID) { revokePortalSessions(appId: $app) { count } }`;

export function PortalSettings({ api, app, onSaved }) {
  const p0 = app.portal;
  const [v, setV] = useState({
    displayName: p0.displayName === app.name ? "" : p0.displayName,
    accentColor: p0.accentColor || "",
    theme: p0.theme,
    origins: p0.allowedOrigins.join("\n"),
  });
  const [errs, setErrs] = useState({});
  const [info, setInfo] = useState("");
  const [error, setError] = useState("");
  const [dialog, setDialog] = useState(null);
  const form = useRef(null);
  const id = useIds("ps-name", "ps-color", "ps-theme", "ps-origins");
  const set = (k) => (e) => setV((o) => ({ ...o, [k]: e.currentTarget.value }));
  const err = (k) => errs[`input.${k}`] || Object.entries(errs).find(([f]) => f.startsWith(`input.${k}[`))?.[1];
  const save = async (e) => {
    e.preventDefault();
    setInfo("");
    setError("");
    try {
      await api.gql(SAVE, {
        app: app.id,
        in: {
          displayName: v.displayName.trim(),
          accentColor: v.accentColor.trim(),
          theme: v.theme,
          allowedOrigins: v.origins.split(/\s+/).filter(Boolean),
        },
      });
      setErrs({});
      setInfo("The portal's settings were saved.");
      onSaved();
    } catch (x) {
      const fe = fieldErrors(x);
      setErrs(fe);
      if (!Object.keys(fe).length) setError(x.message);
      setTimeout(() => focusFirstInvalid(form.current));
    }
  };
  return (
    <section aria-labelledby="portal-title">
      <div class="section-head">
        <h1 id="portal-title">Customer portal</h1>
        <button type="button" class="btn btn-primary" onClick={() => setDialog("open")} data-testid="open-portal">
          Open portal
        </button>
      </div>
      <p class="lead">
        Your customers manage their endpoints and watch their webhooks in the portal. Your backend opens it for a customer with a short-lived link;
        here you set how it looks and where it may be embedded.
      </p>
      <Notice kind="info" onDismiss={() => setInfo("")} testid="portal-info">
        {info}
      </Notice>
      <Notice kind="error">{error}</Notice>
      <form ref={form} class="card form" onSubmit={save} novalidate data-testid="portal-settings">
        <Field id={id["ps-name"]} label="Name shown" hint={`Empty: the app's name, ${app.name}.`} error={err("displayName")}>
          {(p) => <input {...p} value={v.displayName} onInput={set("displayName")} data-testid="display-name" autocomplete="off" />}
        </Field>
        <Field id={id["ps-color"]} label="Accent colour" hint="Of buttons and links, as #rrggbb. Empty: Herald's blue." error={err("accentColor")}>
          {(p) => (
            <span class="search-row">
              <input {...p} value={v.accentColor} onInput={set("accentColor")} placeholder="#1f5fbf" data-testid="accent-color" autocomplete="off" />
              <span class="swatch" aria-hidden="true" data-color={v.accentColor} ref={(el) => el && el.style.setProperty("background", /^#[0-9a-fA-F]{6}$/.test(v.accentColor) ? v.accentColor : "transparent")} />
            </span>
          )}
        </Field>
        <Field id={id["ps-theme"]} label="Theme" error={err("theme")}>
          {(p) => (
            <select {...p} value={v.theme} onChange={set("theme")} data-testid="theme">
              <option value="AUTO">The viewer's choice</option>
              <option value="LIGHT">Light</option>
              <option value="DARK">Dark</option>
            </select>
          )}
        </Field>
        <Field
          id={id["ps-origins"]}
          label="Sites that may embed the portal"
          hint="One origin per line, such as https://app.example.com (https://*.example.com for its subdomains). Empty: no site may show it in a frame; links still open in a tab."
          error={err("allowedOrigins")}
        >
          {(p) => <textarea {...p} rows="3" class="mono" value={v.origins} onInput={set("origins")} data-testid="allowed-origins" spellcheck={false} />}
        </Field>
        <div class="dialog-actions">
          <button type="button" class="btn btn-danger" onClick={() => setDialog("revoke")} data-testid="revoke-sessions">
            End every open session
          </button>
          <button type="submit" class="btn btn-primary" data-testid="save-portal">
            Save
          </button>
        </div>
      </form>
      {dialog === "open" && <PortalLinkDialog api={api} app={app} onClose={() => setDialog(null)} />}
      {dialog === "revoke" && (
        <Confirm
          title="End every open portal session?"
          action="End sessions"
          danger
          testid="confirm-revoke-sessions"
          onClose={() => setDialog(null)}
          onConfirm={async () => {
            const d = await api.gql(REVOKE_ALL, { app: app.id });
            setDialog(null);
            setInfo(d.revokePortalSessions.count === 1 ? "1 session was ended." : `${d.revokePortalSessions.count} sessions were ended.`);
          }}
        >
          Every customer who has the portal open is signed out at once and must open it again from your site.
        </Confirm>
      )}
    </section>
  );
}
