// Unit tests of the event type form's rules (catalog-form.js), run with
// node --test by the Go test TestWebApp_CatalogFormRules. Not part of the
// build: no page imports it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { attention, mayChange, parseJSONText, prettyJSON, problems, readForm, say } from "./catalog-form.js";

test("mayChange: own types with the right to manage, shared ones with an admin key, never Herald's own", () => {
  const own = { shared: false, builtIn: false };
  const shared = { shared: true, builtIn: false };
  const system = { shared: true, builtIn: true };
  const cases = [
    [own, { manage: true, admin: false }, true],
    [own, { manage: false, admin: true }, false],
    [shared, { manage: true, admin: false }, false],
    [shared, { manage: true, admin: true }, true],
    [system, { manage: true, admin: true }, false],
  ];
  for (const [t, who, want] of cases) assert.equal(mayChange(t, who), want, JSON.stringify({ t, who }));
});

test("parseJSONText: empty is null, JSON is its value, anything else a message without code words", () => {
  assert.equal(parseJSONText(""), null);
  assert.equal(parseJSONText("  \n"), null);
  assert.deepEqual(parseJSONText('{"a": [1, 2]}'), { a: [1, 2] });
  assert.throws(() => parseJSONText('{"a": 1,}'), /^Error: This is not valid JSON: .*Check the quotes/);
});

test("prettyJSON: indented, empty for none", () => {
  assert.equal(prettyJSON(null), "");
  assert.equal(prettyJSON(undefined), "");
  assert.equal(prettyJSON({ a: 1 }), '{\n  "a": 1\n}');
});

test("readForm: a new type sends every field; invalid JSON is an error at its field", () => {
  const { input, errors } = readForm({ name: " invoice.paid ", description: "Paid.", example: '{"id": 1}', jsonSchema: "{nope" }, null);
  assert.deepEqual(input, { name: "invoice.paid", description: "Paid.", example: { id: 1 } });
  assert.deepEqual(Object.keys(errors), ["jsonSchema"]);
});

test("readForm: an edit sends the example and schema only when changed, null when emptied", () => {
  const initial = { description: "Old.", example: '{\n  "id": 1\n}', jsonSchema: '{\n  "type": "object"\n}' };
  let r = readForm({ ...initial, description: "New." }, initial);
  assert.deepEqual(r.input, { description: "New." });
  r = readForm({ ...initial, example: "", jsonSchema: '{"type": "object", "required": ["id"]}' }, initial);
  assert.deepEqual(r.input, { description: "Old.", example: null, jsonSchema: { type: "object", required: ["id"] } });
  assert.deepEqual(r.errors, {});
});

test("problems: each error at its field, in words; a taken name at the name; the rest for the form", () => {
  const p = problems(
    [
      { message: 'input.name: "Bad" is not a valid event type name', extensions: { code: "BAD_USER_INPUT", field: "input.name" } },
      { message: "input.example: does not match jsonSchema: at /total: want number", extensions: { code: "BAD_USER_INPUT", field: "input.example" } },
      { message: "a catalog holds at most 1000 event types", extensions: { code: "FORBIDDEN", reason: "QUOTA" } },
    ],
    "Bad",
  );
  assert.deepEqual(p.fields, {
    name: '"Bad" is not a valid event type name',
    example: "Does not match the JSON Schema: at /total: want number",
  });
  assert.equal(p.form, "A catalog holds at most 1000 event types");
  assert.equal(attention(p.fields), "2 fields need your attention.");

  const taken = problems([{ message: 'input.name: event type "a.b" already exists in this app; use updateEventType to change it', extensions: { code: "CONFLICT", reason: "EVENT_TYPE_EXISTS", field: "input.name" } }], "a.b");
  assert.match(taken.fields.name, /^There is already an event type named a\.b here/);
  const shadow = problems([{ message: 'input.name: event type "a.b" is already in the shared catalog, which this app publishes from', extensions: { code: "CONFLICT", reason: "EVENT_TYPE_EXISTS", field: "input.name" } }], "a.b");
  assert.match(shadow.fields.name, /shared catalog this app publishes: use that one/);
  const where = problems([{ message: 'input.catalogId: catalog "x" does not exist: the catalogs query lists them', extensions: { code: "BAD_USER_INPUT", field: "input.catalogId" } }], "a.b");
  assert.deepEqual(Object.keys(where.fields), ["where"]);
  assert.equal(attention({}), "");
});

test("say: the API's names become words", () => {
  assert.equal(
    say("this app has 100 event types, its limit (EVENT_TYPES is 100): ask the platform to raise the app's EVENT_TYPES limit"),
    "This app has 100 event types, its limit (event types is 100): ask the platform to raise the app's event types limit",
  );
  assert.equal(say("use updateEventType to change it"), "Use Edit to change it");
  assert.equal(say("leave catalogId out"), "Leave the catalog out");
  assert.equal(say("does not match jsonSchema: at /: missing property 'id'"), "Does not match the JSON Schema: at the top level: missing property 'id'");
});
