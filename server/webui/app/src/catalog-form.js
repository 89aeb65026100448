// The event type form's rules that need no page: which types a key may
// change, reading the JSON a person typed, and saying the server's
// objections in words, each at the field it concerns. Plain JavaScript
// with no imports, so that catalog-form.test.js runs it under node --test.

/** FIELDS are the form's fields, in the order it shows them. */
export const FIELDS = ["name", "where", "description", "example", "jsonSchema"];

/**
 * mayChange reports whether a key may edit and archive an event type:
 * never Herald's own types, a shared catalog's only with an admin key,
 * and nothing without the right to manage the catalog.
 */
export function mayChange(t, { manage, admin }) {
  return Boolean(manage) && !t.builtIn && (!t.shared || Boolean(admin));
}

/**
 * parseJSONText returns the JSON value of text, or null when it is empty.
 * Text that is not JSON throws an Error that says what is wrong.
 */
export function parseJSONText(text) {
  if (!text || !text.trim()) return null;
  try {
    return JSON.parse(text);
  } catch (x) {
    throw new Error(`This is not valid JSON: ${x.message}. Check the quotes, commas and brackets.`);
  }
}

/** prettyJSON returns a JSON value as the form shows it: indented, or "" for none. */
export function prettyJSON(value) {
  if (value === null || value === undefined || value === "") return "";
  return JSON.stringify(value, null, 2);
}

/**
 * readForm turns the form's values into the mutation's input, with an
 * error for each field whose JSON the browser can already tell is wrong.
 * For an edit (initial: the values the form opened with), the example and
 * the schema are sent only when they changed, so that saving a description
 * records no change to them; an emptied one is removed (null).
 */
export function readForm(v, initial) {
  const errors = {};
  const input = initial ? { description: v.description } : { name: v.name.trim(), description: v.description };
  for (const f of ["example", "jsonSchema"]) {
    if (initial && v[f] === initial[f]) continue;
    try {
      input[f] = parseJSONText(v[f]);
    } catch (x) {
      errors[f] = x.message;
    }
  }
  return { input, errors };
}

/** SAY replaces the API's names that a server message may hold with words. */
const SAY = [
  [/\bjsonSchema\b/g, "the JSON Schema"],
  [/\bupdateEventType\b/g, "Edit"],
  [/\bunarchiveEventType\b/g, "Unarchive"],
  [/\b(createEventType|importEventTypes)\b/g, "Add event type"],
  [/\bcatalogId\b/g, "the catalog"],
  [/\beventTypes\b/g, "the catalog"],
  [/\bat \/:/g, "at the top level:"],
  [/\b[A-Z][A-Z0-9]*_[A-Z0-9_]+\b/g, (w) => w.toLowerCase().replace(/_/g, " ")],
];

/** say rewrites a server message for a person: the API's names in words, a capital first. */
export function say(message) {
  let m = String(message || "");
  for (const [re, words] of SAY) m = m.replace(re, words);
  return m.charAt(0).toUpperCase() + m.slice(1);
}

/**
 * problems sorts the errors of a failed save (GraphQL errors, with
 * extensions) into a message per form field (fields) and what belongs to
 * no field (form). name is the type's name, for the message of a name
 * already taken.
 */
export function problems(errors, name) {
  const fields = {};
  const form = [];
  for (const e of errors || []) {
    const ext = e.extensions || {};
    const path = ext.field || "";
    let f = path.replace(/^input\./, "");
    if (f === "catalogId") f = "where";
    let message = path ? String(e.message).replace(`${path}: `, "") : String(e.message);
    if (ext.code === "CONFLICT" && ext.reason === "EVENT_TYPE_EXISTS") {
      f = "name";
      message = /shared catalog/.test(message)
        ? `${name} is already a type of the shared catalog this app publishes: use that one, or choose another name.`
        : `There is already an event type named ${name} here (perhaps archived): edit or unarchive that one, or choose another name.`;
    }
    if (FIELDS.includes(f)) {
      if (!fields[f]) fields[f] = say(message);
    } else {
      form.push(say(message));
    }
  }
  return { fields, form: form.join(" ") };
}

/** attention says how many fields need attention. */
export function attention(fields) {
  const n = Object.keys(fields).length;
  return n === 0 ? "" : n === 1 ? "One field needs your attention." : `${n} fields need your attention.`;
}
