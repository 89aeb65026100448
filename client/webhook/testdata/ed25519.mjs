// Independent Ed25519 Standard Webhooks signatures for the Go verifier's
// tests, made with Node's own crypto (no Herald code).
//
// Reads JSON from stdin: {"sign": [{"id","timestamp","body"}],
// "verify": [{"publicKey","id","timestamp","body","signature"}]}.
// Writes {"publicKey": "whpk_…", "signatures": ["v1a,…"], "verified": [bool]}.
import { generateKeyPairSync, sign, verify, createPublicKey } from "node:crypto";

const input = JSON.parse(await new Promise((resolve) => {
  let s = "";
  process.stdin.on("data", (c) => (s += c));
  process.stdin.on("end", () => resolve(s));
}));

const { publicKey, privateKey } = generateKeyPairSync("ed25519");
// The raw 32-byte public key is the last 32 bytes of its SPKI DER form.
const spki = publicKey.export({ format: "der", type: "spki" });
const raw = spki.subarray(spki.length - 32);

const signed = (m) => Buffer.concat([Buffer.from(`${m.id}.${m.timestamp}.`), Buffer.from(m.body, "utf8")]);

const signatures = input.sign.map((m) => "v1a," + sign(null, signed(m), privateKey).toString("base64"));

const verified = input.verify.map((m) => {
  const key = createPublicKey({
    key: Buffer.concat([spki.subarray(0, spki.length - 32), Buffer.from(m.publicKey.replace(/^whpk_/, ""), "base64")]),
    format: "der",
    type: "spki",
  });
  return m.signature.split(" ").some((s) => {
    const [v, sig] = s.split(",");
    return v === "v1a" && verify(null, signed(m), key, Buffer.from(sig, "base64"));
  });
});

process.stdout.write(JSON.stringify({ publicKey: "whpk_" + raw.toString("base64"), signatures, verified }));
