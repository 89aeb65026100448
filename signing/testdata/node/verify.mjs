// verify.mjs checks Standard Webhooks signatures with the reference
// JavaScript library (npm "standardwebhooks"), independently of Herald's Go
// code. The Go tests in package signing run it.
//
// Input on stdin: a JSON array of cases, each
//   {"name": string, "secret": "whsec_...", "headers": {...}, "body": string}
// Output on stdout: a JSON array, one result per case in order, each
//   {"name": string, "ok": boolean, "error": string}
// where ok reports whether the library accepted the signature.
//
// Exit status: 0 when every case was checked (accepted or not), 2 on bad
// input or an unexpected failure.
import { Webhook, WebhookVerificationError } from "standardwebhooks";

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) {
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}

function check(c) {
  try {
    new Webhook(c.secret).verify(c.body, c.headers, { jsonParse: false });
    return { name: c.name, ok: true, error: "" };
  } catch (err) {
    if (err instanceof WebhookVerificationError) {
      return { name: c.name, ok: false, error: err.message };
    }
    throw err;
  }
}

try {
  const cases = JSON.parse(await readStdin());
  if (!Array.isArray(cases)) {
    throw new Error("stdin must be a JSON array of cases");
  }
  process.stdout.write(JSON.stringify(cases.map(check)) + "\n");
} catch (err) {
  process.stderr.write(`verify.mjs: ${err.stack ?? err}\n`);
  process.exit(2);
}
