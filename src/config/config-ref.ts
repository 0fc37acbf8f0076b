import type { LoadedTarget } from "./loaded-target.ts";

/** The part of the configuration a request needs. */
export interface TargetsConfig {
  targets: readonly LoadedTarget[];
}

/**
 * The one swappable reference to the current configuration. A request reads
 * it once and uses that snapshot throughout, so a reload (SIGHUP) swaps the
 * whole configuration between requests, never half-way through one.
 */
export interface ConfigRef<T extends TargetsConfig = TargetsConfig> {
  current(): T;
  replace(next: T): void;
}

export function createConfigRef<T extends TargetsConfig>(initial: T): ConfigRef<T> {
  let value = initial;
  return {
    current: () => value,
    replace(next) {
      value = next;
    },
  };
}
