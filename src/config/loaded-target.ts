import type { Target } from "./schema.ts";
import type { Credentials, Secret } from "./secret.ts";

/** A validated target plus the secrets read for it, which never pass through a schema's output or a log. */
export interface LoadedTarget extends Target {
  secret: Secret | undefined;
  credentials: Credentials | undefined;
}
