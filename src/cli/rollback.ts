import { basename, resolve } from "node:path";
import * as v from "valibot";
import { ConfigError } from "../config/config-error.ts";
import { checkStateDir } from "../config/load-target.ts";
import { TargetName } from "../config/schema.ts";
import { defaultStateDir } from "../config/state-dir.ts";
import { newDeployId } from "../deploy/deploy-id.ts";
import { LOCK_WAIT_MS } from "../publish/publish-release.ts";
import { ReleaseError } from "../publish/release-error.ts";
import { isReleaseLayout, releaseLayout } from "../publish/release-layout.ts";
import { isReleaseId, listReleases, readCurrentId, releaseBefore, type Release } from "../publish/releases.ts";
import { switchCurrent } from "../publish/switch-current.ts";
import { acquireTargetLock, LockError, type TargetLock } from "../publish/target-lock.ts";
import { openDatabase } from "../state/database.ts";
import { createSqliteHistory } from "../state/history.ts";
import { parseFlags } from "./flags.ts";
import { errorMessage } from "../util/error-message.ts";

export const rollbackFlags = {
  repo: { type: "string" },
  to: { type: "string" },
  name: { type: "string" },
  "state-dir": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

/**
 * `hooksd rollback`: points `current` back at the previous release (or the
 * one named by --to) and records it in the history. It takes the same lock
 * as a deploy's publish step, so it waits for a running deploy to finish
 * switching rather than racing it, whether or not the daemon runs.
 */
export async function rollback(argv: string[]): Promise<number> {
  const flags = parseFlags(rollbackFlags, argv);
  if (!flags.repo) throw new ConfigError("--repo is required: the directory holding the releases");
  const dir = resolve(flags.repo);
  if (!(await isReleaseLayout(dir))) {
    throw new ConfigError(`--repo: ${dir} holds no atomic releases (rollback needs --strategy atomic: DIR/releases and DIR/current)`);
  }
  const name = flags.name ?? (basename(dir) || "site");
  if (!v.is(TargetName, name)) throw new ConfigError(`--name: '${name}' must be 1-64 letters, digits, '.', '_' or '-'`);
  if (flags.to !== undefined && !isReleaseId(flags.to)) throw new ConfigError(`--to: '${flags.to}' is not a release id`);
  const stateDir = resolve(flags["state-dir"] ?? defaultStateDir());
  checkStateDir(stateDir, { repo: dir }, flags["state-dir"] !== undefined);

  const layout = releaseLayout(dir);
  const known = (await listReleases(layout)).map((r) => r.id);
  if (flags.to !== undefined && !known.includes(flags.to)) {
    throw new ConfigError(`--to: no release ${flags.to} in ${layout.releases} (releases: ${known.join(", ") || "none"})`);
  }

  let lock: TargetLock;
  try {
    lock = await acquireTargetLock(layout.lock, { timeoutMs: 0, purpose: "rollback" }).catch(async (err) => {
      if (!(err instanceof LockError)) throw err;
      process.stderr.write(`hooksd: a deploy of ${name} is publishing; waiting for it (${err.message})\n`);
      return acquireTargetLock(layout.lock, { timeoutMs: LOCK_WAIT_MS, purpose: "rollback" });
    });
  } catch (err) {
    if (!(err instanceof LockError)) throw err;
    process.stderr.write(`hooksd: rollback of ${name} failed: ${err.message}\n`);
    return 1;
  }

  try {
    // Read under the lock: a deploy may have switched `current` while we waited.
    const releases = await listReleases(layout);
    const current = await readCurrentId(layout);
    const chosen = pick(releases, current, flags.to);
    const history = createSqliteHistory(openDatabase(stateDir));
    const now = new Date().toISOString();
    const id = newDeployId();
    history.add({
      id,
      target: name,
      provider: undefined,
      deliveryId: undefined,
      ref: chosen.ref,
      commit: chosen.commit,
      previous: releases.find((r) => r.id === current)?.commit,
      state: "running",
      error: undefined,
      queuedAt: now,
      startedAt: now,
      finishedAt: undefined,
      timings: {},
      kind: "rollback",
      release: chosen.id,
    });
    try {
      await switchCurrent(layout, chosen.id);
    } catch (err) {
      history.update(id, { state: "failed", error: String(err), finishedAt: new Date().toISOString() });
      throw err;
    }
    history.update(id, { state: "succeeded", finishedAt: new Date().toISOString() });
    process.stdout.write(`${name}: current → releases/${chosen.id} (${chosen.commit.slice(0, 12)}), was ${current ?? "none"}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`hooksd: rollback of ${name} failed: ${errorMessage(err)}\n`);
    return 1;
  } finally {
    lock.release();
  }
}

function pick(releases: Release[], current: string | undefined, to: string | undefined): Release {
  if (to !== undefined) {
    const named = releases.find((r) => r.id === to);
    // It existed before the lock; only a prune in between removes it.
    if (!named) throw new ReleaseError("NO_SUCH_RELEASE", `release ${to} was removed meanwhile`);
    return named;
  }
  const before = releaseBefore(releases, current);
  if (!before) throw new ReleaseError("NOTHING_TO_ROLL_BACK_TO", `no release older than ${current ?? "the current one"} to roll back to`);
  return before;
}
