import { createGitHubStyleProvider } from "./github.ts";

/**
 * Gitea and Forgejo sign with a bare hex HMAC-SHA256. They also send GitHub-
 * and Gogs-style headers for compatibility, so they must be detected before
 * those (see the order in index.ts). Forgejo additionally sends its own
 * X-Forgejo-* set, which is what tells it apart from Gitea.
 */
export const forgejo = createGitHubStyleProvider({
  name: "forgejo",
  label: "Forgejo",
  eventHeader: "x-forgejo-event",
  deliveryHeader: "x-forgejo-delivery",
  signatureHeader: "X-Forgejo-Signature",
  signaturePrefix: "",
});

export const gitea = createGitHubStyleProvider({
  name: "gitea",
  label: "Gitea",
  eventHeader: "x-gitea-event",
  deliveryHeader: "x-gitea-delivery",
  signatureHeader: "X-Gitea-Signature",
  signaturePrefix: "",
});
