import { HttpError } from "../http/http-error.ts";
import { gitlab } from "./gitlab.ts";
import type { Provider } from "./push-event.ts";

/** Order matters where forges send each other's headers: the most specific first. */
export const providers: readonly Provider[] = [gitlab];

export function detectProvider(headers: Headers): Provider {
  const provider = providers.find((p) => p.detect(headers));
  if (!provider) {
    throw new HttpError(400, "UNKNOWN_SENDER", "not a recognized webhook delivery (expected an X-Gitlab-Event header)");
  }
  return provider;
}
