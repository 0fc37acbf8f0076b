import { rename, rm, symlink, unlink } from "node:fs/promises";
import { join } from "node:path";
import type { ReleaseLayout } from "./release-layout.ts";

/**
 * Points DIR/current at releases/<id> (or removes it, for undefined).
 *
 * The new link is made beside `current` under a temporary name and renamed
 * over it. rename(2) replaces the old link in one step, so a reader resolving
 * `current` at any instant finds either the old release or the new one, never
 * a missing link. If the process dies before the rename, `current` is
 * untouched and only a stray `.current-*` link is left (pruned by the next
 * publish); after the rename the switch is done. The link is relative so that
 * DIR can be moved or bind-mounted elsewhere.
 */
export async function switchCurrent(layout: ReleaseLayout, id: string | undefined): Promise<void> {
  if (id === undefined) {
    await unlink(layout.current).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== "ENOENT") throw err;
    });
    return;
  }
  const temp = join(layout.dir, `.current-${process.pid}-${Math.random().toString(36).slice(2)}`);
  await symlink(`releases/${id}`, temp);
  try {
    await rename(temp, layout.current);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
}
