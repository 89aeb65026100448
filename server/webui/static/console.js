// Herald live console. Loaded after the vendored graphql-ws UMD bundle, which
// defines the global graphqlWs. Plain browser JavaScript, no build step.
//
// Queries and mutations go over HTTP POST to the same-origin GraphQL
// endpoint with "Authorization: Bearer <key>"; the live feed is a
// deliveryUpdated subscription over a graphql-ws ("graphql-transport-ws")
// WebSocket that sends the same header in connection_init. The API key lives
// in memory, and in sessionStorage only when the user asks for it ("Remember
// in this tab"); never in storage that outlives the tab, nor in a URL.
(function () {
  "use strict";

  const $ = (id) => document.getElementById(id);

  let config = {};
  try {
    config = JSON.parse($("herald-console-config").textContent);
  } catch (e) {
    console.error("herald console: bad or missing #herald-console-config", e);
  }

  const MAX_ROWS = config.maxRows > 0 ? config.maxRows : 200;
  const RECENT = Math.min(50, MAX_ROWS); // deliveries loaded when the feed (re)starts
  const KEY_STORAGE = "herald.console.apiKey"; // sessionStorage only
  const LAGGED = "SUBSCRIBER_LAGGED";

  const httpURL = new URL(config.endpoint || "/graphql", window.location.href);
  const wsURL = new URL(httpURL.href);
  wsURL.protocol = httpURL.protocol === "https:" ? "wss:" : "ws:";

  const ui = {
    form: $("connect-form"),
    key: $("api-key"),
    remember: $("remember-key"),
    connect: $("connect"),
    state: $("conn-state"),
    stateText: $("conn-state-text"),
    endpoint: $("endpoint"),
    endpointMeta: $("endpoint-meta"),
    sendTest: $("send-test"),
    testResult: $("test-result"),
    rowCount: $("row-count"),
    clear: $("clear"),
    error: $("console-error"),
    errorText: $("console-error-text"),
    resubscribe: $("resubscribe"),
    dismissError: $("dismiss-error"),
    info: $("console-info"),
    tbody: $("deliveries"),
    empty: $("empty"),
    emptyHint: $("empty-hint"),
    stats: $("stats"),
    statsTitle: $("stats-title"),
    statsUpdated: $("stats-updated"),
    tileSuccess: $("tile-success"),
    tileDeliveries: $("tile-deliveries"),
    tileLatency: $("tile-latency"),
    tileBacklog: $("tile-backlog"),
    chartVolume: $("chart-volume"),
    chartSuccess: $("chart-success"),
    chartLatency: $("chart-latency"),
    attentionList: $("attention-list"),
    attentionNone: $("attention-none"),
  };

  const graphqlWs = window.graphqlWs;
  if (!graphqlWs || !graphqlWs.createClient) {
    showError("The console could not start: the graphql-ws script is missing.");
    ui.connect.disabled = true;
    return;
  }

  // ---- GraphQL documents --------------------------------------------------

  const ENDPOINTS = `query HeraldConsoleEndpoints {
  endpoints(first: 100) { edges { node { id name url isActive health ordering filter rateLimit { requests per }
    flow { concurrency maxConcurrency ratePerSecond pausedUntil throttled } } } }
}`;

  const RECENT_DELIVERIES = `query HeraldConsoleRecent($first: Int!, $where: DeliveryWhereInput) {
  deliveries(first: $first, orderBy: {field: CREATED_AT, direction: DESC}, where: $where) {
    edges { node {
      id createdAt updatedAt eventID endpointID eventType status attemptCount lastResponseStatus lastError nextAttemptAt
      attempts(first: 1, orderBy: {field: ATTEMPT_NUMBER, direction: DESC}) { edges { node { durationMs } } }
    } }
  }
}`;

  const FEED = `subscription HeraldConsoleFeed($ep: ID) {
  deliveryUpdated(endpointId: $ep) {
    kind deliveryId eventId endpointId eventType status
    attemptNumber responseStatus durationMs error nextAttemptAt at
  }
}`;

  // Statistics of the last hour in one-minute buckets, pushed at most once
  // a second as attempts are recorded.
  const STATS = `subscription HeraldConsoleStats($ep: ID) {
  statsUpdated(endpointId: $ep, window: "1h", bucket: "1m") {
    to
    total { attempts { total } deliveries { total succeeded failed } successRate latency { p50Ms p95Ms p99Ms } }
    columns { start attempts attemptsSucceeded attemptsRetryable attemptsPermanent successRate p50Ms p95Ms p99Ms }
  }
}`;

  const APP_BACKLOG = `query HeraldConsoleBacklog { viewer { app { backlog { unfinished due oldestDueAt } } } }`;
  const ENDPOINT_BACKLOG = `query HeraldConsoleEndpointBacklog($id: ID!) {
  node(id: $id) { ... on Endpoint { backlog { unfinished due oldestDueAt } } }
}`;
  const BACKLOG_REFRESH_MS = 5000;

  const RETRY = `mutation HeraldConsoleRetry($id: ID!) { retryDelivery(id: $id) { id status } }`;

  const TEST = `mutation HeraldConsoleTest($id: ID!) {
  testEndpoint(id: $id) { delivered statusCode durationMs error }
}`;

  // ---- Small helpers ------------------------------------------------------

  function el(tag, className, text) {
    const e = document.createElement(tag);
    if (className) e.className = className;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function dash() {
    return el("span", "dash", "—");
  }

  function pad(n, w) {
    return String(n).padStart(w || 2, "0");
  }

  function fmtTime(ms) {
    const d = new Date(ms);
    return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
  }

  function fmtDuration(ms) {
    if (ms < 1000) return `${ms} ms`;
    return `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
  }

  function isCloseEvent(e) {
    return !!e && typeof e.code === "number" && "reason" in e;
  }

  function closeText(e) {
    return e.code + (e.reason ? ` ${e.reason}` : "");
  }

  function errorMessages(errors) {
    return errors.map((e) => (e && e.message) || String(e)).join("; ");
  }

  function showError(message, opts) {
    ui.errorText.textContent = message;
    ui.resubscribe.hidden = !(opts && opts.resubscribe);
    ui.error.hidden = false;
  }

  function hideError() {
    ui.error.hidden = true;
    ui.resubscribe.hidden = true;
  }

  function showInfo(message) {
    ui.info.textContent = message;
    ui.info.hidden = !message;
  }

  const STATE_TEXT = {
    disconnected: "Disconnected",
    connecting: "Connecting…",
    live: "Live",
    reconnecting: "Reconnecting…",
    stopped: "Feed stopped",
    rejected: "Key rejected",
    error: "Disconnected",
  };

  function setState(state, text) {
    ui.state.dataset.state = state;
    ui.stateText.textContent = text || STATE_TEXT[state] || state;
    renderEmpty();
  }

  // ---- Session ------------------------------------------------------------

  // A session is one connection with one key. Callbacks of an older session
  // (after Disconnect or a new Connect) are ignored.
  let session = null;

  // gql runs a query or mutation over HTTP and returns its data, or throws
  // an Error with the GraphQL errors (err.code: the first extensions.code).
  async function gql(s, query, variables) {
    let res;
    try {
      res = await fetch(httpURL.href, {
        method: "POST",
        headers: {
          "Content-Type": "application/json",
          Accept: "application/json",
          Authorization: `Bearer ${s.key}`,
        },
        body: JSON.stringify({ query, variables }),
        credentials: "omit",
        cache: "no-store",
      });
    } catch (e) {
      throw new Error(`cannot reach ${httpURL.pathname}: ${e.message}`);
    }
    let body = null;
    try {
      body = await res.json();
    } catch (e) {
      throw new Error(`HTTP ${res.status} ${res.statusText}`.trim());
    }
    if (body && Array.isArray(body.errors) && body.errors.length) {
      const err = new Error(errorMessages(body.errors));
      err.code = body.errors[0].extensions && body.errors[0].extensions.code;
      if (err.code === "UNAUTHENTICATED") reject(s, err.message);
      throw err;
    }
    if (!res.ok || !body || !body.data) throw new Error(`HTTP ${res.status} ${res.statusText}`.trim());
    return body.data;
  }

  function connect(key) {
    disconnect();
    hideError();
    showInfo("");
    const s = {
      key,
      closed: false,
      everConnected: false,
      endpoints: new Map(),
      feed: null, // the running subscription: {unsubscribe}
      lagRetried: false, // the one automatic resubscription after a lag was used
      lastEndpointRefresh: 0,
      endpointTimer: 0,
      stats: null, // the running statsUpdated subscription: {unsubscribe}
      backlogTimer: 0,
      backlogGen: 0, // bumped by stopStats: a backlog read of an earlier generation is dropped
    };
    session = s;
    setState("connecting");
    renderControls();

    s.client = graphqlWs.createClient({
      url: wsURL.href,
      lazy: false,
      connectionParams: { Authorization: `Bearer ${key}` },
      retryAttempts: 20,
      retryWait: (retries) =>
        new Promise((resolve) => setTimeout(resolve, Math.min(30000, 1000 * 2 ** retries) + Math.random() * 1000)),
      // 44xx closes (4401 bad key, 4429 too many connections) are final:
      // reconnecting with the same key cannot help.
      shouldRetry: (e) => !(isCloseEvent(e) && e.code >= 4400 && e.code <= 4499),
      onNonLazyError: (e) => connectionFailed(s, e),
      on: {
        connecting: () => {
          if (s === session && !s.closed) setState(s.everConnected ? "reconnecting" : "connecting");
        },
        connected: () => {
          if (s !== session || s.closed) return;
          const reconnected = s.everConnected;
          s.everConnected = true;
          setState(s.feed ? "live" : "stopped");
          if (reconnected) {
            // Updates sent while the socket was down are lost: reload.
            loadRecent(s);
          } else {
            // The server accepted the key: load the endpoints, then the
            // recent deliveries (whose rows show endpoint names).
            loadEndpoints(s).then(() => loadRecent(s));
          }
        },
        closed: (e) => {
          if (s !== session || s.closed) return;
          if (isCloseEvent(e) && e.code === 4401) {
            reject(s, e.reason);
          } else if (isCloseEvent(e) && e.code >= 4400 && e.code <= 4499) {
            connectionFailed(s, e);
          } else if (s.everConnected) {
            setState("reconnecting");
          }
        },
      },
    });

    // graphql-ws sends the subscriptions once the server acknowledges the
    // connection, which authenticates the key.
    startFeed(s);
    startStats(s);
  }

  function disconnect() {
    const s = session;
    if (!s) return;
    endSession(s);
    setState("disconnected");
    renderControls();
  }

  // reject ends a session whose key the server refused (HTTP
  // UNAUTHENTICATED or websocket close 4401), without reconnecting.
  function reject(s, reason) {
    if (s !== session || s.closed) return;
    endSession(s);
    setState("rejected");
    showError(`Key rejected${reason ? `: ${reason}` : ""}. Check the key and connect again.`);
    ui.key.focus();
  }

  // connectionFailed ends a session whose connection cannot be (re)made.
  function connectionFailed(s, e) {
    if (s !== session || s.closed) return;
    if (isCloseEvent(e) && e.code === 4401) {
      reject(s, e.reason);
      return;
    }
    endSession(s);
    setState("error");
    if (isCloseEvent(e) && e.code === 4429) {
      showError(
        `Too many live connections for this key (4429${e.reason ? `: ${e.reason}` : ""}). ` +
          "Close other consoles or subscribers using it, then connect again."
      );
    } else if (isCloseEvent(e)) {
      showError(`The connection to Herald closed (${closeText(e)}). Connect again.`);
    } else {
      showError(`Cannot connect to ${wsURL.href}${e && e.message ? `: ${e.message}` : ""}. Connect again.`);
    }
  }

  function endSession(s) {
    s.closed = true;
    stopFeed(s);
    stopStats(s);
    clearTimeout(s.endpointTimer);
    // dispose rejects with the close event when the connection never
    // succeeded; that was reported already.
    Promise.resolve(s.client.dispose()).catch(() => {});
    session = null;
    renderControls();
  }

  // ---- Endpoints ----------------------------------------------------------

  async function loadEndpoints(s) {
    s.lastEndpointRefresh = Date.now();
    let data;
    try {
      data = await gql(s, ENDPOINTS);
    } catch (e) {
      if (s === session && !s.closed && e.code !== "UNAUTHENTICATED") showError(`Could not load endpoints: ${e.message}`);
      return;
    }
    if (s !== session || s.closed) return;
    s.endpoints = new Map(data.endpoints.edges.map((edge) => [edge.node.id, edge.node]));
    renderEndpointOptions(s);
    renderAttention(s);
    // Names of endpoints already in the table.
    for (const row of rows.values()) renderRow(row, false);
  }

  // Endpoints change as deliveries finish (health) and may be created after
  // connecting (an unknown ID in the feed): look them up again, at most
  // every few seconds.
  const ENDPOINT_REFRESH_MS = 1500;

  function noteEndpoint(s, c) {
    const unknown = !s.endpoints.has(c.endpointId);
    if (!unknown && c.kind !== "ATTEMPT_FINISHED" && c.kind !== "CANCELLED") return;
    if (s.endpointTimer) return;
    const wait = Math.max(0, s.lastEndpointRefresh + ENDPOINT_REFRESH_MS - Date.now());
    s.endpointTimer = setTimeout(() => {
      s.endpointTimer = 0;
      if (s === session && !s.closed) loadEndpoints(s);
    }, wait);
  }

  function renderEndpointOptions(s) {
    const selected = ui.endpoint.value;
    const list = Array.from(s.endpoints.values()).sort((a, b) => a.name.localeCompare(b.name));
    const options = [["", "All endpoints"]].concat(
      list.map((ep) => [ep.id, `${ep.name} · ${ep.isActive ? ep.health : "DISABLED"}`])
    );
    // Rebuild only on a change, so that an open drop-down stays open.
    const current = Array.from(ui.endpoint.options, (o) => [o.value, o.text]);
    if (JSON.stringify(current) !== JSON.stringify(options)) {
      ui.endpoint.replaceChildren(...options.map(([value, text]) => new Option(text, value)));
      ui.endpoint.value = s.endpoints.has(selected) ? selected : "";
    }
    renderControls();
  }

  // paceOf says how fast Herald sends to an endpoint now, and why.
  function paceOf(ep) {
    const f = ep.flow;
    if (f.pausedUntil) return ["paused", `paused until ${new Date(f.pausedUntil).toLocaleTimeString()} (Retry-After)`];
    if (f.throttled) {
      const rate = f.ratePerSecond ? `, ${f.ratePerSecond.toFixed(1)}/s` : "";
      return ["throttled", `slowed down by its answers: ${f.concurrency} of ${f.maxConcurrency} at a time${rate}`];
    }
    if (ep.rateLimit) return ["limited", `at most ${ep.rateLimit.requests} per ${ep.rateLimit.per}`];
    return ["full", `full speed, ${f.maxConcurrency} at a time`];
  }

  function renderEndpointMeta() {
    const s = session;
    const ep = s && s.endpoints.get(ui.endpoint.value);
    if (!ep) {
      ui.endpointMeta.hidden = true;
      return;
    }
    const health = el("span", `badge badge-health-${ep.health.toLowerCase()}`, ep.isActive ? ep.health : "DISABLED");
    if (ep.health === "LIVE") health.classList.add("badge-succeeded");
    if (ep.health === "ATTENTION" || !ep.isActive) health.classList.add("badge-failed");
    const [state, text] = paceOf(ep);
    const pace = el("span", `pace pace-${state}`, text);
    pace.dataset.testid = "endpoint-pace";
    pace.dataset.state = state;
    const controls = [];
    if (ep.filter) controls.push(el("span", "control", "filtered"));
    if (ep.ordering !== "NONE") controls.push(el("span", "control", ep.ordering === "KEY" ? "ordered by key" : "strict order"));
    ui.endpointMeta.replaceChildren(health, pace, ...controls, el("span", "url", ep.url), el("span", "id", ep.id));
    ui.endpointMeta.hidden = false;
  }

  // ---- The feed -----------------------------------------------------------

  function startFeed(s) {
    stopFeed(s);
    const ep = ui.endpoint.value || null;
    const feed = {};
    s.feed = feed;
    feed.unsubscribe = s.client.subscribe(
      { query: FEED, variables: { ep } },
      {
        next: (result) => {
          if (s.feed !== feed) return;
          if (result.errors && result.errors.length) showError(errorMessages(result.errors));
          if (result.data && result.data.deliveryUpdated) applyChange(s, result.data.deliveryUpdated);
        },
        error: (err) => {
          if (s.feed !== feed || s !== session || s.closed) return;
          s.feed = null;
          feedFailed(s, err);
        },
        complete: () => {
          if (s.feed !== feed || s !== session || s.closed) return;
          s.feed = null;
          setState("stopped");
          showError("The server ended the live feed.", { resubscribe: true });
        },
      }
    );
    if (s.everConnected) setState("live");
  }

  function stopFeed(s) {
    const feed = s.feed;
    s.feed = null;
    if (feed) feed.unsubscribe();
  }

  function feedFailed(s, err) {
    if (isCloseEvent(err) || !Array.isArray(err)) {
      connectionFailed(s, err);
      return;
    }
    const lagged = err.some((e) => e && e.extensions && e.extensions.reason === LAGGED);
    if (lagged && !s.lagRetried) {
      // Once: resubscribe and reload what the gap may have missed.
      s.lagRetried = true;
      showInfo(
        "The live feed fell behind and the server stopped it; the console subscribed again and reloaded recent deliveries."
      );
      startFeed(s);
      loadRecent(s);
      return;
    }
    setState("stopped");
    if (lagged) {
      showError(
        "The live feed fell behind again and was stopped. Choose a single endpoint to narrow it, or resubscribe.",
        { resubscribe: true }
      );
    } else {
      showError(`The live feed stopped: ${errorMessages(err)}`, { resubscribe: true });
    }
  }

  // restartFeed starts the feed again on the user's request (new filter,
  // Resubscribe): the automatic resubscription after a lag is available again.
  function restartFeed() {
    const s = session;
    if (!s) return;
    s.lagRetried = false;
    hideError();
    showInfo("");
    startFeed(s);
    loadRecent(s);
  }


  // ---- Statistics ---------------------------------------------------------

  // charts: the three uPlot charts, made on the first statistics.
  let charts = null;

  function cssVar(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  function chartWidth(box) {
    return Math.max(240, Math.floor(box.getBoundingClientRect().width));
  }

  function makeCharts() {
    const uPlot = window.uPlot;
    if (!uPlot) return null;
    const ok = cssVar("--ok");
    const bad = cssVar("--bad");
    const warn = cssVar("--warn");
    const primary = cssVar("--primary");
    const axis = { stroke: cssVar("--muted"), grid: { stroke: cssVar("--border") }, ticks: { stroke: cssVar("--border") } };
    const xAxis = Object.assign({}, axis, { space: 70, values: "{HH}:{mm}" });
    // Buckets without attempts have no rate or latency: draw across them,
    // with a dot on each bucket that has one.
    const line = (opts) => Object.assign({ width: 1.5, spanGaps: true, points: { show: true, size: 4 } }, opts);
    const base = (box, series, yAxis) =>
      new uPlot(
        {
          width: chartWidth(box),
          height: 150,
          legend: { show: true },
          cursor: { drag: { x: false, y: false } },
          scales: { x: { time: true } },
          axes: [xAxis, Object.assign({}, axis, yAxis)],
          series: [{ value: "{HH}:{mm}" }].concat(series.map(line)),
        },
        [[], ...series.map(() => [])],
        box
      );
    const pct = (u, v) => (v == null ? "—" : `${(v * 100).toFixed(1)}%`);
    return {
      volume: base(ui.chartVolume, [
        { label: "Succeeded", stroke: ok, fill: `${ok}22`, points: { show: false } },
        { label: "Retryable", stroke: warn, points: { show: false } },
        { label: "Failed", stroke: bad, points: { show: false } },
      ]),
      success: base(ui.chartSuccess, [{ label: "Attempts", stroke: ok, value: pct }], {
        values: (u, vals) => vals.map((v) => `${Math.round(v * 100)}%`),
      }),
      latency: base(ui.chartLatency, [
        { label: "p50", stroke: primary },
        { label: "p95", stroke: warn },
        { label: "p99", stroke: bad },
      ]),
    };
  }

  function startStats(s) {
    stopStats(s);
    const ep = ui.endpoint.value || null;
    const sub = {};
    s.stats = sub;
    ui.statsTitle.textContent = `${ep && s.endpoints.get(ep) ? s.endpoints.get(ep).name : "All endpoints"}, last hour`;
    sub.unsubscribe = s.client.subscribe(
      { query: STATS, variables: { ep } },
      {
        next: (result) => {
          if (s.stats !== sub) return;
          if (result.data && result.data.statsUpdated) renderStats(result.data.statsUpdated);
        },
        error: () => {
          // The deliveries feed reports connection problems; statistics
          // start again with the next Connect or filter change.
          if (s.stats === sub) s.stats = null;
        },
        complete: () => {
          if (s.stats === sub) s.stats = null;
        },
      }
    );
    loadBacklog(s);
  }

  function stopStats(s) {
    const sub = s.stats;
    s.stats = null;
    if (sub) sub.unsubscribe();
    s.backlogGen++;
    clearTimeout(s.backlogTimer);
  }

  function fmtPct(v) {
    return v == null ? "—" : `${(v * 100).toFixed(v === 1 ? 0 : 1)}%`;
  }

  function fmtMs(v) {
    return v == null ? "—" : v < 10 ? v.toFixed(1) : String(Math.round(v));
  }

  function renderStats(st) {
    ui.stats.hidden = false;
    const t = st.total;
    ui.tileSuccess.textContent = fmtPct(t.successRate);
    ui.tileSuccess.dataset.value = t.successRate == null ? "" : String(t.successRate);
    ui.tileDeliveries.textContent =
      t.deliveries.total === 0 ? "None finished" : `${t.deliveries.succeeded} succeeded · ${t.deliveries.failed} failed`;
    ui.tileDeliveries.dataset.succeeded = String(t.deliveries.succeeded);
    ui.tileLatency.textContent = t.latency ? `${fmtMs(t.latency.p50Ms)} · ${fmtMs(t.latency.p95Ms)} · ${fmtMs(t.latency.p99Ms)} ms` : "—";
    ui.statsUpdated.textContent = `Updated ${fmtTime(Date.now()).slice(0, 8)}`;
    if (!charts) charts = makeCharts();
    if (!charts) return;
    const c = st.columns;
    const x = c.start.map((v) => Date.parse(v) / 1000);
    const failed = c.attemptsPermanent;
    charts.volume.setData([x, c.attemptsSucceeded, c.attemptsRetryable, failed]);
    charts.success.setData([x, c.successRate]);
    charts.latency.setData([x, c.p50Ms, c.p95Ms, c.p99Ms]);
    ui.chartVolume.dataset.points = String(x.length);
    ui.chartVolume.dataset.attempts = String(c.attempts.reduce((a, b) => a + b, 0));
  }

  // loadBacklog reads the backlog now and every BACKLOG_REFRESH_MS until
  // stopStats; a read that stopStats overtook is dropped, so only one
  // loop ever runs.
  async function loadBacklog(s) {
    clearTimeout(s.backlogTimer);
    const gen = s.backlogGen;
    const ep = ui.endpoint.value || null;
    const current = () => s === session && !s.closed && s.backlogGen === gen;
    try {
      const data = ep ? await gql(s, ENDPOINT_BACKLOG, { id: ep }) : await gql(s, APP_BACKLOG);
      if (!current()) return;
      const b = ep ? data.node && data.node.backlog : data.viewer.app.backlog;
      if (b) renderBacklog(b);
    } catch (e) {
      // Tried again at the next refresh; the key's errors end the session.
    }
    if (current()) s.backlogTimer = setTimeout(() => loadBacklog(s), BACKLOG_REFRESH_MS);
  }

  function renderBacklog(b) {
    let text = `${b.unfinished} unfinished · ${b.due} due`;
    if (b.oldestDueAt) {
      const waited = Math.max(0, Date.now() - Date.parse(b.oldestDueAt));
      if (waited >= 1000) text += ` · oldest waiting ${fmtDuration(waited)}`;
    }
    ui.tileBacklog.textContent = text;
    ui.tileBacklog.dataset.due = String(b.due);
    ui.tileBacklog.dataset.unfinished = String(b.unfinished);
  }

  // renderAttention lists the endpoints that are disabled, failing,
  // paused or slowed down; choosing one narrows the console to it.
  function renderAttention(s) {
    const items = [];
    for (const ep of Array.from(s.endpoints.values()).sort((a, b) => a.name.localeCompare(b.name))) {
      let why = "";
      if (!ep.isActive) why = "disabled";
      else if (ep.flow && ep.flow.pausedUntil) why = `paused until ${new Date(ep.flow.pausedUntil).toLocaleTimeString()}`;
      else if (ep.health === "ATTENTION") why = "its latest attempt failed";
      else if (ep.flow && ep.flow.throttled) why = "slowed down by its answers";
      if (!why) continue;
      const li = el("li", "attention-item");
      li.dataset.endpointId = ep.id;
      const btn = el("button", "btn btn-small btn-quiet", ep.name);
      btn.type = "button";
      btn.addEventListener("click", () => {
        ui.endpoint.value = ep.id;
        ui.endpoint.dispatchEvent(new Event("change", { bubbles: true }));
      });
      li.append(btn, el("span", "attention-why", why));
      items.push(li);
    }
    ui.attentionList.replaceChildren(...items);
    ui.attentionNone.hidden = items.length > 0;
  }

  window.addEventListener("resize", () => {
    if (!charts) return;
    charts.volume.setSize({ width: chartWidth(ui.chartVolume), height: 150 });
    charts.success.setSize({ width: chartWidth(ui.chartSuccess), height: 150 });
    charts.latency.setSize({ width: chartWidth(ui.chartLatency), height: 150 });
  });

  // ---- Rows ---------------------------------------------------------------

  // rows: deliveryId -> {id, eventId, eventType, endpointId, status, attempt,
  // code, latency, error, nextAttemptAt, at (ms of the latest state shown),
  // created (ms, for ordering), tr}. Newest first in the table.
  const rows = new Map();

  function applyChange(s, c) {
    const at = Date.parse(c.at) || Date.now();
    let row = rows.get(c.deliveryId);
    if (row && at < row.at) return; // an older state than the one shown
    if (!row) {
      row = newRow(c.deliveryId, at);
      row.eventId = c.eventId;
      row.eventType = c.eventType;
      row.endpointId = c.endpointId;
    }
    row.at = at;
    row.status = c.status;
    row.kind = c.kind;
    if (c.attemptNumber != null) row.attempt = c.attemptNumber;
    if (c.kind === "ATTEMPT_FINISHED") {
      row.code = c.responseStatus;
      row.latency = c.durationMs;
      row.error = c.error;
    } else if (c.error) {
      row.error = c.error;
    }
    row.nextAttemptAt = c.nextAttemptAt ? Date.parse(c.nextAttemptAt) : null;
    noteEndpoint(s, c);
    placeRow(row);
    renderRow(row, true);
  }

  // applySnapshot merges a delivery read with RECENT_DELIVERIES.
  function applySnapshot(d) {
    const at = Date.parse(d.updatedAt) || 0;
    let row = rows.get(d.id);
    if (row && at <= row.at) return;
    const isNew = !row;
    if (!row) row = newRow(d.id, Date.parse(d.createdAt) || at);
    const last = d.attempts && d.attempts.edges.length ? d.attempts.edges[0].node : null;
    Object.assign(row, {
      eventId: d.eventID,
      eventType: d.eventType,
      endpointId: d.endpointID,
      status: d.status,
      attempt: d.attemptCount || null,
      code: d.lastResponseStatus,
      latency: last ? last.durationMs : null,
      error: d.lastError,
      nextAttemptAt: d.nextAttemptAt ? Date.parse(d.nextAttemptAt) : null,
      at,
    });
    if (isNew) placeRow(row);
    renderRow(row, false);
  }

  function newRow(id, created) {
    const tr = document.createElement("tr");
    tr.dataset.testid = "delivery-row";
    tr.dataset.deliveryId = id;
    return { id, created, at: 0, tr, attempt: null, code: null, latency: null, error: null };
  }

  // placeRow inserts a new row by creation time, newest first, and drops the
  // oldest rows beyond MAX_ROWS.
  function placeRow(row) {
    if (rows.has(row.id)) return;
    rows.set(row.id, row);
    let before = null;
    for (const tr of ui.tbody.children) {
      const other = rows.get(tr.dataset.deliveryId);
      if (other && other.created <= row.created) {
        before = tr;
        break;
      }
    }
    ui.tbody.insertBefore(row.tr, before);
    while (rows.size > MAX_ROWS) {
      const last = ui.tbody.lastElementChild;
      rows.delete(last.dataset.deliveryId);
      last.remove();
    }
    renderCount();
  }

  function clearRows() {
    rows.clear();
    ui.tbody.replaceChildren();
    renderCount();
  }

  function renderCount() {
    const n = rows.size;
    ui.rowCount.textContent = `${n} ${n === 1 ? "delivery" : "deliveries"}${n >= MAX_ROWS ? ` (newest ${MAX_ROWS})` : ""}`;
    renderEmpty();
  }

  function renderEmpty() {
    ui.empty.hidden = rows.size > 0;
    ui.emptyHint.textContent = session
      ? "Waiting for deliveries. Publish an event, or send a test event to an endpoint, and it appears here."
      : "Paste an API key and connect to watch deliveries as they happen.";
  }

  function renderRow(row, flash) {
    const tr = row.tr;
    const status = row.status || "PENDING";
    tr.dataset.eventId = row.eventId || "";
    tr.dataset.endpointId = row.endpointId || "";
    tr.dataset.status = status;

    // Rows stay where they are as they change, so the time shown is the one
    // they are ordered by: when the delivery was created (or first seen).
    const time = el("td", "cell-time", fmtTime(row.created));
    time.title = `Created ${new Date(row.created).toISOString()}\nUpdated ${new Date(row.at || row.created).toISOString()}`;

    const event = el("td", "cell-event", row.eventType);
    event.title = `${row.eventType}\nEvent ${row.eventId}\nDelivery ${row.id}`;

    const endpoint = el("td", "cell-endpoint");
    const ep = session && session.endpoints.get(row.endpointId);
    if (ep) {
      endpoint.textContent = ep.name;
      endpoint.title = `${ep.name}\n${ep.url}\n${ep.id}`;
    } else {
      endpoint.append(el("span", "id", row.endpointId));
      endpoint.title = row.endpointId;
    }

    const badgeCell = el("td", "cell-status");
    const badge = el("span", `badge badge-${status.toLowerCase()}`, status);
    if (row.kind) badge.title = row.kind;
    badgeCell.append(badge);

    const code = el("td", "cell-code num");
    if (row.code != null) {
      code.textContent = String(row.code);
      code.classList.add(row.code >= 200 && row.code < 300 ? "code-ok" : "code-bad");
    } else code.append(dash());

    const latency = el("td", "cell-latency num");
    if (row.latency != null) latency.textContent = fmtDuration(row.latency);
    else latency.append(dash());

    const attempt = el("td", "cell-attempt num");
    if (row.attempt) attempt.textContent = String(row.attempt);
    else attempt.append(dash());

    const error = el("td", "cell-error");
    if (row.error) {
      error.append(document.createTextNode(row.error));
      error.title = row.error;
    }
    if (status === "RETRYING" && row.nextAttemptAt) {
      const next = el("span", "next", `${row.error ? " · " : ""}next try ${fmtTime(row.nextAttemptAt).slice(0, 8)}`);
      error.append(next);
      error.title = `${row.error ? `${row.error}\n` : ""}Next try at ${new Date(row.nextAttemptAt).toISOString()}`;
    }
    if (!error.childNodes.length) error.append(dash());

    const actions = el("td", "cell-actions");
    // Retry for failed deliveries, and "now" for ones waiting for their next
    // attempt (not for one just queued again, which is about to be sent).
    if (status === "FAILED" || (status === "RETRYING" && row.kind !== "REQUEUED")) {
      const btn = el("button", "btn btn-retry", "Retry");
      btn.type = "button";
      btn.dataset.testid = "retry";
      btn.dataset.deliveryId = row.id;
      btn.title = status === "FAILED" ? "Send this delivery again now" : "Send the next attempt now";
      btn.disabled = !session;
      actions.append(btn);
    }

    const cells = [time, event, endpoint, badgeCell, code, latency, attempt, error, actions];
    const names = ["time", "event", "endpoint", "status", "code", "latency", "attempt", "error", "actions"];
    cells.forEach((c, i) => {
      c.dataset.col = names[i];
    });
    tr.replaceChildren(...cells);

    if (flash) {
      tr.classList.remove("flash");
      void tr.offsetWidth; // restart the animation
      tr.classList.add("flash");
    }
  }

  async function loadRecent(s) {
    const ep = ui.endpoint.value;
    let data;
    try {
      data = await gql(s, RECENT_DELIVERIES, { first: RECENT, where: ep ? { endpointID: ep } : null });
    } catch (e) {
      if (s === session && !s.closed && e.code !== "UNAUTHENTICATED") showError(`Could not load recent deliveries: ${e.message}`);
      return;
    }
    if (s !== session || s.closed || ui.endpoint.value !== ep) return;
    for (const edge of data.deliveries.edges) applySnapshot(edge.node);
  }

  // ---- Actions ------------------------------------------------------------

  async function retry(btn) {
    const s = session;
    if (!s) return;
    const id = btn.dataset.deliveryId;
    btn.disabled = true;
    btn.textContent = "Retrying…";
    try {
      await gql(s, RETRY, { id });
      // The feed reports the new state (REQUEUED, then the attempt).
      btn.textContent = "Queued";
    } catch (e) {
      if (s === session) showError(`Could not retry ${id}: ${e.message}`);
      btn.disabled = false;
      btn.textContent = "Retry";
    }
  }

  let testing = false; // a test event is on its way

  async function sendTest() {
    const s = session;
    const id = ui.endpoint.value;
    if (!s || !id || testing) return;
    const ep = s.endpoints.get(id);
    testing = true;
    ui.sendTest.disabled = true;
    ui.sendTest.textContent = "Sending…";
    ui.testResult.hidden = false;
    delete ui.testResult.dataset.delivered;
    delete ui.testResult.dataset.statusCode;
    ui.testResult.textContent = `Sending test.ping to ${ep ? ep.name : id}…`;
    try {
      const r = (await gql(s, TEST, { id })).testEndpoint;
      if (s !== session) return;
      const parts = [r.delivered ? "✓ Delivered" : "✗ Not delivered"];
      if (r.statusCode != null) parts.push(`HTTP ${r.statusCode}`);
      parts.push(fmtDuration(r.durationMs));
      if (r.error && r.error !== `HTTP ${r.statusCode}`) parts.push(r.error);
      ui.testResult.textContent = parts.join(" · ");
      ui.testResult.title = ui.testResult.textContent;
      ui.testResult.dataset.delivered = String(r.delivered);
      if (r.statusCode != null) ui.testResult.dataset.statusCode = String(r.statusCode);
    } catch (e) {
      if (s !== session) return;
      ui.testResult.dataset.delivered = "false";
      ui.testResult.textContent = `✗ Test failed: ${e.message}`;
      ui.testResult.title = ui.testResult.textContent;
    } finally {
      testing = false;
      ui.sendTest.textContent = "Send test event";
      renderControls();
    }
  }

  function renderControls() {
    const s = session;
    ui.connect.textContent = s ? "Disconnect" : "Connect";
    ui.connect.classList.toggle("is-connected", !!s);
    ui.key.disabled = !!s;
    ui.endpoint.disabled = !s;
    const hasEndpoint = !!(s && ui.endpoint.value);
    ui.sendTest.disabled = !hasEndpoint || testing;
    ui.sendTest.title = hasEndpoint ? "Send a test.ping event to this endpoint now" : "Choose an endpoint first";
    for (const btn of ui.tbody.querySelectorAll("button[data-testid=retry]")) {
      if (!s) btn.disabled = true;
      else if (btn.textContent === "Retry") btn.disabled = false;
    }
    renderEndpointMeta();
    renderEmpty();
  }

  // ---- Wiring -------------------------------------------------------------

  ui.form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (session) {
      disconnect();
      return;
    }
    const key = ui.key.value.trim();
    if (!key) {
      showError("Paste an API key (hrld_…) first.");
      ui.key.focus();
      return;
    }
    try {
      if (ui.remember.checked) sessionStorage.setItem(KEY_STORAGE, key);
      else sessionStorage.removeItem(KEY_STORAGE);
    } catch (e) {
      // Storage disabled: the key stays in memory only.
    }
    connect(key);
  });

  ui.remember.addEventListener("change", () => {
    try {
      if (!ui.remember.checked) sessionStorage.removeItem(KEY_STORAGE);
      else if (session) sessionStorage.setItem(KEY_STORAGE, session.key);
    } catch (e) {
      // Storage disabled.
    }
  });

  ui.endpoint.addEventListener("change", () => {
    ui.testResult.hidden = true;
    clearRows();
    renderControls();
    restartFeed();
    if (session) startStats(session);
  });

  ui.sendTest.addEventListener("click", sendTest);
  ui.clear.addEventListener("click", clearRows);
  ui.resubscribe.addEventListener("click", restartFeed);
  ui.dismissError.addEventListener("click", hideError);
  ui.tbody.addEventListener("click", (ev) => {
    const btn = ev.target.closest("button[data-testid=retry]");
    if (btn && !btn.disabled) retry(btn);
  });

  renderControls();
  renderCount();

  // A key remembered in this tab reconnects after a reload.
  let remembered = null;
  try {
    remembered = sessionStorage.getItem(KEY_STORAGE);
  } catch (e) {
    remembered = null;
  }
  if (remembered) {
    ui.key.value = remembered;
    ui.remember.checked = true;
    connect(remembered);
  } else {
    ui.key.focus();
  }
})();
