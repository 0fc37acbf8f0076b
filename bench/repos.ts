/**
 * Deterministic benchmark repositories: every byte comes from a seeded PRNG
 * and every commit has fixed dates, so the same seed gives the same commit ids
 * on every machine. Written with `git fast-import`, which is much faster than
 * writing 50,000 files and running `git add`.
 */
import { existsSync } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { gitEnv, run } from "./measure.ts";

import { prng } from "../test/helpers/prng.ts";

const WORDS = "the a site page deploy static html css header footer menu about contact blog post index news team price plan docs guide hello world lorem ipsum dolor amet build release update image link card grid list item title main".split(" ");

/** A small text file (200 B–2 KB) that compresses like real site content. */
function textFile(next: () => number, label: string): string {
  const words = 30 + (next() % 300);
  const parts = [`<!-- ${label} -->\n<p>`];
  for (let i = 0; i < words; i++) parts.push(WORDS[next() % WORDS.length]!, i % 16 === 15 ? "\n" : " ");
  parts.push("</p>\n");
  return parts.join("");
}

/** `n` random bytes: no compression or delta can shrink them. */
function randomBytes(next: () => number, n: number): Uint8Array {
  const words = new Uint32Array(Math.ceil(n / 4));
  for (let i = 0; i < words.length; i++) words[i] = next();
  return new Uint8Array(words.buffer, 0, n);
}

/** Spreads files over two directory levels, at most 100 files per directory. */
export function filePath(i: number): string {
  return `d${Math.floor(i / 10_000)}/d${Math.floor(i / 100) % 100}/f${i}.html`;
}

interface FileChange {
  path: string;
  content: Uint8Array | string;
}

const encoder = new TextEncoder();

/** Feeds one commit to `git fast-import` in a bare repository. */
async function fastImport(bare: string, message: string, time: number, files: Iterable<FileChange>, parent: boolean): Promise<void> {
  const proc = Bun.spawn(["git", "fast-import", "--quiet", "--done"], { cwd: bare, env: gitEnv(), stdin: "pipe", stdout: "ignore", stderr: "pipe" });
  const write = (chunk: string | Uint8Array) => proc.stdin.write(typeof chunk === "string" ? encoder.encode(chunk) : chunk);
  const msg = encoder.encode(message);
  write(`commit refs/heads/main\ncommitter Bench <bench@example.com> ${time} +0000\ndata ${msg.length}\n`);
  write(msg);
  write("\n");
  if (parent) write("from refs/heads/main^0\n");
  for (const { path, content } of files) {
    const bytes = typeof content === "string" ? encoder.encode(content) : content;
    write(`M 100644 inline ${path}\ndata ${bytes.length}\n`);
    write(bytes);
    write("\n");
    await proc.stdin.flush();
  }
  write("done\n");
  await proc.stdin.end();
  const [code, stderr] = await Promise.all([proc.exited, new Response(proc.stderr).text()]);
  if (code !== 0) throw new Error(`git fast-import failed (${code}): ${stderr}`);
}

export interface BenchRepo {
  name: string;
  bare: string;
  files: number;
}

/**
 * A bare repository `name` under `root` holding one commit of `files` small
 * text files, repacked as a server would have it. Reused when already there.
 */
export async function smallFilesRepo(root: string, files: number): Promise<BenchRepo> {
  const next = prng(files);
  function* all(): Generator<FileChange> {
    for (let i = 0; i < files; i++) yield { path: filePath(i), content: textFile(next, `file ${i}`) };
  }
  return generatedRepo(root, `files-${files}.git`, files, `${files} files\n`, all);
}

/** Creates the bare repository with one fast-imported commit and repacks it, unless a previous run already did. */
async function generatedRepo(root: string, name: string, files: number, message: string, content: () => Iterable<FileChange>): Promise<BenchRepo> {
  const bare = join(root, name);
  const ready = join(bare, "bench-ready");
  if (!existsSync(ready)) {
    await rm(bare, { recursive: true, force: true });
    await mkdir(bare, { recursive: true });
    await run(["git", "init", "--quiet", "--bare", "--initial-branch=main"], { cwd: bare });
    await fastImport(bare, message, 1_700_000_000, content(), false);
    await run(["git", "repack", "-a", "-d", "-q"], { cwd: bare });
    await Bun.write(ready, "");
  }
  return { name, bare, files };
}

/** About `megabytes` MB of incompressible content in 1 MB files: the memory case. */
export async function bigPackRepo(root: string, megabytes: number): Promise<BenchRepo> {
  const next = prng(megabytes * 7919);
  function* all(): Generator<FileChange> {
    for (let i = 0; i < megabytes; i++) yield { path: `media/blob${i}.bin`, content: randomBytes(next, 1024 * 1024) };
  }
  return generatedRepo(root, `big-${megabytes}mb.git`, megabytes, `${megabytes} MB of random media\n`, all);
}

/**
 * Commits a change of `count` files on top of main: each step picks its own
 * files and content from `seed`, so every run deploys a fresh, equal-sized change.
 */
export async function commitChange(repo: BenchRepo, count: number, seed: number): Promise<string> {
  const next = prng(seed * 1_000_003 + count);
  const chosen = new Set<number>();
  while (chosen.size < Math.min(count, repo.files)) chosen.add(next() % repo.files);
  const changes = [...chosen].map((i) => ({ path: filePath(i), content: textFile(next, `file ${i} v${seed}`) }));
  await fastImport(repo.bare, `change ${count} files (${seed})\n`, 1_700_000_000 + seed, changes, true);
  return (await run(["git", "rev-parse", "refs/heads/main"], { cwd: repo.bare })).stdout.trim();
}
