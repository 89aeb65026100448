// The endpoint form's first fields: where webhooks go (for an HTTP
// endpoint: a broker's settings are the destination section's) and what
// the endpoint is called.
import { Field } from "../ui.jsx";

/** isHTTP reports whether the form is for an HTTP endpoint (the default). */
export const isHTTP = (v) => !v.type || v.type === "HTTP";

export const basics = {
  name: "basics",
  initial: (ep) => ({ url: ep ? ep.url : "", name: ep ? ep.name : "", description: ep ? ep.description : "" }),
  toInput: (v) => ({ ...(isHTTP(v) ? { url: v.url.trim() } : {}), name: v.name, description: v.description }),
  Section({ v, set, err, id }) {
    return (
      <>
        {isHTTP(v) && <Field id={id("url")} label="URL" hint="The HTTPS address that receives the webhooks, such as https://example.com/webhooks." error={err("url")}>
          {(p) => <input {...p} type="url" value={v.url} onInput={(e) => set("url", e.currentTarget.value)} data-testid="url" autocomplete="off" />}
        </Field>}
        <Field id={id("name")} label="Name" hint="To tell your endpoints apart, 2 characters or more." error={err("name")}>
          {(p) => <input {...p} value={v.name} onInput={(e) => set("name", e.currentTarget.value)} data-testid="name" autocomplete="off" />}
        </Field>
        <Field id={id("description")} label="Description (optional)" error={err("description")}>
          {(p) => <textarea {...p} rows="2" value={v.description} onInput={(e) => set("description", e.currentTarget.value)} />}
        </Field>
      </>
    );
  },
};
