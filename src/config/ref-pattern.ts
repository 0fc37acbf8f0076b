import * as v from "valibot";
import { checkRefFormat } from "../git/ref-format.ts";

/**
 * Which pushed refs a target deploys: a full ref name, or a pattern in which
 * `*` stands for any sequence of characters ("refs/heads/*" follows every branch).
 */
export const RefPattern = v.pipe(
  v.string(),
  v.check((p) => p.startsWith("refs/heads/") || p.startsWith("refs/tags/"), "must start with refs/heads/ or refs/tags/"),
  v.check((p) => checkRefFormat(p.replaceAll("*", "x")) === undefined, "must be a valid ref name or pattern"),
);

export function matchRefPattern(pattern: string, ref: string): boolean {
  const [first, ...rest] = pattern.split("*");
  if (rest.length === 0) return pattern === ref;
  if (!ref.startsWith(first!)) return false;
  // Greedy enough for patterns like refs/tags/v*: each literal piece must follow in order.
  let at = first!.length;
  for (const [i, piece] of rest.entries()) {
    const last = i === rest.length - 1;
    const found = last ? (ref.endsWith(piece) && ref.length - piece.length >= at ? ref.length - piece.length : -1) : ref.indexOf(piece, at);
    if (found < 0) return false;
    at = found + piece.length;
  }
  return true;
}
