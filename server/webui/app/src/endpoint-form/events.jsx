// The endpoint form's choice of events: every event, whole groups (order.*,
// including types added later), or single types, grouped like the catalog
// and searchable.
import { useState } from "preact/hooks";
import { Field, Json } from "../ui.jsx";
import { groupTypes, matchesSearch, prefixOf } from "../catalog.jsx";

export const events = {
  name: "events",
  initial: (ep) => ({ eventTypes: ep ? [...ep.eventTypes] : [] }),
  toInput: (v) => ({ eventTypes: v.eventTypes }),
  Section({ v, set, err, id, catalog }) {
    const [q, setQ] = useState("");
    const chosen = v.eventTypes;
    const all = chosen.includes("*");
    const toggle = (pattern, on) => set("eventTypes", on ? [...chosen.filter((t) => t !== pattern), pattern] : chosen.filter((t) => t !== pattern));
    const shown = catalog.filter((t) => matchesSearch(t, q));
    // Patterns chosen before that the catalog has no group for (a type
    // since archived, a deeper prefix such as order.item.*) stay visible.
    const known = new Set([...catalog.map((t) => t.name), ...catalog.map((t) => `${prefixOf(t.name)}.*`), "*"]);
    const other = chosen.filter((t) => !known.has(t));
    const error = err("eventTypes");
    return (
      <fieldset class={`fieldset${error ? " field-invalid" : ""}`} data-testid="event-types" aria-describedby={error ? id("events-error") : undefined}>
        <legend>Events to receive</legend>
        {error && (
          <p class="field-error" id={id("events-error")} data-testid="field-error">
            {error}
          </p>
        )}
        <label class="check">
          <input
            type="checkbox"
            checked={all}
            onChange={(e) => toggle("*", e.currentTarget.checked)}
            data-testid="type-*"
            aria-invalid={error ? "true" : undefined}
          />
          <span>
            <strong>All events</strong>, including ones added later
          </span>
        </label>
        <Field id={id("type-search")} label="Find events" class="search">
          {(p) => <input {...p} type="search" value={q} onInput={(e) => setQ(e.currentTarget.value)} data-testid="type-search" autocomplete="off" />}
        </Field>
        {groupTypes(shown).map(([prefix, list]) => {
          const wildcard = `${prefix}.*`;
          const groupOn = all || chosen.includes(wildcard);
          return (
            <div class="type-group" data-testid="type-group" data-prefix={prefix}>
              <label class="check type-group-head">
                <input type="checkbox" checked={groupOn} disabled={all} onChange={(e) => toggle(wildcard, e.currentTarget.checked)} data-testid={`type-${wildcard}`} />
                <span>
                  <strong>All {prefix} events</strong> <code class="chip">{wildcard}</code>, including ones added later
                </span>
              </label>
              {list.map((et) => (
                <div class="type-choice">
                  <label class="check">
                    <input
                      type="checkbox"
                      checked={groupOn || chosen.includes(et.name)}
                      disabled={groupOn}
                      onChange={(e) => toggle(et.name, e.currentTarget.checked)}
                      data-testid={`type-${et.name}`}
                    />
                    <span>
                      <code>{et.name}</code>
                      {et.description && <span class="type-desc"> · {et.description}</span>}
                    </span>
                  </label>
                  {et.example && (
                    <details class="example">
                      <summary>
                        Example payload<span class="sr-only"> of {et.name}</span>
                      </summary>
                      <Json value={et.example} label={`Example payload of ${et.name}`} />
                    </details>
                  )}
                </div>
              ))}
            </div>
          );
        })}
        {other.map((t) => (
          <label class="check">
            <input type="checkbox" checked onChange={() => toggle(t, false)} />
            <span>
              <code>{t}</code>
            </span>
          </label>
        ))}
      </fieldset>
    );
  },
};
