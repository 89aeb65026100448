// The TypeScript client against a real Herald server. sdk_test.go starts
// the server and runs these tests with HERALD_URL and HERALD_API_KEY set.
import { test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import net from "node:net";
import { generateKeyPairSync, sign } from "node:crypto";
import { Webhook } from "standardwebhooks";
import { HeraldClient, HeraldError, WebhookVerifier, verifyWebhook, signWebhook, WebhookVerificationError } from "../dist/index.js";

const url = process.env.HERALD_URL;
const apiKey = process.env.HERALD_API_KEY;
assert.ok(url && apiKey, "HERALD_URL and HERALD_API_KEY must be set (sdk_test.go sets them)");

const client = () => new HeraldClient({ url, apiKey });

/** A receiver on loopback that records requests and answers with status(). */
async function receiver(status = () => 200) {
  const requests = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      requests.push({ headers: req.headers, body: Buffer.concat(chunks) });
      res.writeHead(status());
      res.end("ok");
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${server.address().port}/hook`, requests, close: () => server.close() };
}

async function eventually(cond, ms = 30_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}

test("publishes, manages endpoints and verifies what they receive", async () => {
  const c = client();
  const rc = await receiver();
  try {
    const v = await c.viewer();
    assert.equal(v.isAdmin, true);
    const { endpoint, secret } = await c.createEndpoint({ name: "ts", url: rc.url, eventTypes: ["order.*"], rateLimit: { requests: 50, per: "1s" } });
    assert.match(secret, /^whsec_/);
    assert.equal((await c.endpoint(endpoint.id)).rateLimit?.requests, 50);
    const updated = await c.updateEndpoint(endpoint.id, { name: "ts2", rateLimit: null });
    assert.equal(updated.name, "ts2");
    assert.equal(updated.rateLimit, null);
    const list = await c.endpoints({ first: 100 });
    assert.ok(list.items.some((e) => e.id === endpoint.id));

    const ev = await c.publish({ eventType: "order.created", payload: { id: "ord_ts", total: 7 }, idempotencyKey: `ts-${Date.now()}` });
    assert.equal(ev.deliveryCount, 1);
    assert.deepEqual((await c.event(ev.id)).payload, { id: "ord_ts", total: 7 });
    const many = await c.publishMany([
      { eventType: "order.updated", payload: { n: 1 } },
      { eventType: "order.updated", payload: { n: 2 } },
    ]);
    assert.equal(many.length, 2);
    const events = await c.events({ eventType: "order.*", since: new Date(Date.now() - 60_000) });
    assert.ok(events.items.length >= 3);

    await eventually(() => rc.requests.length >= 3);
    const verifier = await WebhookVerifier.create(secret);
    const reference = new Webhook(secret);
    for (const r of rc.requests) {
      await verifier.verify(r.headers, r.body);
      const msg = await verifyWebhook(secret, r.headers, r.body);
      assert.match(msg.type, /^order\./);
      // The Standard Webhooks reference library agrees.
      reference.verify(r.body.toString("utf8"), r.headers);
      await assert.rejects(verifier.verify(r.headers, Buffer.concat([r.body, Buffer.from(" ")])), (e) => e instanceof WebhookVerificationError && e.reason === "signature");
    }

    const t = await c.testEndpoint(endpoint.id);
    assert.equal(t.delivered, true);
    assert.equal(t.attempt.trigger, "TEST");
    const rotated = await c.rotateEndpointSecret(endpoint.id, "0s");
    assert.notEqual(rotated.secret, secret);
    assert.equal((await c.disableEndpoint(endpoint.id)).isActive, false);
    assert.equal((await c.enableEndpoint(endpoint.id)).isActive, true);
    await c.deleteEndpoint(endpoint.id);
    await assert.rejects(c.endpoint(endpoint.id), (e) => e instanceof HeraldError && e.code === "NOT_FOUND");
  } finally {
    rc.close();
  }
});

test("retries and replays failed deliveries", async () => {
  const c = client();
  let code = 500;
  const rc = await receiver(() => code);
  try {
    const { endpoint } = await c.createEndpoint({ name: "flaky", url: rc.url, eventTypes: ["contact.*"], retryPolicy: { maxAttempts: 1 } });
    const since = new Date(Date.now() - 60_000);
    const ev = await c.publish({ eventType: "contact.created", payload: {} });
    let failed;
    await eventually(async () => {
      const p = await c.deliveries({ eventID: ev.id });
      failed = p.items[0];
      return failed?.status === "FAILED";
    });
    const detail = await c.delivery(failed.id);
    assert.equal(detail.attempts.length, 1);
    assert.equal(detail.attempts[0].responseStatus, 500);
    code = 200;
    await c.retryDelivery(failed.id);
    await eventually(async () => (await c.delivery(failed.id)).status === "SUCCEEDED");
    code = 500;
    await c.publish({ eventType: "contact.updated", payload: {} });
    await eventually(async () => (await c.deliveries({ endpointID: endpoint.id, status: "FAILED" })).totalCount === 1);
    code = 200;
    assert.equal(await c.replayDeliveries(endpoint.id, since), 1);
    await eventually(async () => (await c.deliveries({ endpointID: endpoint.id, status: "SUCCEEDED" })).totalCount === 2);
    await c.deleteEndpoint(endpoint.id);
  } finally {
    rc.close();
  }
});

test("retries deliveries by ID, manages the catalog and portal sessions", async () => {
  const c = client();
  let code = 500;
  const rc = await receiver(() => code);
  try {
    const suffix = Date.now().toString(36);
    const et = await c.createEventType({ name: `refund.issued${suffix}`, description: "A refund was issued.", example: { refundId: "re_1" }, jsonSchema: { type: "object", required: ["refundId"] } });
    assert.equal((await c.eventType(et.name)).id, et.id);
    assert.ok((await c.eventTypes({ first: 100 })).items.some((t) => t.name === et.name));
    await assert.rejects(c.publish({ eventType: et.name, payload: {} }), (e) => e instanceof HeraldError && e.code === "BAD_USER_INPUT");
    assert.ok((await c.archiveEventType(et.id)).archivedAt);
    await assert.rejects(c.publish({ eventType: et.name, payload: { refundId: "re_2" } }), (e) => e.code === "BAD_USER_INPUT");
    assert.equal((await c.unarchiveEventType(et.id)).archivedAt, null);

    const { endpoint } = await c.createEndpoint({ name: "refunds", url: rc.url, eventTypes: [et.name], retryPolicy: { maxAttempts: 1 } });
    const ev = await c.publish({ eventType: et.name, payload: { refundId: "re_3" } });
    let failed;
    await eventually(async () => {
      failed = (await c.deliveries({ eventID: ev.id })).items[0];
      return failed?.status === "FAILED";
    });
    code = 200;
    const r = await c.retryDeliveries([failed.id, "dlv_missing"]);
    assert.deepEqual(r.deliveries.map((d) => d.id), [failed.id]);
    assert.equal(r.notRetried.length, 1);
    assert.equal(r.notRetried[0].id, "dlv_missing");
    assert.equal(r.notRetried[0].code, "NOT_FOUND");
    await eventually(async () => (await c.delivery(failed.id)).status === "SUCCEEDED");
    await c.deleteEndpoint(endpoint.id);

    const one = await c.createPortalSession({ name: "Acme" });
    await c.revokePortalSession(one.apiKey.id);
    await assert.rejects(new HeraldClient({ url, apiKey: one.token }).endpoints(), (e) => e.code === "UNAUTHENTICATED");
    const two = await c.createPortalSession({});
    assert.ok((await c.revokePortalSessions()) >= 1);
    await assert.rejects(new HeraldClient({ url, apiKey: two.token }).endpoints(), (e) => e.code === "UNAUTHENTICATED");
  } finally {
    rc.close();
  }
});

test("opens a listener, which shows as one", async () => {
  const c = client();
  const { endpoint, secret } = await c.createListener({ eventTypes: ["order.*"], forwardTo: "http://localhost:3000/webhooks", ttl: "1h" });
  assert.equal(endpoint.type, "LISTENER");
  assert.equal(endpoint.url, "http://localhost:3000/webhooks");
  assert.match(secret, /^whsec_/);
  assert.equal(endpoint.listener.ttl, "1h");
  assert.equal(endpoint.listener.connected, false);
  assert.ok(Date.parse(endpoint.listener.expiresAt) > Date.now());
  assert.equal((await c.endpoint(endpoint.id)).listener.connected, false);
  await c.deleteEndpoint(endpoint.id);
});

test("holds a listener: signed deliveries to the handler, its answers recorded as attempts", async () => {
  const c = client();
  const { endpoint, secret } = await c.createListener({
    eventTypes: ["order.*"],
    forwardTo: "http://localhost:3000/hooks",
    retryPolicy: { initialDelay: "100ms", maxDelay: "100ms" },
  });
  const forwarded = [];
  const reports = [];
  let waiting;
  const stop = c.listen(endpoint.id, {
    connected: (n) => (waiting = n),
    forward: async (d) => {
      const headers = Object.fromEntries(d.headers.map((h) => [h.name, h.value]));
      const msg = await verifyWebhook(secret, headers, d.body);
      forwarded.push([msg.id, d.attempt]);
      return forwarded.length === 1 ? { status: 500, body: "not yet" } : { status: 200, body: "handled", headers: { "X-Local": "yes" } };
    },
    reported: (d, a, err) => reports.push(err ? err.code : "ok"),
    error: (e) => reports.push(`ended: ${e.code}`),
  });
  try {
    await eventually(async () => waiting === 0);
    const ev = await c.publish({ eventType: "order.created", payload: { orderId: "ord_9" } });
    let d;
    await eventually(async () => {
      d = (await c.deliveries({ eventID: ev.id })).items[0];
      return d?.status === "SUCCEEDED";
    });
    const detail = await c.delivery(d.id);
    assert.deepEqual(detail.attempts.map((a) => [a.responseStatus, a.responseBody]), [[500, "not yet"], [200, "handled"]]);
    assert.deepEqual(forwarded, [[ev.id, 1], [ev.id, 2]]);
    assert.deepEqual(reports, ["ok", "ok"]);
  } finally {
    stop();
    await c.deleteEndpoint(endpoint.id);
    await c.close();
  }
});

test("errors carry the API's code and field", async () => {
  const c = client();
  await assert.rejects(c.publish({ eventType: "no.such.type", payload: {} }), (e) => e instanceof HeraldError && e.code === "BAD_USER_INPUT" && e.field === "input.eventType");
  await assert.rejects(new HeraldClient({ url, apiKey: "hrld_wrong" }).viewer(), (e) => e.code === "UNAUTHENTICATED");
  await assert.rejects(new HeraldClient({ url: "http://127.0.0.1:1", apiKey }).viewer(), (e) => e.code === "NETWORK" && /127\.0\.0\.1:1/.test(e.message));
  assert.throws(() => new HeraldClient({ url: "localhost:8080", apiKey }), HeraldError);
  const s = await c.createPortalSession({ readOnly: true, expiresIn: "10m" });
  assert.ok(s.url.includes(`#token=${s.token}`));
});

test("follows deliveries live", async () => {
  const c = client();
  const rc = await receiver();
  const { endpoint } = await c.createEndpoint({ name: "live", url: rc.url, eventTypes: ["course.*"] });
  const seen = [];
  const stop = c.subscribeDeliveries({ endpointID: endpoint.id }, { next: (ch) => seen.push(ch), error: (e) => seen.push(e) });
  try {
    await eventually(async () => {
      if (seen.some((ch) => ch.kind === "ATTEMPT_FINISHED" && ch.status === "SUCCEEDED")) return true;
      await c.publish({ eventType: "course.started", payload: {} });
      return false;
    });
    assert.ok(seen.every((ch) => ch.endpointId === endpoint.id));
  } finally {
    stop();
    await c.close();
    rc.close();
  }
});

test("a live feed notices a silent connection and reconnects", async () => {
  // A proxy that can go silent: no close, no reset, nothing.
  const target = new URL(url);
  let frozen = false;
  const sockets = new Set();
  const proxy = net.createServer((down) => {
    const up = net.connect(Number(target.port), target.hostname);
    for (const s of [down, up]) {
      sockets.add(s);
      s.on("error", () => {});
      s.on("close", () => sockets.delete(s));
    }
    down.on("data", (d) => frozen || up.write(d));
    up.on("data", (d) => frozen || down.write(d));
    down.on("close", () => up.destroy());
    up.on("close", () => down.destroy());
  });
  await new Promise((r) => proxy.listen(0, "127.0.0.1", r));
  const statuses = [];
  const c = new HeraldClient({ url: `http://127.0.0.1:${proxy.address().port}`, apiKey, heartbeatMs: 300, maxBackoffMs: 500, onLiveStatus: (s) => statuses.push(s) });
  const direct = client();
  const types = [];
  const stop = c.subscribeEvents({}, { next: (p) => types.push(p.eventType), error: (e) => types.push(`error ${e.message}`) });
  const publishUntilSeen = (type) =>
    eventually(async () => {
      if (types.includes(type)) return true;
      await direct.publish({ eventType: type, payload: {} });
      return false;
    });
  try {
    await publishUntilSeen("email.sent");
    frozen = true;
    const at = Date.now();
    await eventually(() => statuses.some((s) => s.state === "disconnected"), 10_000);
    const took = Date.now() - at;
    assert.ok(took < 5_000, `a silent connection took ${took}ms to be found dead`);
    frozen = false;
    for (const s of sockets) s.destroy();
    await publishUntilSeen("email.opened");
    assert.ok(statuses.filter((s) => s.state === "connected").length >= 2, JSON.stringify(statuses));
  } finally {
    stop();
    await c.close();
    proxy.close();
    for (const s of sockets) s.destroy();
  }
});

test("verifies Ed25519 signatures made by Node's crypto", async () => {
  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  const spki = publicKey.export({ format: "der", type: "spki" });
  const pk = "whpk_" + spki.subarray(spki.length - 32).toString("base64");
  const ts = Math.floor(Date.now() / 1000);
  const body = JSON.stringify({ id: "evt_1", type: "order.created", timestamp: new Date().toISOString(), data: { a: 1 } });
  const sig = "v1a," + sign(null, Buffer.from(`msg_1.${ts}.${body}`), privateKey).toString("base64");
  const headers = new Headers({ "webhook-id": "msg_1", "webhook-timestamp": String(ts), "webhook-signature": sig });
  const msg = await verifyWebhook(pk, headers, body);
  assert.deepEqual(msg.data, { a: 1 });
  await assert.rejects(verifyWebhook(pk, headers, body + " "), (e) => e.reason === "signature");
  // A stale timestamp is refused, whatever the signature.
  const old = new Headers({ "webhook-id": "msg_1", "webhook-timestamp": String(ts - 600), "webhook-signature": sig });
  await assert.rejects(verifyWebhook(pk, old, body), (e) => e.reason === "timestamp");
  // HMAC signatures made here pass the reference library, and the other way round.
  const secret = "whsec_" + Buffer.from("0123456789abcdef0123456789abcdef").toString("base64");
  const mine = await signWebhook(secret, "msg_2", ts, body);
  new Webhook(secret).verify(body, { "webhook-id": "msg_2", "webhook-timestamp": String(ts), "webhook-signature": mine });
  const theirs = new Webhook(secret).sign("msg_3", new Date(ts * 1000), body);
  await verifyWebhook(secret, { "webhook-id": "msg_3", "webhook-timestamp": String(ts), "webhook-signature": theirs }, body);
});
