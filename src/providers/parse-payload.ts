import * as v from "valibot";
import { HttpError } from "../http/http-error.ts";
import { describeIssues } from "../config/schema.ts";

/** JSON-decodes a verified body and validates it; a failure is a 400 naming the field. */
export function parsePayload<S extends v.GenericSchema>(schema: S, body: Uint8Array): v.InferOutput<S> {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(body));
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
