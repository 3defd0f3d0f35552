/**
 * The guest programs as scripts/build-guests.mjs builds them, for the tests that boot them:
 * their manifests (or why the toolchain cannot build them) and the initial state to boot each with.
 */
import { join } from "node:path";
// @ts-expect-error plain .mjs script without type declarations
import * as build from "../../scripts/build-guests.mjs";
import type { InitState } from "../diff/harness.js";

export interface Manifest {
  name: string; bin: string; expected: string; mode: "real16" | "prot32"; gpa: number; entry: number;
  mem: number; expect: "kvm" | "qemu" | "sdm"; regs: Record<string, string>;
}

/** Build every guest; `why` says what is missing when the toolchain cannot. */
export function buildAllGuests(): { guests?: Manifest[]; why?: string } {
  try {
    return { guests: build.buildGuests() as Manifest[] };
  } catch (e) {
    const msg = (e as Error).message;
    if (msg.startsWith("toolchain missing")) return { why: msg };
    throw e;
  }
}

/** Absolute path of a file named relative to the project root. */
export const guestPath = (p: string): string => join(build.projectRoot as string, p);

/** The initial state a guest's header asks for. */
export function initFor(m: Manifest, maxExits = 200000): InitState {
  return {
    mode: m.mode, gpa: m.gpa, entry: m.entry, mem: m.mem, maxExits, timeoutSec: 120,
    regs: Object.fromEntries(Object.entries(m.regs).map(([k, v]) => [k, BigInt(v)])),
  };
}
