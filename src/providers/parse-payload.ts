import * as v from "valibot";
import { HttpError } from "../http/http-error.ts";
import { describeIssues } from "../config/schema.ts";
import { checkRefFormat } from "../git/ref-format.ts";
import type { RawDelivery } from "./push-event.ts";

/**
 * Decodes a verified body and validates it; a failure is a 400 naming the field.
 * GitHub, Gitea and Gogs can be set to post `application/x-www-form-urlencoded`
 * with the JSON in a `payload` field; the signature covers the form bytes, so
 * this runs after verification like the JSON case.
 */
export function parsePayload<S extends v.GenericSchema>(schema: S, { headers, body }: RawDelivery): v.InferOutput<S> {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(body);
  } catch {
    throw new HttpError(400, "BAD_JSON", "body is not valid UTF-8");
  }
  const mediaType = (headers.get("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
  if (mediaType === "application/x-www-form-urlencoded") {
    const field = new URLSearchParams(text).get("payload");
    if (field === null) throw new HttpError(400, "BAD_PAYLOAD", "form-encoded body has no 'payload' field");
    text = field;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new HttpError(400, "BAD_JSON", "body is not valid UTF-8 JSON");
  }
  const result = v.safeParse(schema, json);
  if (!result.success) {
    throw new HttpError(400, "BAD_PAYLOAD", `invalid payload: ${describeIssues(result.issues).join("; ")}`);
  }
  return result.output;
}

export const Oid = v.pipe(v.string(), v.regex(/^[0-9a-f]{40}$/, "must be a 40-hex commit id"));

export const RefName = v.pipe(v.string(), v.maxLength(1024));

/** A pushed ref must be a valid full ref name before it goes anywhere near git. */
export function checkedRef(ref: string, field = "ref"): string {
  const bad = checkRefFormat(ref);
  if (bad) throw new HttpError(400, "BAD_REF", `invalid payload: ${field}: ${bad}`);
  return ref;
}
