/**
 * The crash harness: one real daemon per strategy deploys a seeded chain of
 * pushes; each trial SIGKILLs it at a seeded moment of a deploy, restarts it
 * on the same state dir with no new delivery, waits for the start-up
 * recovery to finish and checks with native git that the site converged and
 * the object store is whole. The next trial starts from whatever the last
 * one left, so damage that recovery missed shows up later in the chain too.
 *
 * A chain is reproducible from (strategy, seed): the trees, the pushes and
 * the kill delays all come from the seed. Where a delay lands in the deploy
 * still depends on the machine's speed, so every trial reports the phase it
 * hit, read from the killed daemon's log and what it left on disk.
 */
import { existsSync, readdirSync, readFileSync, readlinkSync, statSync } from "node:fs";
import { chmod, mkdir, readdir, readFile, readlink, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { gitlabPush, startDaemon, type Daemon } from "../daemon/support.ts";
import { commitFiles, createRemote, expectTreeEquals, git, makeTempDir, push, runGit } from "../helpers/git-fixture.ts";
import { startGitServer } from "../helpers/git-server.ts";
import { SECRET } from "../http/harness.ts";
import { ALWAYS_PRESENT, createSiteTree, seededRandom } from "./site-tree.ts";
import { errorMessage } from "../../src/util/error-message.ts";

export type Strategy = "in-place" | "atomic";

export interface ChainOptions {
  /** The command that runs hooksd (the compiled binary, or bun + src/cli.ts). */
  hooksd: string[];
  strategy: Strategy;
  seed: number;
  trials: number;
  /**
   * atomic: releases kept (default 2: nearly every publish prunes one, so
   * kills land in pruning too). From 3 on, each deploy in steady state
   * recycles a release the prune would remove, so kills land in that instead.
   */
  keep?: number | undefined;
  /**
   * The first trial that kills (default 1). The trials before it still draw
   * their trees and delays from the seed, but are deployed in one go with no
   * kill: a regression chain starts right before the trial that failed.
   */
  from?: number | undefined;
  /** Progress, one line per trial. */
  progress?: (line: string) => void;
}

export interface ChainResult {
  strategy: Strategy;
  keep: number | undefined;
  seed: number;
  /** Trials that ran to their checks (all of them unless one failed). */
  completed: number;
  /** How many kills landed in each phase. */
  phases: Record<string, number>;
  /** The measured deploy the kill delays are drawn against (ms from the 202 to "deploy succeeded"). */
  deployMs: number;
  /** The first failing trial, described so that it can be rerun; undefined when all passed. */
  failure: string | undefined;
  /**
   * Kills after which, BEFORE the restart, native `git fsck` found the store
   * damaged (e.g. a ref written before its pack arrived), by phase, with one
   * sample message. Observed, not asserted: recovery must repair it, and the
   * check after recovery is asserted.
   */
  damagedBeforeRecovery: Record<string, number>;
  damageSample: string | undefined;
  /** atomic: deploys that succeeded by recycling an old release (see claimRecyclableRelease). */
  recycled: number;
  /** atomic: the concurrent reader's summary. */
  reader?: { reads: number; releasesSeen: number; problems: string[] } | undefined;
}

const SETTLED = new Set(["deploy succeeded", "deploy failed", "deploy superseded", "deploy rolled back"]);
const TEMP_PREFIX = ".hooksd-tmp-";

export async function runCrashChain(options: ChainOptions): Promise<ChainResult> {
  const { strategy, seed, trials } = options;
  const atomic = strategy === "atomic";
  const keep = atomic ? (options.keep ?? 2) : undefined;
  const random = seededRandom(seed);
  const tree = createSiteTree(random);

  const tmp = await makeTempDir(`crash-${strategy}`);
  const root = join(tmp, "repos");
  const { bare, work } = await createRemote(root, "site.git");
  const server = await startGitServer({ root });
  const dir = join(tmp, "site");
  const marks = join(tmp, "marks");
  const hooksDir = join(tmp, "hooks");
  const secretFile = join(tmp, "secret");
  await mkdir(marks);
  await mkdir(hooksDir);
  await writeFile(secretFile, `${SECRET}\n`, { mode: 0o600 });
  // A real hook with a little work in it, so that kills also land while hooks run.
  await writeFile(join(hooksDir, "post-deploy"), `#!/bin/sh\n: > "${marks}/$HOOKSD_DEPLOY_ID"\nsleep 0.03\n`);
  await chmod(join(hooksDir, "post-deploy"), 0o755);
  const args = ["--repo", dir, "--remote", server.url("site.git"), "--branch", "main", "--secret-file", secretFile, "--state-dir", join(tmp, "state"), "--strategy", strategy, "--hooks-dir", hooksDir];
  if (keep !== undefined) args.push("--keep", String(keep));

  const phases: Record<string, number> = {};
  const damagedBeforeRecovery: Record<string, number> = {};
  let damageSample: string | undefined;
  let daemon = await startDaemon(options.hooksd, args);
  let recycled = 0;
  // Counted in each daemon's log before it is replaced (and in the last one's at the end).
  const countRecycled = (d: Daemon) => d.logs.filter((l) => l.msg === "deploy succeeded" && l.recycledFrom !== undefined).length;
  let deployed: string | undefined;
  let reader: ReturnType<typeof startReader> | undefined;
  const pushNext = async (files: Record<string, Parameters<typeof commitFiles>[1][string]>, message: string) => {
    await commitFiles(work, files, message);
    return push(work);
  };
  const deliver = async (commit: string): Promise<string> => {
    const { headers, body } = await gitlabPush(deployed ?? "0".repeat(40), commit);
    const res = await fetch(daemon.url, { method: "POST", headers, body });
    if (res.status !== 202) throw new Error(`delivery answered ${res.status}: ${await res.text()}`);
    return ((await res.json()) as { deploy: string }).deploy;
  };
  const settled = (id: string) => daemon.waitForLog((l) => l.deploy === id && SETTLED.has(String(l.msg)), 180_000);

  try {
    // The first deploy creates DIR; the second is measured: the kill delays
    // are drawn from 0 to its duration, or aimed where its phases meet.
    deployed = await pushNext(tree.initial(), "initial");
    const first = await settled(await deliver(deployed));
    if (first.msg !== "deploy succeeded") throw new Error(`the first deploy did not succeed: ${JSON.stringify(first)}`);
    // Measured in a fresh process, as every trial's deploy runs in one (the daemon restarted by the trial before).
    daemon.proc.kill("SIGKILL");
    await daemon.exited;
    daemon = await startDaemon(options.hooksd, args);
    const measured = await pushNext(tree.next(), "measured");
    const sentAt = Date.now();
    const id = await deliver(measured);
    const done = await settled(id);
    if (done.msg !== "deploy succeeded") throw new Error(`the measured deploy did not succeed: ${JSON.stringify(done)}`);
    deployed = measured;
    const deployMs = Date.parse(String(done.time)) - sentAt;
    // Where the phases meet (from the start line and the phase timings): the
    // short steps — index and HEAD writes, sealing, the switch, pruning,
    // hooks — sit at those edges.
    const timings = (done.timings ?? {}) as Record<string, number>;
    const started = daemon.logs.find((l) => l.deploy === id && l.msg === "deploy started");
    const boundaries = [Date.parse(String(started?.time)) - sentAt];
    for (const phase of ["fetch", "checkout", "publish"]) if (timings[phase] !== undefined) boundaries.push(boundaries.at(-1)! + timings[phase]);
    boundaries.push(deployMs - 40); // about where post-deploy runs

    if (atomic) reader = startReader(dir, join(tmp, "stop-reader"));

    // A third of the kills uniform over the whole deploy, a third near where
    // phases meet, a third the instant a short step shows on disk (which a
    // delay alone would almost never hit).
    // Only a recycling chain aims at the claim (so that the other chains keep their seeded kills).
    const events = !atomic ? IN_PLACE_EVENTS : keep! > 2 ? [...ATOMIC_EVENTS, "release directory made"] : ATOMIC_EVENTS;
    const drawDelay = (trial: number): KillAt => {
      if (trial % 3 === 1) return { delay: Math.round(random() * deployMs) };
      if (trial % 3 === 2) return { delay: Math.max(0, Math.round(boundaries[Math.floor(random() * boundaries.length)]! + (random() - 0.5) * 40)) };
      return { event: events[Math.floor(random() * events.length)]! };
    };
    const from = options.from ?? 1;
    if (from > 1) {
      const skipped: Record<string, Parameters<typeof commitFiles>[1][string]> = {};
      for (let trial = 1; trial < from; trial++) {
        Object.assign(skipped, tree.next());
        drawDelay(trial);
      }
      const target = await pushNext(skipped, `trials 1-${from - 1}`);
      const end = await settled(await deliver(target));
      if (end.msg !== "deploy succeeded") throw new Error(`deploying trials 1-${from - 1} did not succeed: ${JSON.stringify(end)}`);
      deployed = target;
    }

    for (let trial = from; trial <= trials; trial++) {
      const target = await pushNext(tree.next(), `trial ${trial}`);
      const killAt = drawDelay(trial);
      const before = atomic ? undefined : await stat(join(dir, ".git/index")).then((s) => s.mtimeMs);

      const id = await deliver(target);
      const sent = performance.now();
      if (killAt.delay !== undefined) await Bun.sleep(killAt.delay);
      else await spinUntil(() => happened(killAt.event, { dir, id, target, marks, indexMtime: before }), sent + deployMs * 4);
      const delay = Math.round(performance.now() - sent);
      daemon.proc.kill("SIGKILL");
      await daemon.exited;
      const phase = await phaseOf(daemon.logs.filter((l) => l.deploy === id), { strategy, dir, id, target, marks, indexMtime: before, store: atomic ? join(dir, ".hooksd/repo.git") : dir });
      phases[phase] = (phases[phase] ?? 0) + 1;
      const damage = await fsckProblems(atomic ? join(dir, ".hooksd/repo.git") : dir);
      if (damage) {
        damagedBeforeRecovery[phase] = (damagedBeforeRecovery[phase] ?? 0) + 1;
        damageSample ??= `trial ${trial}, ${phase}: ${damage.split("\n").slice(0, 3).join(" / ")}`;
      }
      const when = killAt.event ? `on ${killAt.event}, ${delay} ms` : `${delay} ms`;
      const where = `${strategy} seed ${seed} trial ${trial} (kill ${when} after the 202, in ${phase})`;

      recycled += countRecycled(daemon);
      daemon = await startDaemon(options.hooksd, args);
      const problems = await recovered(daemon);
      if (problems.length === 0) problems.push(...(await checkTarget({ strategy, dir, bare, target })));
      options.progress?.(`${where}: ${problems.length ? "FAILED" : "ok"}`);
      if (problems.length) {
        return { strategy, keep, seed, recycled: recycled + countRecycled(daemon), completed: trial - from, phases, damagedBeforeRecovery, damageSample, deployMs, failure: `${where}:\n  ${problems.join("\n  ")}`, reader: await reader?.stop() };
      }
      deployed = target;
    }
    return { strategy, keep, seed, recycled: recycled + countRecycled(daemon), completed: trials - from + 1, phases, damagedBeforeRecovery, damageSample, deployMs, failure: undefined, reader: await reader?.stop() };
  } finally {
    await reader?.stop();
    daemon.proc.kill("SIGKILL");
    await daemon.exited;
    server.stop();
  }

  /**
   * Waits until the restarted daemon's newest deploy (its redo of the killed
   * one, the resumed queued one, or the killed one if it had finished) has
   * settled, and says so unless it succeeded. The daemon runs its start-up
   * recovery before it answers any request, so the first answer already
   * shows what it owes.
   */
  async function recovered(d: Daemon): Promise<string[]> {
    const deadline = Date.now() + 180_000;
    for (;;) {
      const { targets } = (await (await fetch(new URL("status", d.url))).json()) as { targets: Array<{ lastDeploy?: Record<string, unknown> }> };
      const last = targets[0]?.lastDeploy;
      if (last && last.state !== "queued" && last.state !== "running") {
        return last.state === "succeeded" ? [] : [`recovery deploy ${String(last.id)} ended ${String(last.state)}: ${String(last.error ?? last.reason ?? "")}`];
      }
      if (Date.now() > deadline) return [`recovery did not settle within 180 s: ${JSON.stringify(last)}`];
      await Bun.sleep(20);
    }
  }
}

type KillAt = { delay: number; event?: undefined } | { delay?: undefined; event: string };

const IN_PLACE_EVENTS = ["index.lock created", "index replaced", "branch ref written", "post-deploy started"];
const ATOMIC_EVENTS = ["release marker written", "temporary current link made", "current switched", "post-deploy started"];

/** Whether a step of the deploy has shown on disk; synchronous, for the spin below. */
function happened(event: string, at: { dir: string; id: string; target: string; marks: string; indexMtime: number | undefined }): boolean {
  try {
    switch (event) {
      case "index.lock created":
        return existsSync(join(at.dir, ".git/index.lock"));
      case "index replaced":
        return statSync(join(at.dir, ".git/index")).mtimeMs !== at.indexMtime;
      case "branch ref written":
        return readFileSync(join(at.dir, ".git/refs/heads/main"), "utf8").trim() === at.target;
      case "release directory made":
        return existsSync(join(at.dir, "releases", at.id));
      case "release marker written":
        return existsSync(join(at.dir, ".hooksd/releases", `${at.id}.json`));
      case "temporary current link made":
        return readdirSync(at.dir).some((name) => name.startsWith(".current-"));
      case "current switched":
        return readlinkSync(join(at.dir, "current")) === `releases/${at.id}`;
      case "post-deploy started":
        return existsSync(join(at.marks, at.id));
    }
  } catch {
    // Not there yet.
  }
  return false;
}

/**
 * Polls until `done` or the deadline, yielding only to pending I/O (the git
 * server runs in this process): a timer's granularity would miss steps that
 * last a millisecond.
 */
async function spinUntil(done: () => boolean, deadline: number): Promise<void> {
  while (!done() && performance.now() < deadline) await new Promise((resolve) => setImmediate(resolve));
}

/**
 * Where the kill landed, read from the killed daemon's log (did the deploy
 * start, did it settle) and from what it left on disk, latest step first:
 * post-deploy's mark, `current` and the release marker (atomic), HEAD and
 * the index (in place), the release directory, the pushed commit's objects.
 */
async function phaseOf(
  lines: Array<Record<string, unknown>>,
  at: { strategy: Strategy; dir: string; store: string; id: string; target: string; marks: string; indexMtime: number | undefined },
): Promise<string> {
  const msgs = lines.map((l) => String(l.msg));
  if (msgs.some((m) => SETTLED.has(m))) return "after the deploy settled";
  if (!msgs.includes("deploy started")) return "queued (before the deploy started)";
  if (existsSync(join(at.marks, at.id))) return "hooks (post-deploy)";
  const fetched = await git(at.store, "cat-file", "-e", `${at.target}^{tree}`).then(() => true, () => false);
  if (at.strategy === "in-place") {
    if ((await git(at.dir, "rev-parse", "HEAD").catch(() => "")) === at.target) return "HEAD written, before hooks";
    if (existsSync(join(at.dir, ".git/index.lock"))) return "index write";
    const mtime = await stat(join(at.dir, ".git/index")).then((s) => s.mtimeMs).catch(() => undefined);
    if (mtime !== at.indexMtime) return "index written, HEAD not yet";
    return fetched ? "checkout (work tree)" : "fetch";
  }
  if ((await readlink(join(at.dir, "current")).catch(() => "")) === `releases/${at.id}`) return "after the switch (pruning, store HEAD)";
  if ((await readdir(at.dir)).some((name) => name.startsWith(".current-"))) return "symlink switch";
  if (existsSync(join(at.dir, ".hooksd/releases", `${at.id}.json`))) return "sealed, before the switch (sealing, lock)";
  if (existsSync(join(at.dir, "releases", at.id))) return "release materialization";
  return fetched ? "after fetch, before the release" : "fetch";
}

/** Native git's verdict on the recovered target, one line per problem. */
async function checkTarget(at: { strategy: Strategy; dir: string; bare: string; target: string }): Promise<string[]> {
  const problems: string[] = [];
  const attempt = async (what: string, check: () => Promise<void>) => {
    try {
      await check();
    } catch (err) {
      problems.push(`${what}: ${errorMessage(err)}`);
    }
  };
  let store = at.dir;
  if (at.strategy === "atomic") {
    store = join(at.dir, ".hooksd/repo.git");
    await attempt("current", async () => {
      const link = await readlink(join(at.dir, "current"));
      const marker = JSON.parse(await readFile(join(at.dir, ".hooksd/releases", `${link.replace(/^releases\//, "")}.json`), "utf8")) as { commit: string };
      if (marker.commit !== at.target) throw new Error(`serves ${marker.commit}, the newest push is ${at.target}`);
      await expectTreeEquals(join(at.dir, "current"), at.bare, marker.commit);
    });
  } else {
    await attempt("HEAD", async () => {
      const head = await git(at.dir, "rev-parse", "HEAD");
      if (head !== at.target) throw new Error(`HEAD is ${head}, the newest push is ${at.target}`);
    });
    await attempt("work tree", () => expectTreeEquals(at.dir, at.bare, at.target));
    await attempt("git status", async () => {
      const status = await git(at.dir, "status", "--porcelain", "--untracked-files=all");
      if (status !== "") throw new Error(`not clean:\n${status}`);
    });
  }
  await attempt("git fsck", async () => {
    const out = await fsckProblems(store);
    if (out) throw new Error(out);
  });
  await attempt("leftovers", async () => {
    const found = await leftovers(at.dir);
    if (found.length) throw new Error(found.join(", "));
  });
  return problems;
}

/** Native git's complaints about a store (refs to missing objects, broken links), or "" when it finds none. */
async function fsckProblems(store: string): Promise<string> {
  try {
    const { stdout, stderr } = await runGit(store, ["fsck", "--no-progress", "--no-dangling"]);
    return new TextDecoder().decode(stdout) + stderr;
  } catch (err) {
    return errorMessage(err);
  }
}

/** Temp files of dead processes anywhere under DIR, and stray links beside `current`. */
async function leftovers(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (entry.name.startsWith(TEMP_PREFIX) || (entry.parentPath === dir && entry.name.startsWith(".current-"))) found.push(join(entry.parentPath, entry.name));
  }
  return found;
}

function startReader(dir: string, stopFile: string) {
  const proc = Bun.spawn([process.execPath, join(import.meta.dir, "current-reader.ts"), dir, ALWAYS_PRESENT, stopFile], { stdout: "pipe", stderr: "pipe" });
  let result: Promise<ChainResult["reader"]> | undefined;
  return {
    stop() {
      result ??= (async () => {
        await writeFile(stopFile, "");
        const [out, err] = await Promise.all([proc.stdout.text(), proc.stderr.text(), proc.exited]);
        if (!out) return { reads: 0, releasesSeen: 0, problems: [`the reader printed nothing: ${err}`] };
        return JSON.parse(out) as ChainResult["reader"];
      })();
      return result;
    },
  };
}
