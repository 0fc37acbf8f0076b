/**
 * Builds signed deliveries the way each forge sends them, from the real
 * payloads in ../shared/fixtures/webhooks (loaded from there, never copied).
 */
import { createHmac, randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";

export const FIXTURES_DIR = join(import.meta.dir, "../../../shared/fixtures/webhooks");

export async function fixtureBytes(name: string): Promise<Uint8Array> {
  return new Uint8Array(await readFile(join(FIXTURES_DIR, name)));
}

// biome-ignore lint: fixture JSON is whatever the forge sent
export async function fixtureJson(name: string): Promise<any> {
  return JSON.parse(new TextDecoder().decode(await fixtureBytes(name)));
}

export type Forge = "github" | "gitea" | "forgejo" | "gogs" | "gitlab" | "gitlab-signed" | "bitbucket-cloud" | "bitbucket-server";

export interface DeliveryOptions {
  /** Signs with this secret; without it, no signature header is sent. */
  secret?: string | undefined;
  /** The delivery id header's value; a fresh UUID unless given. */
  id?: string;
  /** The event header's value; the forge's push event unless given. */
  event?: string;
  /** For gitlab-signed: seconds since the epoch (default now). */
  timestamp?: number;
}

export function hexHmac(secret: string | Uint8Array, body: string | Uint8Array): string {
  return createHmac("sha256", secret).update(body).digest("hex");
}

/** The headers `forge` sends with `body`, signed with `options.secret`. */
export function forgeHeaders(forge: Forge, body: Uint8Array, options: DeliveryOptions = {}): Record<string, string> {
  const { secret } = options;
  const id = options.id ?? randomUUID();
  const sig = secret === undefined ? undefined : hexHmac(secret, body);
  const json = { "Content-Type": "application/json" };
  const signed = (name: string, value: string | undefined): Record<string, string> => (value === undefined ? {} : { [name]: value });
  switch (forge) {
    case "github":
      return {
        ...json,
        "User-Agent": "GitHub-Hookshot/044aadd",
        "X-GitHub-Event": options.event ?? "push",
        "X-GitHub-Delivery": id,
        "X-GitHub-Hook-ID": "109948940",
        ...signed("X-Hub-Signature-256", sig && `sha256=${sig}`),
      };
    case "gogs":
      return { ...json, "X-Gogs-Event": options.event ?? "push", "X-Gogs-Delivery": id, ...signed("X-Gogs-Signature", sig) };
    case "gitea":
    case "forgejo": {
      // Everything Gitea sends (services/webhook/deliver.go), GitHub- and Gogs-style headers included.
      const event = options.event ?? "push";
      const headers: Record<string, string> = {
        ...json,
        "X-GitHub-Delivery": id,
        "X-GitHub-Event": event,
        "X-GitHub-Event-Type": event,
        "X-Gogs-Delivery": id,
        "X-Gogs-Event": event,
        "X-Gogs-Event-Type": event,
        "X-Gogs-Signature": sig ?? "",
        "X-Gitea-Delivery": id,
        "X-Gitea-Event": event,
        "X-Gitea-Event-Type": event,
        ...signed("X-Gitea-Signature", sig),
        ...signed("X-Hub-Signature-256", sig && `sha256=${sig}`),
      };
      if (forge === "forgejo") {
        Object.assign(headers, { "X-Forgejo-Delivery": id, "X-Forgejo-Event": event, "X-Forgejo-Event-Type": event }, signed("X-Forgejo-Signature", sig));
      }
      return headers;
    }
    case "gitlab":
      return {
        ...json,
        "User-Agent": "GitLab/17.1.0-pre",
        "X-Gitlab-Event": options.event ?? "Push Hook",
        "Idempotency-Key": id,
        "X-Gitlab-Event-UUID": randomUUID(),
        ...signed("X-Gitlab-Token", secret),
      };
    case "gitlab-signed": {
      const timestamp = String(options.timestamp ?? Math.floor(Date.now() / 1000));
      const headers: Record<string, string> = { ...json, "X-Gitlab-Event": options.event ?? "Push Hook", "Idempotency-Key": id, "webhook-id": id, "webhook-timestamp": timestamp };
      if (secret !== undefined) headers["webhook-signature"] = `v1,${gitlabSignature(secret, id, timestamp, body)}`;
      return headers;
    }
    case "bitbucket-cloud":
      return {
        ...json,
        "User-Agent": "Bitbucket-Webhooks/2.0",
        "X-Event-Key": options.event ?? "repo:push",
        "X-Hook-UUID": randomUUID(),
        "X-Request-UUID": id,
        "X-Attempt-Number": "1",
        ...signed("X-Hub-Signature", sig && `sha256=${sig}`),
      };
    case "bitbucket-server":
      return {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": "Atlassian HttpClient 4.2.0 / Bitbucket-9.5.2 (9005002) / Default",
        "X-Event-Key": options.event ?? "repo:refs_changed",
        "X-Request-Id": id,
        ...signed("X-Hub-Signature", sig && `sha256=${sig}`),
      };
  }
}

/** Standard Webhooks' signature as GitLab sends it; a `whsec_` token's key is the base64 after the prefix. */
export function gitlabSignature(token: string, id: string, timestamp: string, body: Uint8Array): string {
  const key = token.startsWith("whsec_") ? Buffer.from(token.slice(6), "base64") : Buffer.from(token);
  return createHmac("sha256", key).update(`${id}.${timestamp}.`).update(body).digest("base64");
}
