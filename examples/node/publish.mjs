// An example publisher in Node: it publishes one event with
// @heraldhq/client.
//
//   HERALD_URL=http://localhost:8080 HERALD_API_KEY=hrld_… node publish.mjs order.created '{"orderId": "ord_1"}'
import { HeraldClient, HeraldError } from "@heraldhq/client";

const [type = "order.created", data = '{"orderId": "ord_1042", "total": 4990}'] = process.argv.slice(2);
const herald = new HeraldClient({ url: process.env.HERALD_URL, apiKey: process.env.HERALD_API_KEY });
try {
  const ev = await herald.publish({ eventType: type, payload: JSON.parse(data) });
  console.log(`published ${ev.id} (${ev.eventType}) to ${ev.deliveryCount} endpoint(s)`);
} catch (e) {
  if (e instanceof HeraldError) {
    console.error(`herald refused the event (${e.code}): ${e.message}`);
    process.exit(1);
  }
  throw e;
}
