/**
 * A web server's view of an atomic target during the crash trials, run as its
 * own process so that it keeps reading while daemons are killed and
 * restarted: DIR/current must always resolve, to a sealed release, with the
 * site's always-present file in it. Prints a JSON summary once DIR/../stop-reader exists.
 *
 * Usage: bun current-reader.ts DIR FILE STOPFILE
 */
import { existsSync, readlinkSync, statSync } from "node:fs";
import { join } from "node:path";

const [dir, file, stopFile] = process.argv.slice(2) as [string, string, string];
const problems: string[] = [];
const releases = new Set<string>();
let reads = 0;
const problem = (text: string) => problems.length < 20 && problems.push(`${new Date().toISOString()} ${text}`);

while (!existsSync(stopFile)) {
  reads++;
  try {
    const link = readlinkSync(join(dir, "current"));
    releases.add(link);
    const id = link.replace(/^releases\//, "");
    // The marker is written once the release is complete; `current` never names an unsealed one.
    if (!existsSync(join(dir, ".hooksd/releases", `${id}.json`))) problem(`current -> ${link}, which has no marker`);
  } catch (err) {
    problem(`readlink current: ${(err as Error).message}`);
  }
  try {
    if (!statSync(join(dir, "current", file)).isFile()) problem(`current/${file} is not a file`);
  } catch (err) {
    problem(`current/${file}: ${(err as Error).message}`);
  }
  Bun.sleepSync(1);
}
process.stdout.write(JSON.stringify({ reads, releasesSeen: releases.size, problems }));
