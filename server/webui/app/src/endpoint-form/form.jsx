// The endpoint form: a dialog that creates or edits an endpoint, made of
// sections. Each section is a module { name, initial(endpoint),
// toInput(values), Section } that owns some of the form's values and the
// input fields they become; a section can be added to SECTIONS without
// touching the others. Every error the server reports appears at its
// field after one submit, and focus moves to the first of them.
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { fieldErrors } from "../api.js";
import { Dialog, Notice, focusFirstInvalid, useIds } from "../ui.jsx";
import { destination } from "./destination.jsx";
import { basics } from "./basics.jsx";
import { events } from "./events.jsx";
import { delivery } from "./delivery.jsx";
import { controls } from "./controls.jsx";
import { transformation } from "./transformation.jsx";

/** SECTIONS are the form's sections, in order. */
export const SECTIONS = [destination, basics, events, delivery, controls, transformation];

const CREATE = `mutation CreateEndpoint($in: CreateEndpointInput!) {
  createEndpoint(input: $in) { secret endpoint { id name } }
}`;
const UPDATE = `mutation UpdateEndpoint($id: ID!, $in: UpdateEndpointInput!) { updateEndpoint(id: $id, input: $in) { id name isActive } }`;

/**
 * EndpointForm creates an endpoint (onSaved gets its secret) or edits
 * one. others are the app's endpoints, to name the one a duplicate
 * collides with.
 */
export function EndpointForm({ api, catalog, endpoint, others = [], onClose, onSaved }) {
  const ep = endpoint;
  const form = useRef(null);
  const ids = useRef({});
  const prefix = useIds("ep-form")["ep-form"];
  const id = useCallback((name) => (ids.current[name] ||= `${prefix}-${name}`), [prefix]);
  const [v, setV] = useState(() =>
    Object.assign({ isActive: ep ? ep.isActive : true, allowDuplicate: false }, ...SECTIONS.map((s) => s.initial(ep))),
  );
  const [errs, setErrs] = useState({});
  const [formError, setFormError] = useState("");
  const [duplicate, setDuplicate] = useState(null); // the endpoint a save collided with, or {}
  const [busy, setBusy] = useState(false);
  const [attempt, setAttempt] = useState(0);
  const set = useCallback((k, x) => setV((old) => ({ ...old, [k]: x })), []);
  const err = useCallback(
    (path) => errs[`input.${path}`] || Object.entries(errs).find(([k]) => k.startsWith(`input.${path}[`) || k.startsWith(`input.${path}.`))?.[1],
    [errs],
  );

  // After a failed submit, focus the first field with an error.
  useEffect(() => {
    if (attempt && !focusFirstInvalid(form.current) && duplicate) {
      const el = form.current && form.current.querySelector("[data-testid=allow-duplicate]");
      if (el) el.focus();
    }
  }, [attempt]);

  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setFormError("");
    let input;
    try {
      input = Object.assign({ isActive: v.isActive }, ...SECTIONS.map((s) => s.toInput(v)));
    } catch (x) {
      // A value the browser can already tell is wrong (filter JSON).
      setErrs({ [x.field]: x.message });
      setFormError("One field needs your attention.");
      setBusy(false);
      setAttempt((n) => n + 1);
      return;
    }
    if (v.allowDuplicate) input.allowDuplicate = true;
    try {
      if (ep) {
        const d = await api.gql(UPDATE, { id: ep.id, in: input });
        onSaved(null, d.updateEndpoint);
      } else {
        const d = await api.gql(CREATE, { in: input });
        onSaved(d.createEndpoint.secret, d.createEndpoint.endpoint);
      }
      return;
    } catch (x) {
      const fe = fieldErrors(x);
      setErrs(fe);
      const n = Object.keys(fe).length;
      if (x.code === "CONFLICT" && x.reason === "WEBHOOK_EXISTS") {
        const url = input.url;
        const m = /\("(.*?)"\)/.exec(x.message);
        const other = others.find((o) => o.url === url && (!ep || o.id !== ep.id)) || { name: m ? m[1] : "" };
        setDuplicate(other);
        setFormError("");
      } else {
        setDuplicate(null);
        setFormError(n ? (n === 1 ? "One field needs your attention." : `${n} fields need your attention.`) : x.message);
      }
    } finally {
      setBusy(false);
    }
    setAttempt((n) => n + 1);
  };

  const props = { v, set, err, id, api, catalog, endpoint: ep };
  return (
    <Dialog title={ep ? `Edit ${ep.name}` : "Add an endpoint"} onClose={onClose} testid="endpoint-form" wide>
      <form ref={form} onSubmit={submit} novalidate>
        <Notice kind="error" testid="form-error">
          {formError}
        </Notice>
        {duplicate && (
          <div class="notice notice-error" role="alert" data-testid="duplicate">
            <p>
              {duplicate.name ? (
                <>
                  Your endpoint <strong>{duplicate.name}</strong> already receives some of these events at this URL,
                </>
              ) : (
                "Another of your endpoints already receives some of these events at this URL,"
              )}{" "}
              so each of them would arrive twice. Change the URL or the events, or, if you really want two copies, tick the box below.
            </p>
            <label class="check">
              <input type="checkbox" checked={v.allowDuplicate} onChange={(e) => set("allowDuplicate", e.currentTarget.checked)} data-testid="allow-duplicate" />
              <span>Send these events to this URL twice</span>
            </label>
          </div>
        )}
        {SECTIONS.map((s) => (
          <s.Section key={s.name} {...props} />
        ))}
        <label class="check">
          <input type="checkbox" checked={v.isActive} onChange={(e) => set("isActive", e.currentTarget.checked)} data-testid="active" />
          <span>On: receives webhooks</span>
        </label>
        <div class="dialog-actions">
          <button type="button" class="btn" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" class="btn btn-primary" disabled={busy} data-testid="save-endpoint">
            {ep ? "Save" : "Add endpoint"}
          </button>
        </div>
      </form>
    </Dialog>
  );
}
