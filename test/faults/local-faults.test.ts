/**
 * The local disk misbehaves: it fills up half-way through a checkout, it is
 * mounted read-only, or DIR is deleted under the running daemon. Each time the
 * deploy fails with a stable code, the site stays exactly its old tree (no
 * half-written or temporary file left behind), the daemon keeps answering,
 * and once the disk is fixed the next push deploys. The file systems are real
 * tmpfs mounts made by the test (we run as root); where mounting is not
 * permitted those tests are skipped with the reason printed.
 */
import { afterAll, afterEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { commitFiles, expectTreeEquals, makeTempDir, push, removeTempDirs } from "../helpers/git-fixture.ts";
import { createSite, createTarget } from "../http/harness.ts";
import { expectConsistentStore, faultHarness } from "./support.ts";

setDefaultTimeout(90_000);

const mounts: string[] = [];
afterEach(async () => {
  for (const dir of mounts.splice(0).reverse()) await run(["umount", "-l", dir]);
});
afterAll(removeTempDirs);

async function run(cmd: string[]): Promise<{ ok: boolean; stderr: string }> {
  const proc = Bun.spawn(cmd, { stdout: "ignore", stderr: "pipe" });
  const [stderr, code] = await Promise.all([proc.stderr.text(), proc.exited]);
  return { ok: code === 0, stderr: stderr.trim() };
}

/** Mounts a fresh tmpfs of `size` (e.g. "2m") on a new temp directory. */
async function mountTmpfs(size: string): Promise<string> {
  const dir = await makeTempDir("tmpfs");
  const { ok, stderr } = await run(["mount", "-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir]);
  if (!ok) throw new Error(`mount -t tmpfs failed: ${stderr}`);
  mounts.push(dir);
  return dir;
}

async function remount(dir: string, options: string): Promise<void> {
  const { ok, stderr } = await run(["mount", "-o", `remount,${options}`, dir]);
  if (!ok) throw new Error(`mount -o remount,${options} ${dir} failed: ${stderr}`);
}

const cannotMount = await (async () => {
  const probe = await makeTempDir("tmpfs-probe");
  const { ok, stderr } = await run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", probe]);
  if (!ok) return stderr || "mount exited non-zero";
  await run(["umount", probe]);
  return undefined;
})();
if (cannotMount) console.log(`local-fault tests on tmpfs skipped: mounting is not permitted here (${cannotMount})`);

/** Highly compressible (a tiny pack) but large once written out. */
function bigFile(i: number, kb: number): string {
  return `file ${i}\n` + "a".repeat(kb * 1024);
}

describe.skipIf(cannotMount !== undefined)("local faults on real mounts", () => {
  test("the disk fills up half-way through a checkout: DISK_FULL, the old files intact, no temporary file left, and the next push deploys once there is room", async () => {
    const site = await createSite("disk-full");
    const disk = await mountTmpfs("3m");
    const target = await createTarget(site, {}, disk);
    const h = faultHarness(target, { initialDelayMs: 10, maxDelayMs: 10 });

    // index.html changes, css/site.css goes, and 8 MB of new files cannot fit in what is left of 3 MB.
    const files: Record<string, string | null> = { "index.html": "<h1>too big</h1>\n", "css/site.css": null };
    for (let i = 0; i < 16; i++) files[`big/${i}.txt`] = bigFile(i, 512);
    const tooBig = await commitFiles(site.work, files, "too big");
    await push(site.work);

    const record = await h.deliver(tooBig);
    expect(record).toMatchObject({ state: "failed", code: "DISK_FULL", attempts: undefined });
    expect(record.error).toContain("ENOSPC");
    expect(record.error).not.toContain("partly updated");
    expect(await h.status()).toMatchObject({ deployedCommit: site.base, lastDeploy: { code: "DISK_FULL" } });
    // Byte for byte the old tree, and nothing else: no new file, no .hooksd-tmp-*.
    await expectTreeEquals(target.repo, site.bare, site.base);
    await expectConsistentStore(target.repo);
    expect((await h.app.request("/healthz")).status).toBe(200);

    await remount(disk, "size=64m");
    const fits = await commitFiles(site.work, { "index.html": "<h1>room again</h1>\n" }, "room again");
    await push(site.work);
    expect(await h.deliver(fits)).toMatchObject({ state: "succeeded", commit: fits });
    await expectTreeEquals(target.repo, site.bare, fits);
    await expectConsistentStore(target.repo);
    await site.server.stop();
  });

  test("a deploy dir on a read-only mount: READ_ONLY, not retried, nothing changed, and the next push deploys once it is writable", async () => {
    const site = await createSite("read-only");
    const disk = await mountTmpfs("64m");
    const target = await createTarget(site, {}, disk);
    const h = faultHarness(target, { initialDelayMs: 10, maxDelayMs: 10 });
    await remount(disk, "ro");

    const record = await h.deliver(site.next);
    expect(record).toMatchObject({ state: "failed", code: "READ_ONLY", attempts: undefined });
    expect(record.error).toContain("EROFS");
    await expectTreeEquals(target.repo, site.bare, site.base);
    expect((await h.app.request("/healthz")).status).toBe(200);

    await remount(disk, "rw");
    await expectConsistentStore(target.repo);
    const later = await commitFiles(site.work, { "index.html": "<h1>writable again</h1>\n" }, "writable");
    await push(site.work);
    expect(await h.deliver(later)).toMatchObject({ state: "succeeded", commit: later });
    await expectTreeEquals(target.repo, site.bare, later);
    await site.server.stop();
  });
});

test("DIR deleted under the running deployer: the deploy fails with a clear error and DIR is not silently recreated", async () => {
  const site = await createSite("dir-missing");
  const parent = await makeTempDir("dir-missing-parent");
  const target = await createTarget(site, {}, parent);
  const h = faultHarness(target, { initialDelayMs: 10, maxDelayMs: 10 });
  // The deployer notes the checkout at start; give that look a moment.
  await h.status();
  await Bun.sleep(50);
  await rm(target.repo, { recursive: true, force: true });

  const record = await h.deliver(site.next);
  expect(record).toMatchObject({ state: "failed", code: "NOT_A_CHECKOUT", attempts: undefined });
  expect(record.error).toContain("is gone");
  expect(await Bun.file(join(target.repo, ".git/HEAD")).exists()).toBe(false);
  expect(await h.status()).toMatchObject({ lastDeploy: { state: "failed", code: "NOT_A_CHECKOUT" } });
  expect((await h.app.request("/healthz")).status).toBe(200);
  await site.server.stop();
});
