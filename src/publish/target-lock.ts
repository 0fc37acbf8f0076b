import { FFIType } from "bun:ffi";
import { closeSync, ftruncateSync, mkdirSync, openSync, readFileSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import { dlopenLibc } from "../util/libc.ts";

const LOCK_EX = 2;
const LOCK_NB = 4;

/** One error for "someone else publishes this target", with a stable code. */
export class LockError extends Error {
  readonly code = "LOCKED";
  override name = "LockError";
}

export interface TargetLock {
  release(): void;
}

let libc: { flock(fd: number, op: number): number } | undefined;

function flock(fd: number, op: number): number {
  libc ??= dlopenLibc({ flock: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 } });
  return libc.flock(fd, op);
}

/**
 * Takes the per-target lock that every publish step and every rollback hold,
 * so that a rollback never races a deploy switching `current` (in this
 * process or in another: `hooksd rollback` while the daemon runs).
 *
 * flock(2) rather than an O_EXCL file: the kernel drops the lock when its
 * holder dies, however it dies, so there is no stale lock to detect or break.
 * The holder's pid is written into the file only to name it in messages.
 */
export async function acquireTargetLock(path: string, options: { timeoutMs: number; purpose: string }): Promise<TargetLock> {
  mkdirSync(dirname(path), { recursive: true });
  const fd = openSync(path, "a+", 0o600);
  const deadline = Date.now() + options.timeoutMs;
  while (flock(fd, LOCK_EX | LOCK_NB) !== 0) {
    if (Date.now() >= deadline) {
      const holder = readFileSync(path, "utf8").trim();
      closeSync(fd);
      throw new LockError(`${path} is held${holder ? ` by ${holder}` : ""}; gave up after ${Math.round(options.timeoutMs / 1000)} s`);
    }
    await Bun.sleep(50);
  }
  ftruncateSync(fd, 0);
  writeSync(fd, `pid ${process.pid} (${options.purpose})\n`);
  let held = true;
  return {
    release() {
      if (!held) return;
      held = false;
      ftruncateSync(fd, 0);
      closeSync(fd); // closing the descriptor drops the lock
    },
  };
}

/** Runs `work` holding the lock. */
export async function withTargetLock<T>(path: string, options: { timeoutMs: number; purpose: string }, work: () => Promise<T>): Promise<T> {
  const lock = await acquireTargetLock(path, options);
  try {
    return await work();
  } finally {
    lock.release();
  }
}
