/**
 * Assembles a guest source with the system binutils (as, ld, objcopy) into a flat image, for
 * the differential tests. Throws Unavailable when the toolchain is missing.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Unavailable } from "./harness.js";

let missing: string | undefined | null = null;

/** Why the toolchain cannot be used, or undefined. */
export function toolchainUnavailable(): string | undefined {
  if (missing !== null) return missing;
  missing = undefined;
  for (const tool of ["as", "ld", "objcopy"]) {
    const r = spawnSync(tool, ["--version"], { encoding: "utf8" });
    if (r.error || r.status !== 0) missing = `${tool} (binutils) is not installed`;
  }
  return missing;
}

function run(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${cmd} failed:\n${r.stderr}`);
}

/** GNU as source (AT&T syntax, may switch .code16/32/64) linked at `base`, as a flat image. */
export function assemble(source: string, base: number): Uint8Array {
  const why = toolchainUnavailable();
  if (why) throw new Unavailable(why);
  const dir = mkdtempSync(join(tmpdir(), "tskvm-asm-"));
  try {
    writeFileSync(join(dir, "g.S"), source);
    run("as", ["--64", "-o", join(dir, "g.o"), join(dir, "g.S")]);
    run("ld", ["-m", "elf_x86_64", "-nostdlib", "-static", "--no-warn-rwx-segments", `-Ttext=0x${base.toString(16)}`,
      "-e", `0x${base.toString(16)}`, "-o", join(dir, "g.elf"), join(dir, "g.o")]);
    run("objcopy", ["-O", "binary", join(dir, "g.elf"), join(dir, "g.bin")]);
    return new Uint8Array(readFileSync(join(dir, "g.bin")));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
