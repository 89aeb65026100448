// Cursor paging through a connection, newest first, both ways: newest,
// newer, older and oldest pages of a fixed size.
import { useCallback, useEffect, useRef, useState } from "preact/hooks";

export const PAGE_SIZE = 50;

/**
 * usePages loads pages of a connection. load(vars) returns the connection
 * ({totalCount, pageInfo, edges}) for paging variables (first/after or
 * last/before) merged by the caller with its filters; key changes (a new
 * filter) start again at the newest page.
 */
export function usePages(load, key) {
  const [page, setPage] = useState(null); // {rows, pageInfo, total, at}
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const seq = useRef(0);
  const go = useCallback(
    async (at, cursor) => {
      const vars =
        at === "newest"
          ? { first: PAGE_SIZE }
          : at === "older"
            ? { first: PAGE_SIZE, after: cursor }
            : at === "newer"
              ? { last: PAGE_SIZE, before: cursor }
              : { last: PAGE_SIZE };
      const n = ++seq.current;
      setBusy(true);
      try {
        const c = await load(vars);
        if (n !== seq.current) return;
        setError("");
        setPage({ rows: c.edges.map((e) => e.node), pageInfo: c.pageInfo, total: c.totalCount, at });
      } catch (e) {
        if (n === seq.current) setError(e.message);
      } finally {
        if (n === seq.current) setBusy(false);
      }
    },
    [load],
  );
  useEffect(() => {
    setPage(null);
    go("newest");
  }, [key, go]);
  // isNewest: no newer rows exist, so live rows may be added on top.
  const isNewest = !!page && !page.pageInfo.hasPreviousPage;
  return {
    page,
    setPage,
    error,
    busy,
    isNewest,
    newest: () => go("newest"),
    newer: () => page && go("newer", page.pageInfo.startCursor),
    older: () => page && go("older", page.pageInfo.endCursor),
    oldest: () => go("oldest"),
    reload: () => (page ? go(page.at === "newer" || page.at === "oldest" ? "oldest" : "newest") : go("newest")),
  };
}

/** Pager is the row of paging buttons under a list. */
export function Pager({ pages, what, labels = ["Newest", "Newer", "Older", "Oldest"] }) {
  const p = pages.page;
  if (!p) return null;
  const { hasNextPage: older, hasPreviousPage: newer } = p.pageInfo;
  return (
    <nav class="pager" aria-label={`Pages of ${what}`} data-testid="pager">
      <button type="button" class="btn btn-small" disabled={!newer || pages.busy} onClick={pages.newest} data-testid="page-newest">
        {labels[0]}
      </button>
      <button type="button" class="btn btn-small" disabled={!newer || pages.busy} onClick={pages.newer} data-testid="page-newer">
        {labels[1]}
      </button>
      <span class="hint" data-testid="page-total">
        {p.total === 1 ? `1 ${what.replace(/s$/, "")}` : `${p.total.toLocaleString()} ${what}`}
      </span>
      <button type="button" class="btn btn-small" disabled={!older || pages.busy} onClick={pages.older} data-testid="page-older">
        {labels[2]}
      </button>
      <button type="button" class="btn btn-small" disabled={!older || pages.busy} onClick={pages.oldest} data-testid="page-oldest">
        {labels[3]}
      </button>
    </nav>
  );
}

/**
 * searchWhere turns what a person typed into a filter: a delivery ID, an
 * event ID, or else an idempotency key (for deliveries, of their event).
 */
export function searchWhere(q, kind) {
  const s = q.trim();
  if (!s) return {};
  if (kind === "deliveries") {
    if (s.startsWith("dlv_")) return { id: s };
    if (s.startsWith("evt_")) return { eventID: s };
    return { hasEventWith: [{ idempotencyKey: s }] };
  }
  if (s.startsWith("evt_")) return { id: s };
  if (s.startsWith("dlv_")) return { hasDeliveriesWith: [{ id: s }] };
  return { idempotencyKey: s };
}
