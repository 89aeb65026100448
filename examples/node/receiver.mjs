// An example webhook receiver in Node: it verifies each delivery's
// Standard Webhooks signature with @heraldhq/client and handles each event
// once, however often Herald retries it.
//
//   WEBHOOK_SECRET=whsec_… PORT=3000 node receiver.mjs
import http from "node:http";
import { WebhookVerifier, WebhookVerificationError, parseMessage } from "@heraldhq/client/webhook";

const verifier = await WebhookVerifier.create(process.env.WEBHOOK_SECRET ?? "");
const seen = new Set(); // a real receiver keeps this in its database

const server = http.createServer((req, res) => {
  if (req.method !== "POST" || req.url !== "/webhooks") {
    res.writeHead(404).end();
    return;
  }
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", async () => {
    const body = Buffer.concat(chunks); // the raw bytes, not re-encoded JSON
    try {
      await verifier.verify(req.headers, body);
    } catch (e) {
      if (!(e instanceof WebhookVerificationError)) throw e;
      console.log(`refused: ${e.message}`);
      res.writeHead(401).end("invalid signature");
      return;
    }
    const msg = parseMessage(body);
    if (seen.has(msg.id)) {
      console.log(`duplicate ${msg.type} ${msg.id}: already handled`);
      res.writeHead(200).end();
      return;
    }
    seen.add(msg.id);
    console.log(`verified ${msg.type} ${msg.id}: ${JSON.stringify(msg.data)}`);
    res.writeHead(204).end();
  });
});

server.listen(Number(process.env.PORT ?? 3000), "127.0.0.1", () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}/webhooks`);
});
