import { dlopen, type FFIFunction } from "bun:ffi";

/**
 * Opens the C library through bun:ffi with `symbols`: glibc's soname first,
 * then musl's, then macOS's. Throws the first failure, the telling one
 * (under MemoryDenyWriteExecute=yes, say, ffi cannot build its call stubs).
 */
export function dlopenLibc<S extends Record<string, FFIFunction>>(symbols: S) {
  const errors: unknown[] = [];
  for (const name of ["libc.so.6", "libc.musl-x86_64.so.1", "libc.musl-aarch64.so.1", "libc.so", "libc.dylib"]) {
    try {
      return dlopen(name, symbols).symbols;
    } catch (err) {
      errors.push(err);
    }
  }
  throw errors[0];
}
