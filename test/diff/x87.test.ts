/**
 * x87 differential test: generated blocks of x87 arithmetic, compares and conversions on random
 * operands (special encodings included) at CPL 3, on the real /dev/kvm and on tskvm; FSW, the
 * results and RFLAGS must be bit-identical at every exit (test/diff/x87_gen.ts).
 * Skips with the reason when either side cannot run here.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { realKvmUnavailable, runRealKvm } from "./harness.js";
import { assemble, toolchainUnavailable } from "./asm.js";
import { compareRuns } from "./compare.js";
import { runTskvm, tskvmUnavailable } from "./tskvm.js";
import { generateX87Case } from "./x87_gen.js";

const SEEDS = Array.from({ length: 48 }, (_, i) => 0x87870000 + i);
const BLOCKS = 64;

test("x87 cases are deterministic per seed", () => {
  assert.equal(generateX87Case(5, 16).source, generateX87Case(5, 16).source);
  assert.notEqual(generateX87Case(5, 16).source, generateX87Case(6, 16).source);
});

test(`diff: ${SEEDS.length} generated x87 cases x ${BLOCKS} blocks at CPL 3`, async (t) => {
  const why = toolchainUnavailable() ?? (await tskvmUnavailable()) ?? realKvmUnavailable();
  if (why) return t.skip(why);
  for (const seed of SEEDS) {
    const c = generateX87Case(seed, BLOCKS);
    await t.test(`seed 0x${seed.toString(16)}`, async () => {
      const image = assemble(c.source, c.init.gpa);
      const real = runRealKvm(image, c.init);
      const ours = await runTskvm(image, c.init);
      assert.equal(ours.exits.length, real.exits.length, `exits: real ${real.exits.length} (${real.stop}), tskvm ${ours.exits.length} (${ours.stop})`);
      const d = compareRuns(real, ours);
      assert.equal(d, undefined, d && `block ${d.index} (${c.ops[d.index]}): ${d.diffs.join("; ")}\n${blockText(c.source, d.index)}`);
    });
  }
});

function blockText(source: string, i: number): string {
  const lines = source.split("\n");
  const from = lines.findIndex((l) => l.startsWith(`# block ${i}:`));
  if (from < 0) return "";
  const to = lines.findIndex((l, k) => k > from && l.startsWith("# block"));
  return lines.slice(from, to < 0 ? from + 30 : to).join("\n");
}
