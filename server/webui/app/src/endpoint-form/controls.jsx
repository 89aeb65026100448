// The endpoint form's flow controls: a payload filter (tried on recent
// events before saving), a rate limit and the order of delivery.
import { useState } from "preact/hooks";
import { fieldErrors } from "../api.js";
import { Field } from "../ui.jsx";

const ORDERINGS = [
  ["NONE", "Any order (fastest)"],
  ["KEY", "One at a time per key (such as per order), in the order they happened"],
  ["STRICT", "One at a time, in the order they happened"],
];

const TRY_FILTER = `query TryFilter($f: JSON!) { testFilter(filter: $f, recent: 20) { matchCount results { matched } } }`;

/** parseFilter returns the filter as JSON (null when empty), or throws an error naming its field. */
export function parseFilter(text) {
  if (!text.trim()) return null;
  try {
    return JSON.parse(text);
  } catch (x) {
    throw Object.assign(new Error(`This is not valid JSON: ${x.message}`), { field: "input.filter" });
  }
}

export const controls = {
  name: "controls",
  open: ["filter", "rateLimit", "ordering"],
  initial: (ep) => ({
    ordering: ep ? ep.ordering : "NONE",
    limitRequests: ep && ep.rateLimit ? String(ep.rateLimit.requests) : "",
    limitPer: ep && ep.rateLimit ? ep.rateLimit.per : "1s",
    filter: ep && ep.filter ? JSON.stringify(ep.filter, null, 2) : "",
  }),
  toInput: (v) => ({
    ordering: v.ordering,
    rateLimit: v.limitRequests.trim() ? { requests: Number(v.limitRequests), per: v.limitPer.trim() } : null,
    filter: parseFilter(v.filter),
  }),
  Section({ v, set, err, id, api }) {
    const [tried, setTried] = useState(null); // {text} or {error}
    const tryFilter = async () => {
      setTried(null);
      try {
        const f = parseFilter(v.filter);
        if (!f) return setTried({ text: "Without a filter, every event of the chosen types is delivered." });
        const d = await api.gql(TRY_FILTER, { f });
        const n = d.testFilter.results.length;
        setTried({ text: n ? `Matches ${d.testFilter.matchCount} of the latest ${n} events.` : "There are no events yet to try it on." });
      } catch (x) {
        const fe = x.field ? { [x.field]: x.message } : fieldErrors(x);
        const first = Object.entries(fe)[0];
        const where = first ? first[0].replace(/^(input\.)?filter\.?/, "") : "";
        setTried({ error: first ? (where ? `At ${where}: ${first[1]}` : first[1]) : x.message });
      }
    };
    return (
      <details class="advanced" open={!!(err("filter") || err("rateLimit") || err("ordering"))} data-testid="controls">
        <summary>Filter, rate limit and order</summary>
        <Field
          id={id("filter")}
          label="Payload filter (optional)"
          hint={'JSON that events must match, such as {"data.total": {"$gte": 100}}. Paths start at type, id, timestamp or data; operators: $eq $ne $gt $gte $lt $lte $in $nin $exists $startsWith $endsWith $and $or $not.'}
          error={err("filter")}
        >
          {(p) => <textarea {...p} rows="4" class="mono" value={v.filter} onInput={(e) => set("filter", e.currentTarget.value)} data-testid="filter" spellcheck={false} />}
        </Field>
        <p class="try-filter">
          <button type="button" class="btn btn-small" onClick={tryFilter} data-testid="try-filter">
            Try it on recent events
          </button>{" "}
          <span role="status" data-testid="filter-result" class={tried && tried.error ? "field-error" : ""}>
            {tried && (tried.error || tried.text)}
          </span>
        </p>
        <fieldset class="fieldset grid-4">
          <legend>Rate limit</legend>
          <Field id={id("requests")} label="Requests" hint="Empty: no limit." error={err("rateLimit.requests")}>
            {(p) => <input {...p} type="number" min="1" max="10000" value={v.limitRequests} onInput={(e) => set("limitRequests", e.currentTarget.value)} data-testid="limit-requests" />}
          </Field>
          <Field id={id("per")} label="Per" hint="Such as 1s or 1m." error={err("rateLimit.per")}>
            {(p) => <input {...p} value={v.limitPer} onInput={(e) => set("limitPer", e.currentTarget.value)} data-testid="limit-per" />}
          </Field>
        </fieldset>
        <Field id={id("ordering")} label="Order" hint="Ordered webhooks go one at a time: a failing one holds back those after it." error={err("ordering")}>
          {(p) => (
            <select {...p} value={v.ordering} onChange={(e) => set("ordering", e.currentTarget.value)} data-testid="ordering">
              {ORDERINGS.map(([k, label]) => (
                <option value={k}>{label}</option>
              ))}
            </select>
          )}
        </Field>
      </details>
    );
  },
};
