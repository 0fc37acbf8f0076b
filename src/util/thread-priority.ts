import { FFIType } from "bun:ffi";
import { dlopenLibc } from "./libc.ts";

/**
 * Raises the calling thread's nice value (Linux: setpriority on its thread
 * id touches that thread only). Raising it needs no privilege. Best effort:
 * false where the C library or ffi is unavailable, and nothing changes.
 */
export function lowerThreadPriority(nice: number): boolean {
  try {
    const libc = dlopenLibc({
      gettid: { args: [], returns: FFIType.i32 },
      setpriority: { args: [FFIType.i32, FFIType.u32, FFIType.i32], returns: FFIType.i32 },
    });
    const PRIO_PROCESS = 0;
    return libc.setpriority(PRIO_PROCESS, libc.gettid(), nice) === 0;
  } catch {
    return false;
  }
}
