import type { Target } from "./schema.ts";
import type { Credentials, Secret } from "./secret.ts";

/** A validated target plus the secrets read for it, which never pass through a schema's output or a log. */
export interface LoadedTarget extends Target {
  /** Any of these may sign a delivery (several while a secret is rotated). Empty only when unauthenticated deliveries are allowed. */
  secrets: Secret[];
  /** GitLab signing tokens for the `webhook-signature` form. */
  signingTokens: Secret[];
  credentials: Credentials | undefined;
}
