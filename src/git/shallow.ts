import { readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";

/** The commits whose parents this repository lacks (.git/shallow), as git records them. */
export async function readShallow(gitdir: string): Promise<string[]> {
  const text = await readFile(join(gitdir, "shallow"), "utf8").catch(() => "");
  return text.split("\n").filter((line) => /^[0-9a-f]{40}$/.test(line));
}

/** Applies a fetch's shallow update; written aside and renamed, so a reader never sees half a file. */
export async function updateShallow(gitdir: string, add: string[], remove: string[]): Promise<void> {
  if (add.length === 0 && remove.length === 0) return;
  const gone = new Set(remove);
  const next = [...new Set([...(await readShallow(gitdir)), ...add])].filter((oid) => !gone.has(oid)).sort();
  const path = join(gitdir, "shallow");
  if (next.length === 0) {
    await rm(path, { force: true });
    return;
  }
  await writeFile(`${path}.hooksd-tmp`, next.map((oid) => `${oid}\n`).join(""));
  await rename(`${path}.hooksd-tmp`, path);
}
