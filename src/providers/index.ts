import { HttpError } from "../http/http-error.ts";
import { bitbucketCloud } from "./bitbucket-cloud.ts";
import { bitbucketServer } from "./bitbucket-server.ts";
import { forgejo, gitea } from "./gitea.ts";
import { github } from "./github.ts";
import { gitlab } from "./gitlab.ts";
import { gogs } from "./gogs.ts";
import type { Provider } from "./push-event.ts";

/**
 * Order matters where forges send each other's headers, so the most specific
 * comes first: Forgejo sends Gitea's, Gogs' and GitHub's headers too, Gitea
 * sends Gogs' and GitHub's, and Bitbucket Cloud and Data Center share X-Event-Key.
 */
export const providers: readonly Provider[] = [forgejo, gitea, gogs, github, gitlab, bitbucketCloud, bitbucketServer];

export function detectProvider(headers: Headers): Provider {
  const provider = providers.find((p) => p.detect(headers));
  if (!provider) {
    throw new HttpError(
      400,
      "UNKNOWN_SENDER",
      "not a recognized webhook delivery (expected X-GitHub-Event, X-Gitlab-Event, X-Gitea-Event, X-Forgejo-Event, X-Gogs-Event or X-Event-Key)",
    );
  }
  return provider;
}
