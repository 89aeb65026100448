// Small shared pieces of the web app's UI: its design system's controls.
import { useEffect, useRef, useState } from "preact/hooks";

let ids = 0;
/** uid returns a document-unique id for label/control pairs. */
export function uid(prefix) {
  ids += 1;
  return `${prefix}-${ids}`;
}

/** useIds returns stable unique ids for the given names. */
export function useIds(...names) {
  const ref = useRef(null);
  if (!ref.current) ref.current = Object.fromEntries(names.map((n) => [n, uid(n)]));
  return ref.current;
}

/** Field is a labelled control with a hint and a field-level error. */
export function Field({ id, label, hint, error, children, testid, class: cls }) {
  const hintId = hint ? `${id}-hint` : undefined;
  const errId = error ? `${id}-error` : undefined;
  return (
    <div class={`field${error ? " field-invalid" : ""}${cls ? ` ${cls}` : ""}`} data-testid={testid}>
      <label for={id}>{label}</label>
      {children({ id, "aria-describedby": [errId, hintId].filter(Boolean).join(" ") || undefined, "aria-invalid": error ? "true" : undefined })}
      {error && (
        <p class="field-error" id={errId} data-testid="field-error">
          {error}
        </p>
      )}
      {hint && (
        <p class="hint" id={hintId}>
          {hint}
        </p>
      )}
    </div>
  );
}

/** Dialog is a modal <dialog>: focus stays inside, Escape closes it. */
export function Dialog({ title, onClose, children, testid, wide }) {
  const ref = useRef(null);
  const titleId = useRef(uid("dialog-title")).current;
  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
    const cancel = (e) => {
      e.preventDefault();
      onClose();
    };
    d.addEventListener("cancel", cancel);
    return () => d.removeEventListener("cancel", cancel);
  }, [onClose]);
  return (
    <dialog ref={ref} class={`dialog${wide ? " dialog-wide" : ""}`} aria-labelledby={titleId} data-testid={testid}>
      <header class="dialog-head">
        <h2 id={titleId}>{title}</h2>
        <button type="button" class="btn btn-quiet" onClick={onClose} aria-label="Close">
          ×
        </button>
      </header>
      <div class="dialog-body">{children}</div>
    </dialog>
  );
}

/** Notice shows an error or a confirmation. */
export function Notice({ kind, children, onDismiss, testid }) {
  if (!children) return null;
  return (
    <div class={`notice notice-${kind}`} role={kind === "error" ? "alert" : "status"} data-testid={testid}>
      <span>{children}</span>
      {onDismiss && (
        <button type="button" class="btn btn-quiet btn-small" onClick={onDismiss} aria-label="Dismiss">
          ×
        </button>
      )}
    </div>
  );
}

/** pretty returns a JSON value (or JSON text) pretty-printed. */
export function pretty(value) {
  if (typeof value !== "string") return JSON.stringify(value, null, 2);
  try {
    return JSON.stringify(JSON.parse(value), null, 2);
  } catch {
    return value;
  }
}

/** Json shows a JSON value, pretty-printed. */
export function Json({ value, label }) {
  const text = value === undefined || value === null || value === "" ? "(empty)" : pretty(value);
  return (
    <pre class="code" tabindex="0" aria-label={label}>
      {text}
    </pre>
  );
}

/** copyText copies text, or selects the element sel when the browser refuses; it returns a message. */
export async function copyText(text, select) {
  try {
    await navigator.clipboard.writeText(text);
    return "Copied.";
  } catch {
    if (select) select();
    return "Your browser blocked copying: the text is selected, press Ctrl+C (⌘C on a Mac).";
  }
}

/** CopyButton copies text and says so. */
export function CopyButton({ text, label = "Copy", testid, what }) {
  const [said, setSaid] = useState("");
  return (
    <span class="copy">
      <button type="button" class="btn btn-small" data-testid={testid} onClick={async () => setSaid(await copyText(text))}>
        {label}
        {what && <span class="sr-only"> {what}</span>}
      </button>
      <span role="status" class="hint" data-testid={testid && `${testid}-status`}>
        {said}
      </span>
    </span>
  );
}

/** Status shows a delivery status as a badge. */
export function Status({ status, label }) {
  return (
    <span class={`badge badge-${String(status).toLowerCase()}`} data-status={status}>
      {label}
    </span>
  );
}

export function fmtTime(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return d.toLocaleString(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

export function fmtMs(ms) {
  if (ms === null || ms === undefined) return "—";
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

export function fmtPct(v) {
  return v === null || v === undefined ? "—" : `${(v * 100).toFixed(v === 1 || v === 0 ? 0 : 1)}%`;
}

/** toLocalInput turns a Date into a datetime-local value. */
export function toLocalInput(d) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** Tabs is a row of buttons choosing one of several panes. */
export function Tabs({ items, current, onChange, label, testid }) {
  return (
    <div class="tabs" role="group" aria-label={label} data-testid={testid}>
      {items.map(([id, text]) => (
        <button
          type="button"
          class={`tab${id === current ? " tab-active" : ""}`}
          aria-pressed={id === current ? "true" : "false"}
          data-testid={`tab-${id}`}
          onClick={() => onChange(id)}
        >
          {text}
        </button>
      ))}
    </div>
  );
}

/** Confirm asks before a consequential action. */
export function Confirm({ title, action, danger, onClose, onConfirm, children, testid }) {
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  return (
    <Dialog title={title} onClose={onClose} testid={testid}>
      <div class="confirm-body">{children}</div>
      <Notice kind="error">{error}</Notice>
      <div class="dialog-actions">
        <button type="button" class="btn" onClick={onClose}>
          Cancel
        </button>
        <button
          type="button"
          class={`btn ${danger ? "btn-danger" : "btn-primary"}`}
          disabled={busy}
          data-testid="confirm"
          onClick={async () => {
            setBusy(true);
            try {
              await onConfirm();
            } catch (e) {
              setError(e.message);
              setBusy(false);
            }
          }}
        >
          {action}
        </button>
      </div>
    </Dialog>
  );
}

/** focusFirstInvalid moves focus to the first invalid control in root, opening what hides it. */
export function focusFirstInvalid(root) {
  const el = root && root.querySelector('[aria-invalid="true"]');
  if (!el) return false;
  for (let d = el.closest("details"); d; d = d.parentElement && d.parentElement.closest("details")) d.open = true;
  el.focus();
  return true;
}
