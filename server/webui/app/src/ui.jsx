// Small shared pieces of the portal's UI.
import { useEffect, useRef } from "preact/hooks";

let ids = 0;
/** uid returns a document-unique id for label/control pairs. */
export function uid(prefix) {
  ids += 1;
  return `${prefix}-${ids}`;
}

/** Field is a labelled control with a hint and a field-level error. */
export function Field({ id, label, hint, error, children, testid }) {
  const hintId = hint ? `${id}-hint` : undefined;
  const errId = error ? `${id}-error` : undefined;
  return (
    <div class={`field${error ? " field-invalid" : ""}`} data-testid={testid}>
      <label for={id}>{label}</label>
      {children({ id, "aria-describedby": [hintId, errId].filter(Boolean).join(" ") || undefined, "aria-invalid": error ? "true" : undefined })}
      {hint && (
        <p class="hint" id={hintId}>
          {hint}
        </p>
      )}
      {error && (
        <p class="field-error" id={errId} data-testid="field-error">
          {error}
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

/** Json shows a JSON value, pretty-printed. */
export function Json({ value, label }) {
  let text = value;
  if (typeof value !== "string") text = JSON.stringify(value, null, 2);
  else {
    try {
      text = JSON.stringify(JSON.parse(value), null, 2);
    } catch {
      /* not JSON: as is */
    }
  }
  return (
    <pre class="code" tabindex="0" aria-label={label}>
      {text === undefined || text === null || text === "" ? "(empty)" : text}
    </pre>
  );
}

/** Status shows a delivery status as a badge. */
export function Status({ status }) {
  return (
    <span class={`badge badge-${String(status).toLowerCase()}`} data-status={status}>
      {status.charAt(0) + status.slice(1).toLowerCase()}
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
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(2)} s`;
}
