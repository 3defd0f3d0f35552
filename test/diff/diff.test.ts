/**
 * Differential tests: the same image and initial state on the real /dev/kvm and on tskvm; the
 * architectural state must match at every exit (undefined flags masked per block).
 * Skips with the reason when either side cannot run here.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
// @ts-expect-error plain .mjs script without type declarations
import { buildGuests, projectRoot } from "../../scripts/build-guests.mjs";
import { realKvmUnavailable, runRealKvm } from "./harness.js";
import type { InitState } from "./harness.js";
import { assemble, toolchainUnavailable } from "./asm.js";
import { compareRuns } from "./compare.js";
import { generateCase } from "./gen.js";
import { runTskvm, tskvmUnavailable } from "./tskvm.js";
import { GEN_BLOCKS, GEN_INSNS, GEN_SEEDS, HELLO_INIT, IN_PATTERN_INIT, IN_PATTERN_SOURCE } from "./cases.js";

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

interface GuestManifest {
  name: string; bin: string; expected: string; mode: "real16" | "prot32"; gpa: number; entry: number; mem: number;
  expect: string; regs: Record<string, string>;
}

/**
 * Library and real-mode guests whose expectation came from the real KVM: exit by exit, the
 * exit, its port data and RIP, CS and the control registers must match. General registers and
 * memory are not compared here: the guests keep undefined flag values (PUSHF of an AND's AF)
 * in registers and on their stacks by design.
 */
test("diff: guests, exit by exit", async (t) => {
  const why = await skipReason();
  if (why) return t.skip(why);
  const guests = (buildGuests() as GuestManifest[]).filter((g) => g.expect === "kvm" && existsSync(join(projectRoot as string, g.expected)));
  for (const g of guests) {
    await t.test(g.name, async () => {
      const init: InitState = {
        mode: g.mode, gpa: g.gpa, entry: g.entry, mem: g.mem, maxExits: 200000, timeoutSec: 120,
        regs: Object.fromEntries(Object.entries(g.regs).map(([k, v]) => [k, BigInt(v)])),
      };
      const image = new Uint8Array(readFileSync(join(projectRoot as string, g.bin)));
      const real = runRealKvm(image, init);
      const ours = await runTskvm(image, init);
      const d = compareRuns(real, ours, { memory: false, regs: ["rip"] });
      assert.equal(d, undefined, d && `exit ${d.index}: ${d.diffs.join("; ")}`);
    });
  }
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
