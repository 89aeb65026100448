// subscribe.mjs subscribes to Herald's deliveryUpdated feed with the
// reference graphql-ws client (graphql-transport-ws protocol) and the ws
// package as its WebSocket, as a Node.js integration would.
//
// Usage: node subscribe.mjs <ws-url> <api-key> <count> [timeout-ms]
//
// It prints one JSON line per result ({"data": …} or {"errors": […]}) to
// stdout and exits 0 after <count> results. On failure it prints one line
// {"failure": {"code": <close code or 0>, "reason": "…", "message": "…"}}
// and exits 1: when the server closes the socket (4401 for a rejected key,
// 4429 for too many connections), the subscription errors, or the feed
// completes early. After [timeout-ms] (default 15000) without <count>
// results it prints a failure with message "timeout" and exits 2.
import { createClient } from "graphql-ws";
import WebSocket from "ws";

const [url, token, countArg, timeoutArg] = process.argv.slice(2);
const want = Number.parseInt(countArg ?? "", 10);
const timeoutMs = Number.parseInt(timeoutArg ?? "15000", 10);
if (!url || !token || !(want > 0) || !(timeoutMs > 0)) {
  console.error("usage: node subscribe.mjs <ws-url> <api-key> <count> [timeout-ms]");
  process.exit(64);
}

const query = `subscription {
  deliveryUpdated {
    kind deliveryId eventId endpointId eventType status
    attemptNumber responseStatus durationMs error at
  }
}`;

const client = createClient({
  url,
  webSocketImpl: WebSocket,
  connectionParams: { Authorization: `Bearer ${token}` },
  // Fail at once rather than reconnecting: the test wants to see why.
  retryAttempts: 0,
  lazy: true,
});

let finished = false;
let dispose = () => {};

function print(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

function finish(code, failure) {
  if (finished) return;
  finished = true;
  clearTimeout(timer);
  if (failure) print({ failure });
  dispose();
  client
    .dispose()
    .catch(() => {})
    .finally(() => process.exit(code));
}

// describe turns what graphql-ws hands an error sink into a failure record:
// a CloseEvent (code, reason), an array of GraphQL errors, or an Error.
function describe(err) {
  if (err && typeof err.code === "number" && "reason" in err) {
    return { code: err.code, reason: String(err.reason || ""), message: "closed" };
  }
  if (Array.isArray(err)) {
    return { code: 0, reason: "", message: err.map((e) => e.message).join("; "), errors: err };
  }
  const message = err && typeof err.message === "string" ? err.message : String(err);
  return { code: 0, reason: "", message };
}

const timer = setTimeout(() => finish(2, { code: 0, reason: "", message: "timeout" }), timeoutMs);

let got = 0;
dispose = client.subscribe(
  { query },
  {
    next(result) {
      print(result);
      if (++got >= want) finish(0);
    },
    error(err) {
      finish(1, describe(err));
    },
    complete() {
      finish(1, { code: 0, reason: "", message: `subscription completed after ${got} of ${want} results` });
    },
  },
);
