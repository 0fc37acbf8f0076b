import { readdir, rm } from "node:fs/promises";
import { dirname, join } from "node:path";

/** Files are written as `.hooksd-tmp-<pid>-<random>` beside their final name, then renamed. */
export const TEMP_PREFIX = ".hooksd-tmp-";

export function tempName(full: string): string {
  // Sliced, not dirname()d and join()ed: called once per file written, and `full` is already normal.
  return `${full.slice(0, full.lastIndexOf("/"))}/${TEMP_PREFIX}${process.pid}-${Math.random().toString(36).slice(2)}`;
}

/**
 * A process killed between writing a temp file and renaming it leaves the
 * temp file behind. The redo of that deploy writes the same paths, so the
 * directories it is about to write into are exactly where such leftovers can
 * be: they are removed there, unless the process that wrote them still runs.
 */
export async function removeStaleTemps(dir: string, paths: string[]): Promise<void> {
  const dirs = new Set(paths.map((p) => dirname(join(dir, p))));
  for (const d of dirs) {
    const names = await readdir(d).catch(() => [] as string[]);
    for (const name of names) {
      const pid = Number(/^\.hooksd-tmp-(\d+)-/.exec(name)?.[1]);
      if (pid && pid !== process.pid && !isRunning(pid)) await rm(join(d, name), { force: true });
    }
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
