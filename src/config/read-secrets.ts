import { readFile } from "node:fs/promises";
import { ConfigError } from "./config-error.ts";
import { Secret, type Credentials } from "./secret.ts";

/** A secret file holds the secret alone; one trailing newline is not part of it. */
export async function readSecretFile(path: string, flag: string): Promise<Secret> {
  const text = await readText(path, flag);
  const value = text.replace(/\r?\n$/, "");
  if (!value) throw new ConfigError(`${flag}: ${path} is empty`);
  if (value.includes("\n")) throw new ConfigError(`${flag}: ${path} must hold the secret on a single line`);
  return new Secret(value);
}

/** `username:token` on the first line, as in a URL's user info (a GitLab deploy token, say). */
export async function readCredentialsFile(path: string, flag: string): Promise<Credentials> {
  const line = (await readText(path, flag)).split(/\r?\n/)[0] ?? "";
  const colon = line.indexOf(":");
  if (colon <= 0 || colon === line.length - 1) {
    throw new ConfigError(`${flag}: ${path} must hold 'username:token' on its first line`);
  }
  return { username: line.slice(0, colon), password: new Secret(line.slice(colon + 1)) };
}

async function readText(path: string, flag: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigError(`${flag}: cannot read ${path} (${code ?? "error"})`);
  }
}
