import { spawn } from "node:child_process";

/** Output kept per hook run: the tail, where the error usually is. */
export const MAX_HOOK_OUTPUT = 64 * 1024;

/** How long an exited hook's pipes may stay open (held by a child it left running). */
const DRAIN_MS = 2000;

export interface HookRun {
  hook: string;
  path: string;
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  durationMs: number;
  /** stdout and stderr interleaved, at most MAX_HOOK_OUTPUT bytes (the tail). */
  output: string;
  truncated: boolean;
}

export interface HookInvocation {
  hook: string;
  path: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
  stdin: string | undefined;
  timeoutMs: number;
}

/**
 * Runs one hook executable. It is spawned detached, so it leads its own
 * process group: on timeout the whole group is killed, including whatever
 * it started (`npm run build`'s children, a stray `sleep &`).
 */
export function runHook(invocation: HookInvocation): Promise<HookRun> {
  const started = performance.now();
  const tail = createTail(MAX_HOOK_OUTPUT);
  return new Promise((resolve) => {
    let timedOut = false;
    const child = spawn(invocation.path, invocation.args, {
      cwd: invocation.cwd,
      env: invocation.env,
      detached: true,
      stdio: ["pipe", "pipe", "pipe"],
    });
    child.stdout.on("data", tail.push);
    child.stderr.on("data", tail.push);
    // A hook that does not read its stdin closes the pipe early: not an error.
    child.stdin.on("error", () => {});
    child.stdin.end(invocation.stdin ?? "");

    const killGroup = () => {
      try {
        process.kill(-child.pid!, "SIGKILL");
      } catch {
        // the group is already gone
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, invocation.timeoutMs);

    let exit: { code: number | null; signal: string | null } | undefined;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      child.stdout.destroy();
      child.stderr.destroy();
      const { text, truncated } = tail.read();
      resolve({
        hook: invocation.hook,
        path: invocation.path,
        exitCode: exit?.code ?? null,
        signal: exit?.signal ?? null,
        timedOut,
        durationMs: Math.round(performance.now() - started),
        output: text,
        truncated,
      });
    };
    child.on("error", (err) => {
      exit = { code: null, signal: null };
      tail.push(Buffer.from(`hooksd: cannot run ${invocation.path}: ${err.message}\n`));
      finish();
    });
    child.on("exit", (code, signal) => {
      exit = { code, signal };
      // Wait for the pipes to drain, but not for a background child holding them open.
      const drained = setTimeout(finish, DRAIN_MS);
      child.on("close", () => {
        clearTimeout(drained);
        finish();
      });
    });
  });
}

function createTail(limit: number) {
  let chunks: Buffer[] = [];
  let size = 0;
  let truncated = false;
  return {
    push: (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
      if (size > 2 * limit) {
        const all = Buffer.concat(chunks);
        chunks = [all.subarray(all.length - limit)];
        size = limit;
        truncated = true;
      }
    },
    read() {
      const all = Buffer.concat(chunks);
      const cut = all.length > limit;
      return { text: (cut ? all.subarray(all.length - limit) : all).toString("utf8"), truncated: truncated || cut };
    },
  };
}
