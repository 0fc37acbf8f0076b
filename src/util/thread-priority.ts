import { readdirSync, readFileSync } from "node:fs";
import { FFIType } from "bun:ffi";
import { dlopenLibc } from "./libc.ts";

/** Nice value of the threads doing deploy work (0 is the HTTP thread's, 19 the lowest). */
export const BACKGROUND_NICE = 10;

let opened: ReturnType<typeof openLibc> | undefined;

/** Opened once per thread: lowerPoolPriority runs with every deploy. */
function libc() {
  return (opened ??= openLibc());
}

function openLibc() {
  return dlopenLibc({
    gettid: { args: [], returns: FFIType.i32 },
    setpriority: { args: [FFIType.i32, FFIType.u32, FFIType.i32], returns: FFIType.i32 },
  });
}

const PRIO_PROCESS = 0;

/**
 * Raises the calling thread's nice value (Linux: setpriority on its thread
 * id touches that thread only). Raising it needs no privilege. Best effort:
 * false where the C library or ffi is unavailable, and nothing changes.
 */
export function lowerThreadPriority(nice: number): boolean {
  try {
    const c = libc();
    return c.setpriority(PRIO_PROCESS, c.gettid(), nice) === 0;
  } catch {
    return false;
  }
}

/**
 * Raises the nice value of Bun's thread pool ("Bun Pool N"), where fs.promises
 * calls and file reads and writes run whichever thread asked. Those threads
 * start at the process's nice value; left there, a deploy's file I/O would
 * compete with the HTTP thread at full priority (measured: the pool did about
 * as much CPU work as the deploy thread in a 100 MB cold deploy). The HTTP
 * thread's own request path does no pool work. Pool threads start lazily, so
 * this is called again as each deploy starts. Returns how many threads it
 * changed; best effort like lowerThreadPriority (0 off Linux).
 */
export function lowerPoolPriority(nice: number): number {
  let changed = 0;
  try {
    const c = libc();
    for (const tid of readdirSync("/proc/self/task")) {
      const comm = readFileSync(`/proc/self/task/${tid}/comm`, "utf8");
      if (comm.startsWith("Bun Pool") && c.setpriority(PRIO_PROCESS, Number(tid), nice) === 0) changed++;
    }
  } catch {
    // No /proc, no ffi, or a thread that ended while listed: the rest keep their priority.
  }
  return changed;
}
