/** A pack, index or object that is not what git's formats say it must be. */
export class PackError extends Error {
  override name = "PackError";
}
