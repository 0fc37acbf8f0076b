/**
 * Ref-name validation for names taken from untrusted webhook payloads.
 *
 * Mirrors `git check-ref-format <ref>` (git's refs.c, no --allow-onelevel,
 * no --refspec-pattern, no --normalize) so we never act on a ref git itself
 * would refuse. It is not shell- or path-escaping: names such as
 * "refs/heads/main;touch PWNED" are valid refs, so the real defence is that
 * a ref never reaches a shell or becomes a filesystem path.
 */

/** Git has no limit; we cap it so a payload cannot make us carry huge names. */
const MAX_REF_BYTES = 1024;

// The bytes git's refname_disposition table rejects outright: ASCII controls,
// DEL, space and ~ ^ : ? [ \ — plus '*', which only --refspec-pattern allows.
const BAD_CHAR = /[\x00-\x20\x7f~^:?*[\\]/;

/** Returns undefined if `ref` is a valid full ref name, else a short reason. */
export function checkRefFormat(ref: string): string | undefined {
  // The type says string, but payload data is only as typed as its sender.
  if (typeof ref !== "string") return "is not a string";
  // Lone surrogates would be re-encoded as U+FFFD, so the name we check would
  // not be the name we use.
  if (!ref.isWellFormed()) return "is not valid Unicode";
  if (ref.includes("\0")) return "contains NUL";
  if (Buffer.byteLength(ref, "utf8") > MAX_REF_BYTES) return `is longer than ${MAX_REF_BYTES} bytes`;
  if (BAD_CHAR.test(ref)) return "has a control character or one of ' ~^:?*[\\'";
  if (ref.includes("..")) return "contains '..'";
  // "@{" starts reflog syntax such as main@{1} or @{upstream}.
  if (ref.includes("@{")) return "contains '@{'";
  if (ref.startsWith("/") || ref.endsWith("/") || ref.includes("//")) {
    return "has an empty component (leading, trailing or double '/')";
  }
  // We always expect full refs such as refs/heads/x, never bare "main"; this
  // also covers git's rule against "@" alone (its shorthand for HEAD).
  if (!ref.includes("/")) return "has no '/'";
  if (ref.endsWith(".")) return "ends with '.'";
  for (const component of ref.split("/")) {
    if (component.startsWith(".")) return "has a component beginning with '.'";
    // Git keeps its lock files next to the refs they lock.
    if (component.endsWith(".lock")) return "has a component ending with '.lock'";
  }
  return undefined;
}

/** For display only: "refs/heads/main" -> "main", "refs/tags/v1" -> "v1". */
export function shortRefName(ref: string): string {
  for (const prefix of ["refs/heads/", "refs/tags/"]) {
    if (ref.startsWith(prefix)) return ref.slice(prefix.length);
  }
  return ref;
}
