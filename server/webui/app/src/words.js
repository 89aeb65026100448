// Words for the people who read the pages: what the API's states, reasons
// and counters mean for them, in their language. The browser tests scan
// every screen for the API's identifiers, so that none reaches them.
import { fmtTime } from "./ui.jsx";

/** health maps an endpoint's health to a label and an explanation. */
export const health = {
  SETUP: ["Not used yet", "Nothing has been sent to it yet."],
  READY: ["Ready", "It is on, with no webhooks in the last 24 hours."],
  LIVE: ["Healthy", "It received a webhook in the last 24 hours."],
  ATTENTION: ["Needs attention", "It is turned off, or its latest webhook failed."],
};

/** statusLabel is a delivery status as a person says it. */
export const statusLabel = {
  PENDING: "Waiting",
  SENDING: "Sending",
  RETRYING: "Will retry",
  SUCCEEDED: "Succeeded",
  FAILED: "Failed",
};

/** trigger says why an attempt was made. */
export const trigger = { SCHEDULED: "sent automatically", MANUAL_RETRY: "retried by hand", TEST: "test" };

/**
 * disabled says why and when an endpoint was turned off, from its stored
 * reason and time.
 */
export function disabled(ep) {
  const when = ep.disabledAt ? ` on ${fmtTime(ep.disabledAt)}` : "";
  const r = ep.disabledReason || "";
  let m;
  if (r === "created inactive") return `Added turned off${when}.`;
  if (r === "deleted") return `Deleted${when}.`;
  if (/^disabled by /.test(r)) return `Turned off by hand${when}.`;
  if (/410 Gone/.test(r)) return `Turned off automatically${when}: it answered "410 Gone", which means it no longer accepts webhooks.`;
  if ((m = /^disabled after (\d+) consecutive failed deliveries; last error: (.*)$/s.exec(r))) {
    return `Turned off automatically${when} after ${m[1]} webhooks in a row failed. The last one failed with: ${m[2]}`;
  }
  return `Turned off${when}.`;
}

/** pace says how fast webhooks go to an endpoint now, and what that means. */
export function pace(ep) {
  const f = ep.flow;
  if (f.pausedUntil) {
    return {
      state: "paused",
      label: `Paused until ${fmtTime(f.pausedUntil)}`,
      help: "It asked us to wait. Its webhooks are kept and sent after that.",
    };
  }
  if (f.throttled) {
    return {
      state: "throttled",
      label: "Slowed down",
      help: `It answered that it is busy, so we send fewer webhooks at once (now ${f.concurrency}) and speed up again as it recovers. Nothing is lost.`,
    };
  }
  if (ep.rateLimit) {
    return {
      state: "limited",
      label: `At most ${ep.rateLimit.requests} per ${duration(ep.rateLimit.per)}`,
      help: "Your rate limit: webhooks beyond it wait their turn.",
    };
  }
  return { state: "full", label: "Full speed", help: `Up to ${f.maxConcurrency} webhooks can be on their way to it at the same time.` };
}

/** duration turns "1s", "1m", "1h30m" into words. */
export function duration(d) {
  const units = { ms: "millisecond", s: "second", m: "minute", h: "hour" };
  const parts = [];
  for (const [, n, u] of String(d).matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) {
    const word = units[u];
    parts.push(n === "1" ? word : `${n} ${word}s`);
  }
  return parts.join(" ") || String(d);
}

/** ordering describes an endpoint's ordering. */
export const ordering = { NONE: "", KEY: "In order per key", STRICT: "Strictly in order" };

/** plural returns "1 webhook" or "2 webhooks". */
export function plural(n, one, many) {
  return `${n.toLocaleString()} ${n === 1 ? one : many || `${one}s`}`;
}
