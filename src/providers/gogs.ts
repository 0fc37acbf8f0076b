import { createGitHubStyleProvider } from "./github.ts";

/** Gogs signs with a bare hex HMAC-SHA256 in X-Gogs-Signature. */
export const gogs = createGitHubStyleProvider({
  name: "gogs",
  label: "Gogs",
  eventHeader: "x-gogs-event",
  deliveryHeader: "x-gogs-delivery",
  signatureHeader: "X-Gogs-Signature",
  signaturePrefix: "",
});
