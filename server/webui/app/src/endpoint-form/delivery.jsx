// The endpoint form's section on how requests are sent: authentication,
// custom headers, retries and the time limit.
import { Field } from "../ui.jsx";
import { isHTTP } from "./basics.jsx";

const AUTH_TYPES = [
  ["NONE", "None (check the signature only)"],
  ["BEARER", "Bearer token"],
  ["BASIC", "Basic (username and password)"],
  ["API_KEY", "A key in a header"],
  ["HMAC", "HMAC signature header (GitHub style)"],
  ["SIGNATURE", "Timestamped signature header (Stripe style)"],
];
export const AUTH_FIELDS = {
  NONE: [],
  BEARER: [["token", "Token"]],
  BASIC: [
    ["username", "Username"],
    ["password", "Password"],
  ],
  API_KEY: [
    ["headerName", "Header name"],
    ["headerValue", "Header value"],
  ],
  HMAC: [
    ["secret", "Secret (16 characters or more)"],
    ["headerName", "Header name (optional)"],
  ],
  SIGNATURE: [
    ["secret", "Secret (16 characters or more)"],
    ["headerName", "Header name (optional)"],
  ],
};
const SECRET_FIELDS = new Set(["password", "secret", "token", "headerValue"]);

export const delivery = {
  name: "delivery",
  open: ["auth", "headers", "retryPolicy", "timeout"],
  initial: (ep) => ({
    auth: ep ? Object.fromEntries(Object.entries(ep.auth).filter(([, x]) => x !== null)) : { type: "NONE" },
    headers: ep ? ep.headers.map((h) => ({ ...h })) : [],
    retryPolicy: ep ? { ...ep.retryPolicy } : { maxAttempts: 8, initialDelay: "5s", backoffMultiplier: 6, maxDelay: "12h" },
    timeout: ep ? ep.timeout : "10s",
  }),
  toInput: (v) => {
    const auth = { type: v.auth.type };
    for (const [k] of AUTH_FIELDS[v.auth.type]) if (v.auth[k]) auth[k] = v.auth[k];
    const http = isHTTP(v) ? { auth, headers: v.headers.filter((h) => h.name || h.value) } : {};
    return {
      ...http,
      retryPolicy: {
        maxAttempts: Number(v.retryPolicy.maxAttempts),
        initialDelay: v.retryPolicy.initialDelay,
        backoffMultiplier: Number(v.retryPolicy.backoffMultiplier),
        maxDelay: v.retryPolicy.maxDelay,
      },
      timeout: v.timeout,
    };
  },
  Section({ v, set, err, id }) {
    const rp = (k) => (e) => set("retryPolicy", { ...v.retryPolicy, [k]: e.currentTarget.value });
    const header = (i, k) => (e) => set("headers", v.headers.map((x, j) => (j === i ? { ...x, [k]: e.currentTarget.value } : x)));
    const http = isHTTP(v);
    return (
      <details class="advanced" open={!!(err("auth") || err("headers") || err("retryPolicy") || err("timeout"))}>
        <summary>{http ? "Authentication, headers and retries" : "Retries and time limit"}</summary>
        {http && <>
        <Field id={id("auth")} label="Authentication" hint="Sent on top of the signature every request carries." error={err("auth.type")}>
          {(p) => (
            <select {...p} value={v.auth.type} onChange={(e) => set("auth", { type: e.currentTarget.value })} data-testid="auth-type">
              {AUTH_TYPES.map(([k, label]) => (
                <option value={k}>{label}</option>
              ))}
            </select>
          )}
        </Field>
        {AUTH_FIELDS[v.auth.type].map(([k, label]) => (
          <Field id={id(`auth-${k}`)} label={label} error={err(`auth.${k}`)}>
            {(p) => (
              <input
                {...p}
                type={SECRET_FIELDS.has(k) ? "password" : "text"}
                autocomplete="off"
                value={v.auth[k] || ""}
                onInput={(e) => set("auth", { ...v.auth, [k]: e.currentTarget.value })}
                data-testid={`auth-${k}`}
              />
            )}
          </Field>
        ))}
        <fieldset class="fieldset">
          <legend>Custom headers</legend>
          {v.headers.map((h, i) => (
            <div class="header-row">
              <Field id={id(`h${i}n`)} label={`Header ${i + 1} name`} error={err(`headers[${i}].name`) || err(`headers[${i}]`)}>
                {(p) => <input {...p} value={h.name} onInput={header(i, "name")} />}
              </Field>
              <Field id={id(`h${i}v`)} label={`Header ${i + 1} value`} error={err(`headers[${i}].value`)}>
                {(p) => <input {...p} value={h.value} onInput={header(i, "value")} />}
              </Field>
              <button type="button" class="btn btn-small btn-quiet" onClick={() => set("headers", v.headers.filter((_, j) => j !== i))}>
                Remove<span class="sr-only"> header {i + 1}</span>
              </button>
            </div>
          ))}
          <button type="button" class="btn btn-small" onClick={() => set("headers", [...v.headers, { name: "", value: "" }])}>
            Add header
          </button>
        </fieldset>
        </>}
        <fieldset class="fieldset grid-4">
          <legend>Retries</legend>
          <Field id={id("attempts")} label="Attempts" hint="1-50, the first included." error={err("retryPolicy.maxAttempts")}>
            {(p) => <input {...p} type="number" min="1" max="50" value={v.retryPolicy.maxAttempts} onInput={rp("maxAttempts")} data-testid="max-attempts" />}
          </Field>
          <Field id={id("initial")} label="First wait" hint="Such as 5s." error={err("retryPolicy.initialDelay")}>
            {(p) => <input {...p} value={v.retryPolicy.initialDelay} onInput={rp("initialDelay")} />}
          </Field>
          <Field id={id("mult")} label="Growth" hint="Each wait × this." error={err("retryPolicy.backoffMultiplier")}>
            {(p) => <input {...p} type="number" min="1" step="0.5" value={v.retryPolicy.backoffMultiplier} onInput={rp("backoffMultiplier")} />}
          </Field>
          <Field id={id("max")} label="Longest wait" hint="Such as 12h." error={err("retryPolicy.maxDelay")}>
            {(p) => <input {...p} value={v.retryPolicy.maxDelay} onInput={rp("maxDelay")} />}
          </Field>
        </fieldset>
        <Field id={id("timeout")} label="Time limit" hint={http ? "How long one request may take, from 100ms to 30s." : "How long the broker may take to accept an event, from 100ms to 30s."} error={err("timeout")}>
          {(p) => <input {...p} value={v.timeout} onInput={(e) => set("timeout", e.currentTarget.value)} data-testid="timeout" />}
        </Field>
      </details>
    );
  },
};
