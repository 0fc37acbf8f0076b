import { consolidatePacks } from "./consolidate-packs.ts";
import { GitError } from "./git-error.ts";
import { createGitTransport, type GitTransport } from "./http-client.ts";
import { peelToCommit, readHeadCommit, type Repository } from "./repository.ts";
import { readShallow, updateShallow } from "./shallow.ts";
import { storePack } from "./store-pack.ts";
import { discoverRefs, INFINITE_DEPTH, requestPack, type Advertisement } from "./upload-pack.ts";

export interface FetchOptions {
  url: string;
  /** The full remote ref to fetch, e.g. refs/heads/main. */
  ref: string;
  /** The pushed commit the deploy is pinned to; undefined deploys the ref's current tip. */
  commit: string | undefined;
  authorization: string | undefined;
  timeoutSeconds: number;
  /** Told how many objects the pack holds as soon as its header arrives. */
  onPackObjects?: ((count: number) => void) | undefined;
}

export interface FetchResult {
  commit: string;
  bytesReceived: number;
}

/**
 * Fetches one ref over smart HTTP into the repository's object store, as
 * `git fetch --depth 1` would: only the tip's snapshot, and with the deployed
 * commit offered as a "have" (and our shallow boundary declared), only the
 * objects that changed since. The pack streams to disk and is indexed there.
 */
export async function fetchRef(repo: Repository, options: FetchOptions): Promise<FetchResult> {
  let bytesReceived = 0;
  const transport = createGitTransport({
    authorization: options.authorization,
    signal: AbortSignal.timeout(options.timeoutSeconds * 1000),
    onBytes: (n) => (bytesReceived += n),
  });
  let tip: string | undefined;
  let commit: string;
  try {
    const ad = await discoverRefs(transport, options.url);
    tip = ad.refs.get(options.ref);
    if (tip) {
      commit = options.commit ?? tip;
      // Always one pack request, even with everything already here (a redeploy): the deploy then
      // still proves the remote serves this ref to us, and it costs one round trip and an empty pack.
      await fetchPack(repo, transport, options.url, ad, tip, 1, options.onPackObjects);
      // The ref moved on since the push: the pushed commit is further back, so fetch the rest of the history.
      if (!(await repo.objects.has(commit))) await fetchPack(repo, transport, options.url, ad, tip, INFINITE_DEPTH, options.onPackObjects);
    }
  } catch (cause) {
    throw new GitError("FETCH_FAILED", `fetching ${options.ref} from ${redactUrl(options.url)} failed: ${describe(cause)}`, { cause });
  }
  if (!tip) throw new GitError("FETCH_FAILED", `${redactUrl(options.url)} has no ref ${options.ref}`);

  // The ref may have moved on since the push; the pushed commit must still
  // have come along (it does unless history was rewritten since). An
  // annotated tag is peeled to its commit, which is what gets checked out.
  const wanted = commit!;
  const peeled = await peelToCommit(repo, wanted).catch(() => {
    throw new GitError("COMMIT_NOT_FOUND", `pushed commit ${wanted} is no longer reachable from ${options.ref} (now ${tip})`);
  });
  return { commit: peeled, bytesReceived };
}

async function fetchPack(repo: Repository, transport: GitTransport, url: string, ad: Advertisement, tip: string, depth: number, onPackObjects?: (count: number) => void): Promise<void> {
  const known = [await readHeadCommit(repo), tip].filter((oid): oid is string => oid !== undefined);
  const haves = [];
  for (const oid of new Set(known)) if (await repo.objects.has(oid)) haves.push(oid);
  const response = await requestPack(transport, url, ad, {
    wants: [tip],
    haves,
    shallow: await readShallow(repo.gitdir),
    depth,
  });
  await storePack(repo.gitdir, response.pack, repo.objects, onPackObjects);
  // After the objects, before any ref: a crash in between leaves unreferenced objects, never a ref to missing ones.
  await updateShallow(repo.gitdir, response.shallow, response.unshallow);
  await consolidatePacks(repo.gitdir, repo.objects);
}

function describe(cause: unknown): string {
  if (cause instanceof Error) {
    if (cause.name === "TimeoutError" || cause.name === "AbortError") return "timed out";
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
