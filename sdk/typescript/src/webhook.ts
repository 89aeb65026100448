// Verifying Herald's deliveries in a receiver, with Web Crypto only: Node
// 18+, Deno, Bun, browsers and edge runtimes.
//
// Herald signs every delivery the Standard Webhooks way: webhook-id,
// webhook-timestamp and webhook-signature headers, the signature computed
// over "<id>.<timestamp>.<body>". A signing secret (whsec_…) checks HMAC
// signatures ("v1,…"); an Ed25519 public key (whpk_…) checks "v1a,…" ones.

/** Why a delivery did not verify. */
export type WebhookErrorReason = "missing-headers" | "timestamp" | "signature" | "key" | "body";

/** A delivery that did not verify; reason says why. */
export class WebhookVerificationError extends Error {
  readonly reason: WebhookErrorReason;
  constructor(reason: WebhookErrorReason, message: string) {
    super(message);
    this.name = "WebhookVerificationError";
    this.reason = reason;
  }
}

/** A verified delivery's body: Herald's envelope of one event. */
export interface WebhookMessage<T = unknown> {
  /** The event's ID, also in webhook-id: the same on every retry, so it deduplicates. */
  id: string;
  type: string;
  /** When the event was published (RFC 3339). */
  timestamp: string;
  /** The payload as published. */
  data: T;
}

/** Options of a verifier. */
export interface VerifyOptions {
  /** How far webhook-timestamp may be from now, in seconds (default 300); negative: unchecked. */
  toleranceSeconds?: number;
  /** The current time in milliseconds (default Date.now). */
  now?: () => number;
}

type HeaderSource = Headers | Record<string, string | string[] | undefined>;

const encoder = new TextEncoder();

function decodeBase64(s: string): Uint8Array {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function encodeBase64(b: Uint8Array): string {
  let s = "";
  for (const c of b) s += String.fromCharCode(c);
  return btoa(s);
}

function header(h: HeaderSource, name: string): string[] {
  if (typeof (h as Headers).get === "function") {
    const v = (h as Headers).get(name);
    return v === null ? [] : [v];
  }
  const rec = h as Record<string, string | string[] | undefined>;
  for (const k of Object.keys(rec)) {
    if (k.toLowerCase() === name) {
      const v = rec[k];
      return v === undefined ? [] : Array.isArray(v) ? v : [v];
    }
  }
  return [];
}

function bytes(body: string | Uint8Array | ArrayBuffer): Uint8Array {
  if (typeof body === "string") return encoder.encode(body);
  return body instanceof Uint8Array ? body : new Uint8Array(body);
}

function concat(...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let i = 0;
  for (const p of parts) {
    out.set(p, i);
    i += p.length;
  }
  return out;
}

/** Checks deliveries against one or more keys (several during a secret rotation). */
export class WebhookVerifier {
  private constructor(
    private readonly hmacKeys: CryptoKey[],
    private readonly edKeys: CryptoKey[],
    private readonly opts: VerifyOptions,
  ) {}

  /**
   * Returns a verifier for signing secrets (whsec_…) and Ed25519 public
   * keys (whpk_…). A secret without a prefix is taken as a base64 HMAC key.
   */
  static async create(keys: string | string[], opts: VerifyOptions = {}): Promise<WebhookVerifier> {
    const list = Array.isArray(keys) ? keys : [keys];
    if (list.length === 0) throw new WebhookVerificationError("key", "no signing secret or public key");
    const hmac: CryptoKey[] = [];
    const ed: CryptoKey[] = [];
    for (const raw of list) {
      const k = raw.trim();
      if (k.startsWith("whsk_")) {
        throw new WebhookVerificationError("key", "whsk_ is a private key: verify with its public key (whpk_)");
      }
      let b: Uint8Array<ArrayBuffer>;
      try {
        b = decodeBase64(k.replace(/^whsec_|^whpk_/, "")) as Uint8Array<ArrayBuffer>;
      } catch {
        throw new WebhookVerificationError("key", "a key is whsec_ or whpk_ followed by base64");
      }
      if (k.startsWith("whpk_")) {
        if (b.length !== 32) throw new WebhookVerificationError("key", "a whpk_ public key is 32 bytes in base64");
        ed.push(await crypto.subtle.importKey("raw", b, { name: "Ed25519" }, false, ["verify"]));
      } else {
        if (b.length === 0) throw new WebhookVerificationError("key", "empty signing secret");
        hmac.push(await crypto.subtle.importKey("raw", b, { name: "HMAC", hash: "SHA-256" }, false, ["verify"]));
      }
    }
    return new WebhookVerifier(hmac, ed, opts);
  }

  /** Verifies a delivery's headers and raw body (as received, not re-encoded JSON). */
  async verify(headers: HeaderSource, body: string | Uint8Array | ArrayBuffer): Promise<void> {
    const id = header(headers, "webhook-id")[0] ?? "";
    const ts = header(headers, "webhook-timestamp")[0] ?? "";
    const sigs = header(headers, "webhook-signature").join(" ").trim();
    if (!id || !ts || !sigs) {
      throw new WebhookVerificationError("missing-headers", "missing webhook-id, webhook-timestamp or webhook-signature");
    }
    if (!/^\d+$/.test(ts)) throw new WebhookVerificationError("timestamp", `webhook-timestamp ${JSON.stringify(ts)} is not Unix seconds`);
    const tolerance = this.opts.toleranceSeconds ?? 300;
    if (tolerance >= 0) {
      const now = Math.floor((this.opts.now ?? Date.now)() / 1000);
      const skew = Number(ts) - now;
      if (Math.abs(skew) > tolerance) {
        throw new WebhookVerificationError("timestamp", `webhook-timestamp is ${skew}s from now, beyond the tolerance of ${tolerance}s`);
      }
    }
    const signed = concat(encoder.encode(`${id}.${ts}.`), bytes(body));
    for (const s of sigs.split(/\s+/)) {
      const comma = s.indexOf(",");
      if (comma < 0) continue;
      const version = s.slice(0, comma);
      let sig: Uint8Array<ArrayBuffer>;
      try {
        sig = decodeBase64(s.slice(comma + 1)) as Uint8Array<ArrayBuffer>;
      } catch {
        continue;
      }
      const keys = version === "v1" ? this.hmacKeys : version === "v1a" ? this.edKeys : [];
      const algo = version === "v1" ? "HMAC" : "Ed25519";
      for (const k of keys) {
        if (await crypto.subtle.verify(algo, k, sig, signed)) return;
      }
    }
    throw new WebhookVerificationError("signature", "no signature matches the secret");
  }

  /**
   * Reads a Request's body, verifies it and returns the message (a fetch
   * Request: Deno, Bun, edge runtimes, service workers, Node's undici).
   */
  async verifyRequest<T = unknown>(req: Request): Promise<WebhookMessage<T>> {
    const body = new Uint8Array(await req.arrayBuffer());
    await this.verify(req.headers, body);
    return parseMessage<T>(body);
  }
}

/** Decodes a verified body. */
export function parseMessage<T = unknown>(body: string | Uint8Array | ArrayBuffer): WebhookMessage<T> {
  try {
    return JSON.parse(typeof body === "string" ? body : new TextDecoder().decode(bytes(body))) as WebhookMessage<T>;
  } catch (e) {
    throw new WebhookVerificationError("body", `the signed body is not Herald's JSON envelope: ${(e as Error).message}`);
  }
}

/** Verifies one delivery with one key and returns its message. */
export async function verifyWebhook<T = unknown>(
  key: string | string[],
  headers: HeaderSource,
  body: string | Uint8Array | ArrayBuffer,
  opts: VerifyOptions = {},
): Promise<WebhookMessage<T>> {
  const v = await WebhookVerifier.create(key, opts);
  await v.verify(headers, body);
  return parseMessage<T>(body);
}

/**
 * Returns the webhook-signature value of a message signed with a signing
 * secret (whsec_…: "v1,…"), for testing receivers.
 */
export async function signWebhook(secret: string, id: string, timestampSeconds: number, body: string | Uint8Array): Promise<string> {
  const key = await crypto.subtle.importKey("raw", decodeBase64(secret.replace(/^whsec_/, "")) as Uint8Array<ArrayBuffer>, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mac = await crypto.subtle.sign("HMAC", key, concat(encoder.encode(`${id}.${timestampSeconds}.`), bytes(body)));
  return "v1," + encodeBase64(new Uint8Array(mac));
}
