// Fails when Herald's GraphQL schema breaks a client of the last release:
// GraphQL Inspector compares the schema with the release's snapshot in
// api/baseline, and every breaking change it finds must be listed, with
// why, in api/intentional-breaks.json.
//
//   node check.mjs [--baseline DIR] [--allow FILE] [SCHEMA_FILE...]
//
// Defaults: api/baseline/*.graphqls, api/intentional-breaks.json, and
// schema.graphqls, graph/ent.graphqls and graph/destinations.graphqls of the repository.
import { readFileSync, readdirSync } from "node:fs";
import { join, dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { buildSchema } from "graphql";
import { diff, CriticalityLevel } from "@graphql-inspector/core";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const args = process.argv.slice(2);
let baselineDir = join(root, "api", "baseline");
let allowFile = join(root, "api", "intentional-breaks.json");
const files = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--baseline") baselineDir = resolve(args[++i]);
  else if (args[i] === "--allow") allowFile = resolve(args[++i]);
  else files.push(resolve(args[i]));
}
if (files.length === 0) files.push(join(root, "schema.graphqls"), join(root, "graph", "ent.graphqls"), join(root, "graph", "destinations.graphqls"));

const load = (paths) => buildSchema(paths.map((p) => readFileSync(p, "utf8")).join("\n"), { assumeValidSDL: false });
const baselineFiles = readdirSync(baselineDir).filter((f) => f.endsWith(".graphqls")).sort().map((f) => join(baselineDir, f));
const before = load(baselineFiles);
const after = load(files);

const allowed = JSON.parse(readFileSync(allowFile, "utf8"));
if (!Array.isArray(allowed) || allowed.some((a) => !a.type || !a.path || !a.reason)) {
  console.error(`${allowFile}: want a JSON array of {"type", "path", "reason"}`);
  process.exit(2);
}

const changes = await diff(before, after);
const breaking = changes.filter((c) => c.criticality.level === CriticalityLevel.Breaking);
const used = new Set();
const unlisted = breaking.filter((c) => {
  const i = allowed.findIndex((a) => a.type === c.type && a.path === c.path);
  if (i >= 0) used.add(i);
  return i < 0;
});

for (const c of changes.filter((c) => c.criticality.level === CriticalityLevel.Dangerous)) {
  console.log(`dangerous (allowed): ${c.message}`);
}
for (const [i, a] of allowed.entries()) {
  console.log(used.has(i) ? `intentional break: ${a.type} ${a.path}: ${a.reason}` : `listed but not found (remove it after the release): ${a.type} ${a.path}`);
}
if (unlisted.length > 0) {
  console.error(`The schema breaks clients of the last release (${unlisted.length} change${unlisted.length === 1 ? "" : "s"}):`);
  for (const c of unlisted) {
    console.error(`  ${c.type} ${c.path ?? ""}: ${c.message}`);
    if (c.criticality.reason) console.error(`      ${c.criticality.reason}`);
  }
  console.error(
    `Keep the old field or argument (deprecate it with @deprecated(reason: "…") for a release first), ` +
      `or, if the break is intended, add {"type", "path", "reason"} for each change to ${allowFile}.`,
  );
  process.exit(1);
}
console.log(`schema compatible with the last release: ${changes.length} change(s), none breaking unlisted`);
