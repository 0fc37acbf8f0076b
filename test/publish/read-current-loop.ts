/**
 * A reader for the atomic-switch test, run as its own process so that it
 * reads while the deploys run: resolves DIR/current in a tight loop and
 * checks that every release it reaches is complete and not mixed. Prints a
 * JSON summary when DIR/stop appears.
 */
import { existsSync, readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";

const dir = process.argv[2]!;
const files = process.argv.slice(3);
const summary = { reads: 0, releasesSeen: new Set<string>(), versionsSeen: new Set<string>(), problems: [] as string[] };
const problem = (text: string) => summary.problems.length < 20 && summary.problems.push(text);

while (!existsSync(join(dir, "stop"))) {
  // Once `current` exists it must never be missing.
  let link: string;
  try {
    link = readlinkSync(join(dir, "current"));
  } catch (err) {
    if (summary.reads > 0) problem(`readlink current: ${(err as Error).message}`);
    continue;
  }
  summary.reads++;
  summary.releasesSeen.add(link);
  // Every file of the release the link named carries one version.
  const versions = new Set<string>();
  for (const file of files) {
    try {
      versions.add(readFileSync(join(dir, link, file), "utf8"));
    } catch (err) {
      problem(`${link}/${file}: ${(err as Error).message}`);
    }
  }
  if (versions.size !== 1) problem(`${link} is mixed: ${[...versions].join(" | ")}`);
  // And a path through `current` itself always resolves to a file.
  try {
    summary.versionsSeen.add(readFileSync(join(dir, "current", files[0]!), "utf8"));
  } catch (err) {
    problem(`current/${files[0]}: ${(err as Error).message}`);
  }
}
process.stdout.write(JSON.stringify({ reads: summary.reads, releasesSeen: summary.releasesSeen.size, versionsSeen: [...summary.versionsSeen], problems: summary.problems }));
