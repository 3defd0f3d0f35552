/**
 * tskvm against itself: every generated case run plainly and with all EPT mappings dropped at
 * every exit (runTskvm's zapEveryExit). Both runs must agree exit for exit, including the memory
 * checksum. This needs no /dev/kvm, and it checks what the comparison with the real KVM rarely
 * reaches: that no instruction commits a register or memory before an access that can VM-exit
 * (the exit saves the state as it is at that moment, and the instruction is restarted).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
// @ts-expect-error plain .mjs script without type declarations
import { buildGuests, projectRoot } from "../../scripts/build-guests.mjs";
import { assemble, toolchainUnavailable } from "./asm.js";
import { compareRuns } from "./compare.js";
import { generateCase } from "./gen.js";
import type { GenOptions } from "./gen.js";
import { runTskvm, tskvmUnavailable } from "./tskvm.js";
import { GEN_BLOCKS, GEN_INSNS } from "./cases.js";

const SEEDS_PER_MODE = 24;
const MODES: NonNullable<GenOptions["mode"]>[] = ["64", "compat32", "prot32", "real16"];

for (const mode of MODES) {
  test(`zap: ${SEEDS_PER_MODE} generated ${mode} cases give the same exits when every exit drops all EPT mappings`, async (t) => {
    const why = toolchainUnavailable() ?? (await tskvmUnavailable());
    if (why) return t.skip(why);
    for (let i = 0; i < SEEDS_PER_MODE; i++) {
      const seed = 0x2a900000 + MODES.indexOf(mode) * 0x1000 + i;
      const c = generateCase({ seed, mode, blocks: GEN_BLOCKS, insnsPerBlock: GEN_INSNS });
      const image = assemble(c.source, c.init.gpa);
      const plain = await runTskvm(image, c.init);
      const zapped = await runTskvm(image, c.init, { zapEveryExit: true });
      assert.ok(plain.exits.length > GEN_BLOCKS, `seed 0x${seed.toString(16)}: the case ran to its end`);
      const d = compareRuns(plain, zapped);
      assert.equal(d, undefined, d && `seed 0x${seed.toString(16)} exit ${d.index}: ${d.diffs.join("; ")}`);
    }
  });
}

test("zap: every guests/cpu program gives the same serial output and exits when every exit drops all EPT mappings", async (t) => {
  const why = toolchainUnavailable() ?? (await tskvmUnavailable());
  if (why) return t.skip(why);
  const guests = buildGuests({ filter: "cpu/" }) as { name: string; bin: string; mode: "real16" | "prot32"; gpa: number; entry: number; mem: number; regs: Record<string, string> }[];
  assert.ok(guests.length >= 10);
  for (const g of guests) {
    const init = {
      mode: g.mode, gpa: g.gpa, entry: g.entry, mem: g.mem, maxExits: 200000,
      regs: Object.fromEntries(Object.entries(g.regs).map(([k, v]) => [k, BigInt(v)])),
    };
    const image = new Uint8Array(readFileSync(join(projectRoot as string, g.bin)));
    const plain = await runTskvm(image, init);
    const zapped = await runTskvm(image, init, { zapEveryExit: true });
    assert.ok(plain.serial.length > 0, `${g.name} printed`);
    const d = compareRuns(plain, zapped);
    assert.equal(d, undefined, d && `${g.name} exit ${d.index}: ${d.diffs.join("; ")}`);
  }
});
