import { access, constants, mkdir, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { readCommitTree, type Repository } from "../git/repository.ts";
import { readTreeAt } from "../git/tree-diff.ts";
import type { Logger } from "../log.ts";
import { describeExit, HookError } from "./hook-error.ts";
import { runHook, type HookRun } from "./run-hook.ts";

export const HOOK_NAMES = ["post-checkout", "pre-deploy", "post-deploy", "deploy-failed"] as const;
export type HookName = (typeof HOOK_NAMES)[number];

export interface HookRunnerOptions {
  /** The operator's hooks directory (--hooks-dir), if any. */
  hooksDir: string | undefined;
  /** A path in the deployed tree holding committed hooks (--repo-hooks), if any. */
  repoHooks: string | undefined;
  /** A private directory committed hooks are written to before they run; removed by cleanup(). */
  workDir: string;
  timeoutSeconds: number;
  /** The environment every hook gets (already without secrets). */
  env: Record<string, string>;
  log: Logger;
}

export interface HookCall {
  cwd: string;
  args?: string[];
  stdin?: string;
  env?: Record<string, string>;
  /** Throw a HookError if a hook fails (pre-deploy); otherwise a failure is only logged. */
  mustSucceed?: boolean;
}

export interface HookRunner {
  /** Makes the hooks committed under `repoHooks` in `commit` runnable. */
  addRepoHooks(repo: Repository, commit: string): Promise<void>;
  /** Runs hook `name` from the hooks dir, then the committed one; missing hooks are no-ops. */
  run(name: HookName, call: HookCall): Promise<HookRun[]>;
  /** Every run so far, for the deploy record. */
  readonly runs: HookRun[];
  cleanup(): Promise<void>;
}

/**
 * Runs lifecycle hooks the way git runs its own (githooks(5)): a hook is an
 * executable file named after the event; a file without the exec bit is
 * skipped with git's hint.
 */
export function createHookRunner(options: HookRunnerOptions): HookRunner {
  const runs: HookRun[] = [];
  const sources: string[] = options.hooksDir ? [options.hooksDir] : [];

  async function addRepoHooks(repo: Repository, commit: string): Promise<void> {
    if (!options.repoHooks) return;
    // Read through the repository's object store (never a whole pack in memory).
    const found = await readTreeAt(repo, await readCommitTree(repo, commit), options.repoHooks).catch(() => undefined);
    if (!found) return;
    const dir = join(options.workDir, "repo-hooks");
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true, mode: 0o700 });
    for (const [name, entry] of found) {
      // Only regular files: not directories, symlinks or submodules.
      if (!(HOOK_NAMES as readonly string[]).includes(name) || (entry.mode !== 0o100644 && entry.mode !== 0o100755)) continue;
      const blob = await repo.objects.readAs(entry.oid, "blob");
      // The committed mode decides, as it would in a checkout: 100644 is "not executable".
      await writeFile(join(dir, name), blob, { mode: entry.mode === 0o100755 ? 0o700 : 0o600 });
    }
    sources.push(dir);
  }

  async function run(name: HookName, call: HookCall): Promise<HookRun[]> {
    const done: HookRun[] = [];
    for (const dir of sources) {
      const path = join(dir, name);
      const st = await stat(path).catch(() => undefined);
      if (!st?.isFile()) continue;
      if (!(await access(path, constants.X_OK).then(() => true, () => false))) {
        options.log.warn(`hint: The '${name}' hook was ignored because it's not set as executable.`, { hook: name, path });
        continue;
      }
      const result = await runHook({
        hook: name,
        path,
        args: call.args ?? [],
        cwd: call.cwd,
        env: { ...options.env, ...call.env },
        stdin: call.stdin,
        timeoutMs: options.timeoutSeconds * 1000,
      });
      runs.push(result);
      done.push(result);
      const ok = result.exitCode === 0 && !result.timedOut;
      const fields = { hook: name, path, exitCode: result.exitCode, signal: result.signal, timedOut: result.timedOut, durationMs: result.durationMs, output: result.output };
      if (ok) options.log.info("hook finished", fields);
      else options.log.warn(`${name} hook ${describeExit(result)}`, fields);
      if (!ok && call.mustSucceed) throw new HookError(result);
    }
    return done;
  }

  return {
    addRepoHooks,
    run,
    runs,
    cleanup: () => rm(options.workDir, { recursive: true, force: true }),
  };
}
