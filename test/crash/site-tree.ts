/**
 * The crash harness's site: about 300 files, and per push a seeded change of
 * a few hundred paths — edits, deletions, additions, renames, exec-bit flips,
 * a retargeted symlink and a path that swaps between file and directory — so
 * that every deploy writes, removes and replaces things in every phase.
 */
import type { FileSpec } from "../helpers/git-fixture.ts";
import { prng } from "../helpers/prng.ts";

/** Seeded PRNG (mulberry32) as floats in [0, 1): the same seed gives the same trials. */
export function seededRandom(seed: number): () => number {
  const next = prng(seed);
  return () => next() / 4294967296;
}

export interface SiteTree {
  /** Files of the first commit. */
  initial(): Record<string, FileSpec>;
  /** The changes of the next commit (null deletes), applied to the model as well. */
  next(): Record<string, FileSpec>;
}

/** A file every version holds: the concurrent reader resolves it through `current`. */
export const ALWAYS_PRESENT = "index.html";

export function createSiteTree(random: () => number, size = 300): SiteTree {
  const files = new Map<string, Exclude<FileSpec, null>>();
  let counter = 0;
  let version = 0;
  let swapIsDir = false;
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const int = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1));
  const content = (path: string) => `${path} v${version} ${Math.floor(random() * 1e9).toString(36)}\n`.repeat(int(2, 40));
  const newPath = () => `d${int(0, 9)}/s${int(0, 3)}/f${counter++}.${pick(["html", "css", "txt", "js"])}`;
  const regular = () => [...files.keys()].filter((p) => p !== ALWAYS_PRESENT && !p.startsWith("swap") && !p.startsWith("links/"));

  function swapFiles(): Record<string, FileSpec> {
    swapIsDir = !swapIsDir;
    for (const p of [...files.keys()]) if (p === "swap" || p.startsWith("swap/")) files.delete(p);
    const added: Record<string, FileSpec> = swapIsDir
      ? { swap: null, "swap/a.txt": content("swap/a.txt"), "swap/inner/b.txt": content("swap/inner/b.txt") }
      : { "swap/a.txt": null, "swap/inner/b.txt": null, swap: content("swap") };
    for (const [p, spec] of Object.entries(added)) if (spec !== null) files.set(p, spec);
    return added;
  }

  return {
    initial() {
      files.set(ALWAYS_PRESENT, content(ALWAYS_PRESENT));
      files.set("swap", content("swap"));
      for (let i = 0; i < 3; i++) files.set(`links/l${i}`, { symlink: `../${ALWAYS_PRESENT}` });
      for (let i = 0; i < 10; i++) files.set(`bin/s${i}.sh`, { content: `#!/bin/sh\necho ${i}\n`, mode: i % 2 ? 0o755 : 0o644 });
      while (files.size < size) files.set(newPath(), content("x"));
      return Object.fromEntries(files);
    },
    next() {
      version++;
      const changes: Record<string, FileSpec> = {};
      const set = (p: string, spec: FileSpec) => {
        changes[p] = spec;
        if (spec === null) files.delete(p);
        else files.set(p, spec);
      };
      set(ALWAYS_PRESENT, content(ALWAYS_PRESENT));
      const paths = regular();
      // Disjoint picks: a path is edited, deleted or renamed, never two of them.
      for (let i = paths.length - 1; i > 0; i--) {
        const j = Math.floor(random() * (i + 1));
        [paths[i], paths[j]] = [paths[j]!, paths[i]!];
      }
      const edits = int(120, 200);
      const deletions = int(10, 30);
      const renames = int(10, 30);
      let at = 0;
      for (const p of paths.slice(at, (at += edits))) {
        if (p.startsWith("bin/")) set(p, { content: content(p), mode: random() < 0.5 ? 0o755 : 0o644 });
        else set(p, content(p));
      }
      for (const p of paths.slice(at, (at += deletions))) set(p, null);
      for (const p of paths.slice(at, (at += renames))) {
        if (p.startsWith("bin/")) continue;
        const spec = files.get(p)!;
        set(p, null);
        set(newPath(), spec);
      }
      // Additions keep the site near its size despite the deletions.
      while (files.size < size) set(newPath(), content("new"));
      set(`links/l${int(0, 2)}`, { symlink: `../${pick(regular())}` });
      Object.assign(changes, swapFiles());
      return changes;
    },
  };
}
