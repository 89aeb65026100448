// The endpoint form's choice of where events go: a URL (HTTP), or a
// message broker with its settings. The types and their fields come from
// the server (destinationTypes), so a type added there appears here
// without a change to this file.
import { useEffect, useState } from "preact/hooks";
import { Field } from "../ui.jsx";

const TYPES = `query DestinationTypes {
  destinationTypes { type name field summary fields { name label kind required secret choices default placeholder help } }
}`;

let cached = null;
/** loadDestinationTypes returns the destination types, asked once per page. */
export function loadDestinationTypes(api) {
  if (!cached) cached = api.gql(TYPES).then((d) => d.destinationTypes, (e) => ((cached = null), Promise.reject(e)));
  return cached;
}

/** configQuery asks for the stored settings of an endpoint of type t (secrets come back masked). */
const configQuery = (t) => `query EndpointSettings($id: ID!) { node(id: $id) { ... on Endpoint { id ${t.field} { ${t.fields.map((f) => f.name).join(" ")} } } } }`;

/** Words shows text with its {placeholders} as code: they are typed as they are. */
export function Words({ text }) {
  return text.split(/(\{[^}]*\})/).map((part) => (/^\{.*\}$/.test(part) ? <code>{part}</code> : part));
}

/** formValue turns a stored setting into what its control holds. */
function formValue(f, x) {
  if (x === null || x === undefined) return f.kind === "BOOLEAN" ? false : "";
  if (f.kind === "LIST") return x.join("\n");
  if (f.kind === "INT") return String(x);
  return x;
}

/** inputValue turns what a control holds into the setting sent (undefined: not set). */
function inputValue(f, x) {
  switch (f.kind) {
    case "BOOLEAN":
      return x ? true : undefined;
    case "LIST": {
      const list = String(x || "")
        .split(/[\n,]/)
        .map((s) => s.trim())
        .filter(Boolean);
      return list.length ? list : undefined;
    }
    case "INT":
      return String(x).trim() === "" ? undefined : Number(x);
    default:
      return x === "" ? undefined : x;
  }
}

/** settingsInput returns the settings of a broker type as the API takes them. */
export function settingsInput(t, values) {
  const out = {};
  for (const f of t.fields) {
    const x = inputValue(f, values[f.name]);
    if (x !== undefined) out[f.name] = x;
  }
  return out;
}

function SettingField({ t, f, value, onValue, err, id }) {
  // Examples and defaults are shown as code, as they are typed: the
  // placeholder attribute would show them as words.
  const text = [f.help, f.kind === "LIST" ? "One per line." : ""].filter(Boolean).join(" ");
  const hint = (text || f.placeholder || f.default) && (
    <>
      <Words text={text} />
      {f.placeholder && (
        <>
          {text && " "}For example <code>{f.placeholder}</code>.
        </>
      )}
      {f.default && (
        <>
          {" "}Default: <code>{f.default}</code>.
        </>
      )}
    </>
  );
  const label = `${f.label}${f.required ? "" : " (optional)"}`;
  const key = `${t.field}-${f.name}`;
  const common = { "data-testid": `setting-${f.name}`, autocomplete: "off" };
  if (f.kind === "BOOLEAN") {
    return (
      <div class="field">
        <label class="check">
          <input type="checkbox" id={id(key)} checked={!!value} onChange={(e) => onValue(e.currentTarget.checked)} {...common} />
          <span>{f.label}</span>
        </label>
        {hint && <p class="hint">{hint}</p>}
        {err && <p class="field-error">{err}</p>}
      </div>
    );
  }
  return (
    <Field id={id(key)} label={label} hint={hint} error={err}>
      {(p) => {
        if (f.kind === "CHOICE") {
          return (
            <select {...p} value={value} onChange={(e) => onValue(e.currentTarget.value)} {...common}>
              <option value="">None</option>
              {f.choices.map((c) => (
                <option value={c}>{c}</option>
              ))}
            </select>
          );
        }
        if (f.kind === "TEXT" || f.kind === "LIST") {
          return <textarea {...p} rows={f.kind === "TEXT" ? 5 : 3} class="mono" spellcheck={false} value={value} onInput={(e) => onValue(e.currentTarget.value)} {...common} />;
        }
        return (
          <input
            {...p}
            type={f.secret ? "password" : f.kind === "INT" ? "number" : "text"}
            value={value}
            onInput={(e) => onValue(e.currentTarget.value)}
            {...common}
          />
        );
      }}
    </Field>
  );
}

export const destination = {
  name: "destination",
  initial: (ep) => ({ type: ep && ep.type ? ep.type : "HTTP", settings: {} }),
  toInput: (v) => {
    if (!v.type || v.type === "HTTP" || !v.types) return { type: "HTTP" };
    const t = v.types.find((x) => x.type === v.type);
    return t ? { type: v.type, [t.field]: settingsInput(t, v.settings[v.type] || {}) } : { type: v.type };
  },
  Section({ v, set, err, id, api, endpoint }) {
    const [error, setError] = useState("");
    const types = v.types;
    useEffect(() => {
      let live = true;
      loadDestinationTypes(api).then(
        async (list) => {
          if (!live) return;
          set("types", list);
          const t = endpoint && list.find((x) => x.type === endpoint.type && x.field);
          if (!t) return;
          const d = await api.gql(configQuery(t), { id: endpoint.id });
          const stored = (d.node && d.node[t.field]) || {};
          if (live) set("settings", { [t.type]: Object.fromEntries(t.fields.map((f) => [f.name, formValue(f, stored[f.name])])) });
        },
        (e) => live && setError(`The kinds of destination could not be loaded: ${e.message}`),
      );
      return () => (live = false);
    }, [api, endpoint, set]);
    const t = types && types.find((x) => x.type === v.type);
    const values = v.settings[v.type] || {};
    const setValue = (name) => (x) => set("settings", { ...v.settings, [v.type]: { ...values, [name]: x } });
    return (
      <div data-testid="destination">
        {error && (
          <p class="field-error" role="alert">
            {error}
          </p>
        )}
        {types && types.length > 1 && (
          <Field id={id("type")} label="Send events to" hint={t && <Words text={t.summary} />} error={err("type")}>
            {(p) => (
              <select {...p} value={v.type} onChange={(e) => set("type", e.currentTarget.value)} data-testid="destination-type">
                {types.map((x) => (
                  <option value={x.type}>{x.type === "HTTP" ? "A URL (HTTPS webhooks)" : x.name}</option>
                ))}
              </select>
            )}
          </Field>
        )}
        {t && t.field && (
          <fieldset class="fieldset" data-testid="settings">
            <legend>{t.name} settings</legend>
            {t.fields.map((f) => (
              <SettingField
                t={t}
                f={f}
                value={values[f.name] === undefined ? formValue(f, null) : values[f.name]}
                onValue={setValue(f.name)}
                err={err(`${t.field}.${f.name}`)}
                id={id}
              />
            ))}
            {err(t.field) && !t.fields.some((f) => err(`${t.field}.${f.name}`)) && <p class="field-error">{err(t.field)}</p>}
          </fieldset>
        )}
      </div>
    );
  },
};
