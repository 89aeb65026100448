// The audit log: who changed what, when and from where, newest first. The
// console shows an app's whole log; a portal session sees its own changes
// (the API narrows it).
import { useCallback } from "preact/hooks";
import { Notice, fmtTime } from "./ui.jsx";
import { Pager, usePages } from "./paging.jsx";

const AUDIT = `query AuditLog($first: Int, $last: Int, $after: Cursor, $before: Cursor) {
  auditLog(first: $first, last: $last, after: $after, before: $before) {
    totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { node { id createdAt actorKind actorID actorName action targetType targetID changes remoteAddr requestID } }
  }
}`;

const ACTOR = { ADMIN_KEY: "Admin key", API_KEY: "API key", PORTAL_SESSION: "Portal session" };

/** changesText shows a record's changed fields as "name: value" pairs. */
function changesText(changes) {
  if (!changes || typeof changes !== "object") return "—";
  return Object.entries(changes)
    .map(([k, v]) => `${k}: ${typeof v === "string" ? v : JSON.stringify(v)}`)
    .join(", ");
}

export function AuditLog({ api, title = "Audit log", lead }) {
  const load = useCallback((vars) => api.gql(AUDIT, vars).then((d) => d.auditLog), [api]);
  const pages = usePages(load, "audit");
  const rows = pages.page ? pages.page.rows : null;
  return (
    <section aria-labelledby="audit-title">
      <div class="section-head">
        <h1 id="audit-title">{title}</h1>
      </div>
      <p class="lead">{lead || "Every change made through the API: who made it, what changed, when and from where. Secrets show as “changed”."}</p>
      <Notice kind="error">{pages.error}</Notice>
      <div class="card table-card">
        <table class="table rows" data-testid="audit">
          <caption class="sr-only">Changes, newest first</caption>
          <thead>
            <tr>
              <th scope="col">When</th>
              <th scope="col">Who</th>
              <th scope="col">Change</th>
              <th scope="col">Target</th>
              <th scope="col">Fields</th>
              <th scope="col">From</th>
            </tr>
          </thead>
          <tbody>
            {(rows || []).map((r) => (
              <tr data-testid="audit-row" data-action={r.action}>
                <td data-label="When">{fmtTime(r.createdAt)}</td>
                <td data-label="Who">
                  {ACTOR[r.actorKind] || r.actorKind} <span class="small">{r.actorName || r.actorID}</span>
                </td>
                <td data-label="Change" class="mono">
                  {r.action}
                </td>
                <td data-label="Target" class="mono">
                  {r.targetType} {r.targetID}
                </td>
                <td data-label="Fields" class="error-cell">
                  {changesText(r.changes)}
                </td>
                <td data-label="From" class="mono" title={r.requestID ? `request ${r.requestID}` : undefined}>
                  {r.remoteAddr || "—"}
                </td>
              </tr>
            ))}
            {rows && rows.length === 0 && (
              <tr>
                <td colSpan={6} class="empty">
                  No changes yet.
                </td>
              </tr>
            )}
          </tbody>
        </table>
      </div>
      <Pager pages={pages} what="changes" />
    </section>
  );
}
