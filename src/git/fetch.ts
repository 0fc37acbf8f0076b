import fs from "node:fs";
import git from "isomorphic-git";
import { GitError } from "./git-error.ts";
import { createHttpClient } from "./http-client.ts";
import { peelToCommit, type Repository } from "./repository.ts";
import { readTrackingRefs, restoreTrackingRefs } from "./tracking-refs.ts";

export interface FetchOptions {
  url: string;
  /** The full remote ref to fetch, e.g. refs/heads/main. */
  ref: string;
  /** The pushed commit the deploy is pinned to; undefined deploys the ref's current tip. */
  commit: string | undefined;
  authorization: string | undefined;
  timeoutSeconds: number;
}

export interface FetchResult {
  commit: string;
  bytesReceived: number;
}

/**
 * Fetches one ref over smart HTTP into the repository's object store. Local
 * HEAD is offered as a "have", so an incremental push only transfers what
 * changed since the deployed commit.
 */
export async function fetchRef(repo: Repository, options: FetchOptions): Promise<FetchResult> {
  let bytesReceived = 0;
  const http = createHttpClient({
    authorization: options.authorization,
    signal: AbortSignal.timeout(options.timeoutSeconds * 1000),
    onBytes: (n) => (bytesReceived += n),
  });
  let tip: string | null;
  const trackingRefs = await readTrackingRefs(repo);
  try {
    const result = await git.fetch({
      fs,
      http,
      gitdir: repo.gitdir,
      cache: repo.cache,
      url: options.url,
      ref: "HEAD",
      remoteRef: options.ref,
      singleBranch: true,
      tags: false,
    });
    tip = result.fetchHead;
  } catch (cause) {
    await restoreTrackingRefs(repo, trackingRefs);
    throw new GitError("FETCH_FAILED", `fetching ${options.ref} from ${redactUrl(options.url)} failed: ${describe(cause)}`, { cause });
  }
  if (!tip) throw new GitError("FETCH_FAILED", `${redactUrl(options.url)} has no ref ${options.ref}`);

  const wanted = options.commit ?? tip;
  // The ref may have moved on since the push; the pushed commit must still
  // have come along (it does unless history was rewritten since). An
  // annotated tag is peeled to its commit, which is what gets checked out.
  const commit = await peelToCommit(repo, wanted).catch(() => {
    throw new GitError("COMMIT_NOT_FOUND", `pushed commit ${wanted} is no longer reachable from ${options.ref} (now ${tip})`);
  });
  return { commit, bytesReceived };
}

function describe(cause: unknown): string {
  if (cause instanceof Error) {
    if (cause.name === "TimeoutError" || cause.name === "AbortError") return "timed out";
    const data = (cause as { data?: { statusCode?: number; statusMessage?: string } }).data;
    if (data?.statusCode) return `HTTP ${data.statusCode} ${data.statusMessage ?? ""}`.trim();
    // isomorphic-git wraps what went wrong (a damaged pack, mostly) in a long plea to report a bug.
    if ((cause as { code?: unknown }).code === "InternalError") return `the pack could not be read (${(cause as { data?: { message?: string } }).data?.message ?? "internal error"})`;
    return cause.message;
  }
  return String(cause);
}

/** URLs are validated to carry no credentials, but be safe in messages anyway. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = "";
    u.password = "";
    return u.toString();
  } catch {
    return "<invalid url>";
  }
}
