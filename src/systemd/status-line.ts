import type { TargetStatus } from "../deploy/deployer.ts";

/**
 * The one line `systemctl status hooksd` shows under "Status:": each target's
 * deployed commit, and what went wrong when its last deploy failed.
 */
export function formatStatusLine(targets: readonly TargetStatus[]): string {
  return targets
    .map((t) => {
      const commit = t.deployedCommit ? t.deployedCommit.slice(0, 12) : "nothing deployed";
      const last = t.lastDeploy;
      const note = last && last.state !== "succeeded" && last.state !== "superseded" ? ` (last deploy ${last.state})` : "";
      return `${t.name}: ${commit}${note}`;
    })
    .join(", ");
}
