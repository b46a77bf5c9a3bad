// Generates the capnp-es reader/builder code for schema/monty_wire.capnp into
// js/gen/ from the committed CodeGeneratorRequest (schema/monty_wire.cgr), so
// no Cap'n Proto compiler is needed. The tests and examples import it; the
// glue itself (monty_wire.mjs) does not depend on it.
//   node js/scripts/gen-schema.mjs
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { compileAll } from "capnp-es/compiler";

const js = dirname(dirname(fileURLToPath(import.meta.url)));
const cgr = await readFile(join(js, "..", "schema", "monty_wire.cgr"));
// capnp-es type-checks the code it generates as a file in the working
// directory, so `import "capnp-es"` must resolve from there: js/.
process.chdir(js);
const { files } = await compileAll(cgr, { js: true, dts: true });
const out = join(js, "gen");
await mkdir(out, { recursive: true });
for (const [path, text] of files) {
  await writeFile(join(out, basename(path)), text);
}
console.log(`gen: ${[...files.keys()].map((p) => basename(p)).join(", ")} -> ${out}`);
