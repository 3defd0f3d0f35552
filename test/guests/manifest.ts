/**
 * The guest programs as scripts/build-guests.mjs builds them, for the tests that boot them:
 * their manifests (or why the toolchain cannot build them) and the initial state to boot each with.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
// @ts-expect-error plain .mjs script without type declarations
import * as build from "../../scripts/build-guests.mjs";
import type { InitState, RunResult } from "../diff/harness.js";
import { runTskvm, type TskvmRunOptions } from "../diff/tskvm.js";

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

/**
 * Boot guest `m` on tskvm: `got` is the run in the .expected format (serial output, how it
 * stopped, the exit value), `want` the guest's expectation.
 */
export async function guestOnTskvm(m: Manifest, opts: TskvmRunOptions = {}, maxExits?: number): Promise<{ r: RunResult; got: string; want: string }> {
  const r = await runTskvm(new Uint8Array(readFileSync(guestPath(m.bin))), initFor(m, maxExits), opts);
  const last = r.exits.at(-1);
  const value = r.stop === "exit-port" && last?.io ? parseInt(last.io.data.slice(0, 2), 16) : 0;
  return { r, got: build.formatGuestResult(r.serial, r.stop, value) as string, want: build.expectedBody(readFileSync(guestPath(m.expected), "utf8")) as string };
}

