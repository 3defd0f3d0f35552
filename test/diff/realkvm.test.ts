/**
 * The real-KVM half of the differential suite: the harness against this machine's /dev/kvm
 * (kvm_pvm here; see tools/kvm-runner/README.md). Skips when there is no usable /dev/kvm or
 * toolchain.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
// @ts-expect-error plain .mjs script without type declarations
import { buildGuests, projectRoot } from "../../scripts/build-guests.mjs";
import { realKvmUnavailable, runRealKvm } from "./harness.js";
import { assemble, toolchainUnavailable } from "./asm.js";
import { compareRuns } from "./compare.js";
import { LAYOUT, generateCase } from "./gen.js";
import { GEN_BLOCKS, GEN_INSNS, GEN_SEEDS, GEN_SEEDS_COMPAT, HELLO_INIT, IN_PATTERN_INIT, IN_PATTERN_SOURCE } from "./cases.js";

const skipReason = (): string | undefined => toolchainUnavailable() ?? realKvmUnavailable();

test("real KVM: the hello guest prints 5 and halts, with the exits and registers of real mode", (t) => {
  const why = skipReason();
  if (why) return t.skip(why);
  const [hello] = buildGuests({ filter: "hello/hello" }) as { bin: string }[];
  const r = runRealKvm(new Uint8Array(readFileSync(join(projectRoot as string, hello!.bin))), HELLO_INIT);
  assert.equal(r.stop, "hlt");
  assert.equal(r.serial, "5\n");
  assert.deepEqual(r.exits.map((e) => e.exit), ["IO", "IO", "HLT"]);
  assert.deepEqual(r.exits[0]!.io, { dir: "out", size: 1, port: 0x3f8, count: 1, data: "35" });
  assert.equal(r.exits[0]!.regs.rip, 0x1008n);
  assert.equal(r.exits[2]!.regs.rip, 0x100cn);
  assert.equal(r.exits[2]!.regs.rax, 0x0an);
  assert.equal(r.exits[2]!.regs.rbx, 3n);
});

test("real KVM: IN reads the harness's fixed pattern, OUT to 0xf4 ends the run", (t) => {
  const why = skipReason();
  if (why) return t.skip(why);
  const r = runRealKvm(assemble(IN_PATTERN_SOURCE, IN_PATTERN_INIT.gpa), IN_PATTERN_INIT);
  assert.equal(r.stop, "exit-port");
  assert.equal(r.exits[0]!.io!.dir, "in");
  assert.equal(r.exits[1]!.io!.data, "11223344");
  assert.equal(r.exits[1]!.regs.rax, 0x44332211n);
});

test("real KVM: generated ring-3 cases (64-bit and compatibility mode) reach every block exit, deterministically", (t) => {
  const why = skipReason();
  if (why) return t.skip(why);
  let blocks = 0;
  const cases = [...GEN_SEEDS.slice(0, 16).map((seed) => ({ seed, mode: "64" as const })),
    ...GEN_SEEDS_COMPAT.slice(0, 8).map((seed) => ({ seed, mode: "compat32" as const }))];
  for (const { seed, mode } of cases) {
    const c = generateCase({ seed, mode, blocks: GEN_BLOCKS, insnsPerBlock: GEN_INSNS });
    const img = assemble(c.source, c.init.gpa);
    const a = runRealKvm(img, c.init);
    assert.equal(a.stop, "exit-mmio", `seed ${seed}: ${a.stop} at ${a.exits.at(-1)?.exit}`);
    assert.equal(a.exits.length, GEN_BLOCKS + 1, `seed ${seed}`);
    a.exits.forEach((e, i) => {
      assert.equal(e.exit, "MMIO");
      assert.equal(e.mmio!.addr, BigInt(i < GEN_BLOCKS ? LAYOUT.exitMmio : LAYOUT.stopMmio));
      assert.equal(e.mmio!.data, i.toString(16).padStart(2, "0") + "000000");
      assert.equal(e.sregs.cs, mode === "64" ? 0x2b : 0x33, "still at CPL 3 in the same mode");
    });
    blocks += a.exits.length;
    if (seed % 4 === 0) {
      const b = runRealKvm(img, c.init);
      assert.equal(compareRuns(a, b, { masks: c.masks }), undefined, `seed ${seed}: two runs differ`);
    }
  }
  assert.equal(blocks, 24 * (GEN_BLOCKS + 1));
});
