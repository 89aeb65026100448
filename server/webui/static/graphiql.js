// Herald GraphiQL bootstrap. Loaded after the vendored UMD bundles, which
// define the globals React, ReactDOM, graphqlWs and GraphiQL. No build step.
//
// Queries and mutations are sent over HTTP POST to the same-origin GraphQL
// endpoint; subscriptions go over a graphql-ws ("graphql-transport-ws")
// WebSocket on the same path. The headers from GraphiQL's header editor are
// sent as HTTP headers and, for subscriptions, as the connection_init payload
// (graphql-ws connectionParams). A WebSocket client is created per distinct
// header set, so a subscription started after the headers were edited
// authenticates with the new headers.
(function () {
  "use strict";

  var root = document.getElementById("graphiql");

  function fail(message) {
    console.error("herald graphiql: " + message);
    var p = document.createElement("p");
    p.className = "herald-error";
    p.textContent = "GraphiQL could not start: " + message;
    root.replaceChildren(p);
  }

  // Settings from the page (see graphiql.html).
  var config = {};
  try {
    config = JSON.parse(document.getElementById("herald-graphiql-config").textContent);
  } catch (e) {
    console.error("herald graphiql: bad or missing #herald-graphiql-config", e);
  }

  // GraphiQL's dialogs insert a <style> element (react-remove-scroll) that
  // takes its CSP nonce from the global __webpack_nonce__; the page's CSP
  // allows no other inline style.
  if (config.cspNonce) window.__webpack_nonce__ = config.cspNonce;

  var React = window.React;
  var ReactDOM = window.ReactDOM;
  var GraphiQL = window.GraphiQL;
  var graphqlWs = window.graphqlWs;
  var missing = [];
  if (!React) missing.push("React");
  if (!ReactDOM || !ReactDOM.createRoot) missing.push("ReactDOM");
  if (!graphqlWs || !graphqlWs.createClient) missing.push("graphql-ws");
  if (!GraphiQL || !GraphiQL.createFetcher) missing.push("GraphiQL");
  if (missing.length) {
    fail("missing script(s): " + missing.join(", ") + ".");
    return;
  }

  var API_KEY_PLACEHOLDER = config.apiKeyPlaceholder || "<paste your API key>";
  var DEFAULT_HEADERS = JSON.stringify(
    config.defaultHeaders || { Authorization: "Bearer " + API_KEY_PLACEHOLDER },
    null,
    2
  );
  var DEFAULT_QUERY = [
    "# Welcome to Herald's GraphiQL.",
    "#",
    "# Every request needs a Herald API key. In",
    "# the Headers tab below, replace",
    "# " + API_KEY_PLACEHOLDER + " with your key, then",
    "# run the query: Ctrl-Enter (Cmd-Enter on",
    "# macOS) or the play button. The Docs (book",
    "# icon) load once a request succeeds.",
    "# Subscriptions use a WebSocket with the",
    "# same headers.",
    "",
    "query {",
    "  viewer {",
    "    app {",
    "      id",
    "      name",
    "    }",
    "    apiKey {",
    "      name",
    "      prefix",
    "    }",
    "  }",
    "}",
    "",
  ].join("\n");
  var INTROSPECTION = "IntrospectionQuery"; // GraphiQL's default operation name

  // Endpoint URLs: same origin; ws:// or wss:// as the page's scheme.
  var httpURL = new URL(config.endpoint || "/graphql", window.location.href);
  var wsURL = new URL(httpURL.href);
  wsURL.protocol = httpURL.protocol === "https:" ? "wss:" : "ws:";

  // ---- HTTP ---------------------------------------------------------------

  // fetch wrapper: a non-JSON error response (e.g. a plain-text 401 from an
  // auth middleware) becomes a GraphQL-shaped error instead of a JSON parse
  // error in the result pane.
  function fetchJSONErrors(input, init) {
    return window.fetch(input, init).then(function (res) {
      var type = res.headers.get("content-type") || "";
      if (res.ok || /json/i.test(type)) return res;
      return res.text().then(function (text) {
        var message = "HTTP " + res.status + (res.statusText ? " " + res.statusText : "");
        if (text.trim()) message += ": " + text.trim();
        return new Response(JSON.stringify({ errors: [{ message: message }] }), {
          status: res.status,
          statusText: res.statusText,
          headers: { "content-type": "application/json" },
        });
      });
    });
  }

  // GraphiQL's toolkit fetcher for queries and mutations (HTTP POST with the
  // header editor's headers; multipart incremental delivery if the server
  // answers that way). Subscriptions never reach it.
  var httpFetcher = GraphiQL.createFetcher({ url: httpURL.href, fetch: fetchJSONErrors });

  // ---- WebSocket (graphql-ws) ---------------------------------------------

  // A server that rejects connection_init may close with a 44xx code
  // (4401/4403: final here rather than retried with back-off by graphql-ws)
  // or, like gqlgen's default, with 1000 "terminated", which graphql-ws
  // retries at once for as long as a subscription waits. Give up after this
  // many consecutive closes before connection_ack.
  var MAX_CLOSES_BEFORE_ACK = 3;

  function isCloseEvent(e) {
    return !!e && typeof e.code === "number" && "reason" in e;
  }

  // A displayable error for GraphiQL's result pane. Arrays are GraphQL errors
  // from the server's "error" message and are shown as they are.
  function wsError(e) {
    if (Array.isArray(e)) return e;
    if (isCloseEvent(e)) {
      return { message: "WebSocket closed: " + e.code + (e.reason ? " " + e.reason : "") };
    }
    if (e instanceof Error) return { message: e.message };
    return { message: "WebSocket error (is " + wsURL.href + " reachable?)" };
  }

  // Order-independent key of a header object.
  function headerKey(headers) {
    return JSON.stringify(
      Object.keys(headers)
        .sort()
        .map(function (k) {
          return [k, headers[k]];
        })
    );
  }

  // One lazy graphql-ws client per header set: it opens its socket on the
  // first subscription and closes it when the last one ends. A client
  // replaced by a newer header set is disposed once its running
  // subscriptions have finished.
  var current = null;

  function newWSClient(key, headers) {
    var entry = { key: key, retired: false, subs: [] };
    var connected = false;
    var closesBeforeAck = 0;

    entry.client = graphqlWs.createClient({
      url: wsURL.href,
      lazy: true,
      connectionParams: Object.assign({}, headers),
      retryAttempts: 3,
      shouldRetry: function (e) {
        return !(isCloseEvent(e) && e.code >= 4400 && e.code <= 4499);
      },
      on: {
        opened: function () {
          connected = false;
        },
        connected: function () {
          connected = true;
          closesBeforeAck = 0;
        },
        closed: function (e) {
          if (connected) return;
          closesBeforeAck++;
          if (closesBeforeAck < MAX_CLOSES_BEFORE_ACK || !entry.subs.length) return;
          closesBeforeAck = 0;
          var msg = "The server closed the WebSocket before acknowledging the connection";
          if (isCloseEvent(e)) msg += " (" + e.code + (e.reason ? " " + e.reason : "") + ")";
          msg += ". Check the Authorization header.";
          entry.subs.slice().forEach(function (sub) {
            sub.fail({ message: msg });
          });
        },
      },
    });

    function release(sub) {
      var i = entry.subs.indexOf(sub);
      if (i < 0) return false;
      entry.subs.splice(i, 1);
      return true;
    }
    function disposeIfIdle() {
      if (entry.retired && entry.subs.length === 0) dispose(entry.client);
    }

    // subscribe returns an Observable as GraphiQL expects from a fetcher.
    entry.subscribe = function (params) {
      return {
        subscribe: function (observer) {
          var sub = {};
          var unsubscribe = function () {};
          sub.fail = function (err) {
            if (!release(sub)) return;
            unsubscribe();
            disposeIfIdle();
            observer.error(err);
          };
          entry.subs.push(sub);
          unsubscribe = entry.client.subscribe(params, {
            next: function (value) {
              observer.next(value);
            },
            error: function (err) {
              if (!release(sub)) return;
              disposeIfIdle();
              observer.error(wsError(err));
            },
            complete: function () {
              if (!release(sub)) return;
              disposeIfIdle();
              observer.complete();
            },
          });
          return {
            unsubscribe: function () {
              if (!release(sub)) return;
              unsubscribe();
              disposeIfIdle();
            },
          };
        },
      };
    };
    return entry;
  }

  function wsClientFor(headers) {
    var key = headerKey(headers);
    if (current && current.key === key) return current;
    if (current) {
      current.retired = true;
      if (current.subs.length === 0) dispose(current.client);
    }
    current = newWSClient(key, headers);
    return current;
  }

  // dispose closes a client's socket. It rejects (with the close event) when
  // the connection had failed, which the subscriptions reported already.
  function dispose(client) {
    Promise.resolve(client.dispose()).catch(function () {});
  }

  // Whether the operation GraphiQL runs is a subscription: the one named
  // operationName, or else the first operation of the query text. It reads
  // the text that is sent rather than GraphiQL's parsed document
  // (opts.documentAST), which follows the editor only after a 100 ms
  // debounce: a subscription run right after typing or pasting it would
  // otherwise go over HTTP.
  function isSubscription(query, operationName) {
    var ops = operationTypes(String(query || ""));
    for (var i = 0; i < ops.length; i++) {
      if (operationName ? ops[i].name === operationName : true) {
        return ops[i].type === "subscription";
      }
    }
    return false;
  }

  // operationTypes lists the operations of a GraphQL document as
  // {type, name} in order, skipping comments, strings, fragments and
  // everything inside braces and parentheses. It is a lexer, not a parser:
  // the server reports syntax errors.
  function operationTypes(src) {
    var ops = [];
    var braces = 0;
    var parens = 0;
    var current = null; // the definition whose selection set comes next
    var awaitingName = false;
    var i = 0;
    var n = src.length;
    while (i < n) {
      var c = src.charAt(i);
      if (c === "#") {
        while (i < n && src.charAt(i) !== "\n" && src.charAt(i) !== "\r") i++;
      } else if (c === '"') {
        if (src.substr(i, 3) === '"""') {
          i += 3;
          while (i < n && src.substr(i, 3) !== '"""') i += src.substr(i, 4) === '\\"""' ? 4 : 1;
          i += 3;
        } else {
          i++;
          while (i < n && src.charAt(i) !== '"' && src.charAt(i) !== "\n") i += src.charAt(i) === "\\" ? 2 : 1;
          i++;
        }
      } else if (c === "(") {
        parens++;
        i++;
      } else if (c === ")") {
        parens--;
        i++;
      } else if (c === "{") {
        if (braces === 0 && parens === 0) {
          if (!current) current = { type: "query", name: null }; // shorthand
          if (current.type !== "fragment") ops.push(current);
          current = null;
          awaitingName = false;
        }
        braces++;
        i++;
      } else if (c === "}") {
        braces--;
        i++;
      } else if (/[_A-Za-z]/.test(c)) {
        var j = i + 1;
        while (j < n && /[_0-9A-Za-z]/.test(src.charAt(j))) j++;
        var word = src.slice(i, j);
        if (braces === 0 && parens === 0) {
          if (word === "query" || word === "mutation" || word === "subscription" || word === "fragment") {
            current = { type: word, name: null };
            awaitingName = word !== "fragment";
          } else if (awaitingName) {
            current.name = word;
            awaitingName = false;
          }
        }
        i = j;
      } else {
        if (c === "@" || c === "$") awaitingName = false;
        i++;
      }
    }
    return ops;
  }

  // ---- Schema refresh -----------------------------------------------------

  // GraphiQL introspects only on start-up (when the header editor still holds
  // the placeholder, so the fetcher answers with a hint and sends nothing) or
  // on demand (Shift-Ctrl-R). So that the Docs load once
  // the user has pasted a key, re-introspect (by handing GraphiQL a new
  // fetcher) when an operation returns data with headers the schema was not
  // yet loaded with; at most once per header set, and never after a failed
  // operation (a failed introspection replaces the result pane).
  var schemaKey = null; // headers of the last successful introspection
  var retried = Object.create(null); // header sets already re-introspected
  var refreshSchema = function () {};

  function noteResult(key, r) {
    if (r && typeof r === "object" && r.data && key !== schemaKey && !retried[key]) {
      retried[key] = true;
      setTimeout(function () {
        refreshSchema();
      }, 0);
    }
  }

  // Calls onValue with the first value of an HTTP fetcher result: a promise
  // of either a result or an AsyncIterable of results (incremental
  // delivery). Returns an equivalent value.
  function tapFirst(result, onValue) {
    return Promise.resolve(result).then(function (value) {
      if (value && typeof value[Symbol.asyncIterator] === "function") {
        return tapIterable(value, onValue);
      }
      onValue(value);
      return value;
    });
  }

  function tapIterable(iterable, onValue) {
    var it = null;
    var seen = false;
    var wrapped = {};
    // GraphiQL calls [Symbol.asyncIterator]() again to stop an iterable, so
    // it must return the same iterator every time.
    wrapped[Symbol.asyncIterator] = function () {
      if (it) return it;
      var inner = iterable[Symbol.asyncIterator]();
      it = {
        next: function (v) {
          return inner.next(v).then(function (step) {
            if (!seen && !step.done) {
              seen = true;
              onValue(step.value);
            }
            return step;
          });
        },
        return: function (v) {
          return inner.return ? inner.return(v) : Promise.resolve({ done: true, value: v });
        },
        throw: function (e) {
          return inner.throw ? inner.throw(e) : Promise.reject(e);
        },
      };
      it[Symbol.asyncIterator] = function () {
        return it;
      };
      return it;
    };
    return wrapped;
  }

  // ---- Fetcher ------------------------------------------------------------

  // Whether a header value still holds the placeholder key.
  function hasPlaceholder(headers) {
    return Object.keys(headers).some(function (k) {
      return String(headers[k]).indexOf(API_KEY_PLACEHOLDER) >= 0;
    });
  }

  function fetcher(params, opts) {
    var headers = (opts && opts.headers) || {};
    var key = headerKey(headers);

    // No request with the placeholder: it cannot authenticate, and GraphiQL
    // shows this message in the result pane on start-up.
    if (hasPlaceholder(headers)) {
      return Promise.resolve({
        errors: [
          {
            message:
              "Paste your Herald API key into the Headers tab below in place of " +
              API_KEY_PLACEHOLDER +
              ", then run the query.",
          },
        ],
      });
    }

    if (params.operationName === INTROSPECTION) {
      return tapFirst(httpFetcher(params, opts), function (r) {
        if (r && r.data && r.data.__schema) schemaKey = key;
      });
    }
    if (isSubscription(params.query, params.operationName || undefined)) {
      var source = wsClientFor(headers).subscribe(params);
      return {
        subscribe: function (observer) {
          var first = true;
          return source.subscribe({
            next: function (value) {
              if (first) {
                first = false;
                noteResult(key, value);
              }
              observer.next(value);
            },
            error: function (e) {
              observer.error(e);
            },
            complete: function () {
              observer.complete();
            },
          });
        },
      };
    }
    var result = httpFetcher(params, opts);
    if (key === schemaKey || retried[key]) return result;
    return tapFirst(result, function (r) {
      noteResult(key, r);
    });
  }

  // ---- Storage ------------------------------------------------------------

  // GraphiQL keeps API keys out of its tab state when shouldPersistHeaders is
  // false, but its query history and favorites still store each run's
  // headers. This localStorage wrapper drops them from those entries.
  var NAMESPACE = "graphiql:";
  var HISTORY_KEYS = { "graphiql:queries": true, "graphiql:favorites": true };

  function withoutHeaders(key, value) {
    if (!HISTORY_KEYS[key]) return value;
    try {
      var data = JSON.parse(value);
      Object.keys(data || {}).forEach(function (k) {
        if (Array.isArray(data[k])) {
          data[k].forEach(function (item) {
            if (item && typeof item === "object") delete item.headers;
          });
        }
      });
      return JSON.stringify(data);
    } catch (e) {
      return value;
    }
  }

  function makeStorage() {
    var ls;
    try {
      ls = window.localStorage;
      ls.getItem(NAMESPACE + "probe");
    } catch (e) {
      return null; // storage disabled: GraphiQL then keeps nothing
    }
    return {
      getItem: function (k) {
        return ls.getItem(k);
      },
      setItem: function (k, v) {
        ls.setItem(k, withoutHeaders(k, v));
      },
      removeItem: function (k) {
        ls.removeItem(k);
      },
      get length() {
        var n = 0;
        for (var i = 0; i < ls.length; i++) {
          if (ls.key(i).indexOf(NAMESPACE) === 0) n++;
        }
        return n;
      },
      clear: function () {
        var keys = [];
        for (var i = 0; i < ls.length; i++) {
          if (ls.key(i).indexOf(NAMESPACE) === 0) keys.push(ls.key(i));
        }
        keys.forEach(function (k) {
          ls.removeItem(k);
        });
      },
    };
  }
  var storage = makeStorage();

  // ---- Render -------------------------------------------------------------

  var h = React.createElement;

  function HeraldGraphiQL() {
    var state = React.useState(0);
    var generation = state[0];
    var setGeneration = state[1];
    React.useEffect(function () {
      refreshSchema = function () {
        setGeneration(function (g) {
          return g + 1;
        });
      };
    }, []);
    // A new function identity makes GraphiQL introspect again.
    var f = React.useMemo(
      function () {
        return function (params, opts) {
          return fetcher(params, opts);
        };
      },
      [generation]
    );
    return h(GraphiQL, {
      fetcher: f,
      storage: storage,
      defaultQuery: DEFAULT_QUERY,
      defaultHeaders: DEFAULT_HEADERS,
      defaultEditorToolsVisibility: "headers",
      isHeadersEditorEnabled: true,
      // API keys stay out of localStorage; the key must be pasted again after
      // a reload.
      shouldPersistHeaders: false,
    });
  }

  ReactDOM.createRoot(root).render(h(HeraldGraphiQL));
})();
