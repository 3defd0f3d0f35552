/**
 * Differential tests: the same image and initial state on the real /dev/kvm and on tskvm; the
 * architectural state must match at every exit (undefined flags masked per block).
 * Skips with the reason when either side cannot run here.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
// @ts-expect-error plain .mjs script without type declarations
import { buildGuests, projectRoot } from "../../scripts/build-guests.mjs";
import { realKvmUnavailable, runRealKvm } from "./harness.js";
import type { InitState } from "./harness.js";
import { assemble, toolchainUnavailable } from "./asm.js";
import { compareRuns } from "./compare.js";
import { generateCase } from "./gen.js";
import { runTskvm, tskvmUnavailable } from "./tskvm.js";
import { GEN_BLOCKS, GEN_INSNS, GEN_SEEDS, GEN_SEEDS_COMPAT, GEN_SEEDS_PROT32, GEN_SEEDS_REAL16, HELLO_INIT, IN_PATTERN_INIT, IN_PATTERN_SOURCE } from "./cases.js";

async function skipReason(): Promise<string | undefined> {
  return toolchainUnavailable() ?? (await tskvmUnavailable()) ?? realKvmUnavailable();
}

async function same(image: Uint8Array, init: InitState, masks?: number[], source?: string): Promise<void> {
  const real = runRealKvm(image, init);
  const ours = await runTskvm(image, init);
  const d = compareRuns(real, ours, { masks });
  assert.equal(d, undefined, d && `exit ${d.index}: ${d.diffs.join("; ")}${source ? `\n${blockText(source, d.index)}` : ""}`);
}

/** The instructions of generated block `i` (the code that ran before exit i). */
function blockText(source: string, i: number): string {
  const lines = source.split("\n");
  const from = lines.findIndex((l) => l.trim() === `# block ${i}`);
  if (from < 0) return "";
  const to = lines.findIndex((l, k) => k > from && l.trim().startsWith("# block"));
  return lines.slice(from, to < 0 ? from + 40 : to).join("\n");
}

test("diff: hello guest", async (t) => {
  const why = await skipReason();
  if (why) return t.skip(why);
  const [hello] = buildGuests({ filter: "hello/hello" }) as { bin: string }[];
  await same(new Uint8Array(readFileSync(join(projectRoot as string, hello!.bin))), HELLO_INIT);
});

test("diff: IN pattern and exit port", async (t) => {
  const why = await skipReason();
  if (why) return t.skip(why);
  await same(assemble(IN_PATTERN_SOURCE, IN_PATTERN_INIT.gpa), IN_PATTERN_INIT);
});

test(`diff: ${GEN_SEEDS.length} generated ring-3 cases x ${GEN_BLOCKS} blocks`, async (t) => {
  const why = await skipReason();
  if (why) return t.skip(why);
  for (const seed of GEN_SEEDS) {
    const c = generateCase({ seed, blocks: GEN_BLOCKS, insnsPerBlock: GEN_INSNS });
    await t.test(`seed 0x${seed.toString(16)}`, () => same(assemble(c.source, c.init.gpa), c.init, c.masks, c.source));
  }
});

for (const [mode, seeds, what] of [
  ["compat32", GEN_SEEDS_COMPAT, "compatibility-mode (CPL 3)"],
  ["prot32", GEN_SEEDS_PROT32, "32-bit protected-mode (CPL 0, paging off)"],
  ["real16", GEN_SEEDS_REAL16, "real-mode"],
] as const) {
  test(`diff: ${seeds.length} generated ${what} cases x ${GEN_BLOCKS} blocks`, async (t) => {
    const why = await skipReason();
    if (why) return t.skip(why);
    for (const seed of seeds) {
      const c = generateCase({ seed, mode, blocks: GEN_BLOCKS, insnsPerBlock: GEN_INSNS });
      await t.test(`seed 0x${seed.toString(16)}`, () => same(assemble(c.source, c.init.gpa), c.init, c.masks, c.source));
    }
  });
}
