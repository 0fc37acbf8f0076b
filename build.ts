/**
 * Builds dist/hooksd: one self-contained executable (Bun runtime included),
 * so a server needs neither Node, Bun nor git installed.
 */
import { $ } from "bun";

// Tests build their own copy elsewhere: `bun build.ts /tmp/x/hooksd`.
const outfile = process.argv[2] ?? "dist/hooksd";
// --bytecode: parsed ahead of time, the binary starts in ~20 ms instead of ~70 ms
// (it matters for `hooksd deploy` from a CI job or a cron line). It rules out a
// top-level await in src/cli.ts. The deploy thread's entry point is compiled in
// beside the CLI (see src/deploy/deploy-thread.ts).
await $`bun build --compile --minify --sourcemap --bytecode src/cli.ts src/deploy/deploy-worker.ts --outfile ${outfile}`;
const { size } = Bun.file(outfile);
console.log(`built ${outfile} (${(size / 1024 / 1024).toFixed(1)} MB)`);
