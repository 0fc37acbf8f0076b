/**
 * Builds dist/hooksd: one self-contained executable (Bun runtime included),
 * so a server needs neither Node, Bun nor git installed.
 */
import { $ } from "bun";

// Tests build their own copy elsewhere: `bun build.ts /tmp/x/hooksd`.
const outfile = process.argv[2] ?? "dist/hooksd";
// The deploy thread's and the checkout helper thread's entry points are compiled in beside the CLI
// (see src/deploy/deploy-thread.ts, src/git/checkout-thread.ts).
// Not --bytecode: it starts the CLI ~50 ms sooner, but the worker then fails to
// find its embedded modules (tried with Bun 1.4.5).
await $`bun build --compile --minify --sourcemap src/cli.ts src/deploy/deploy-worker.ts src/git/checkout-worker.ts --outfile ${outfile}`;
const { size } = Bun.file(outfile);
console.log(`built ${outfile} (${(size / 1024 / 1024).toFixed(1)} MB)`);
