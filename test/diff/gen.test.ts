import { test } from "node:test";
import assert from "node:assert/strict";
import { FL_ALL, LAYOUT, Rng, generateCase } from "./gen.js";
import { assemble, toolchainUnavailable } from "./asm.js";

test("the same seed gives the same case; another seed a different one", () => {
  const a = generateCase({ seed: 7, blocks: 8 });
  const b = generateCase({ seed: 7, blocks: 8 });
  const c = generateCase({ seed: 8, blocks: 8 });
  assert.equal(a.source, b.source);
  assert.deepEqual(a.init, b.init);
  assert.deepEqual(a.masks, b.masks);
  assert.notEqual(a.source, c.source);
});

test("Rng is mulberry32: fixed first outputs for seed 1", () => {
  // The reference mulberry32(1)'s first value is 0.6270739405881613 of 2^32.
  const r = new Rng(1);
  assert.deepEqual([r.u32(), r.u32(), r.u32()], [2693262067, 11749833, 2265367787]);
});

test("masks name only status flags, one per block exit plus the stop write", () => {
  const c = generateCase({ seed: 99, blocks: 20 });
  assert.equal(c.masks.length, 21);
  for (const m of c.masks) assert.equal(m & ~FL_ALL, 0);
});

test("every block ends in an MMIO write of its number; RBP and RSP are never destinations", () => {
  const c = generateCase({ seed: 3, blocks: 10 });
  for (let b = 0; b < 10; b++) assert.ok(c.source.includes(`movl $${b}, ${LAYOUT.exitMmio}`));
  assert.ok(c.source.includes(`movl $10, ${LAYOUT.stopMmio}`));
  // No instruction names %rbp/%ebp/%rsp as its last (destination) operand.
  for (const line of c.source.split("\n")) {
    const t = line.trim();
    if (t.startsWith("#") || t.startsWith(".") || !t) continue;
    assert.doesNotMatch(t, /,\s*%(rbp|ebp|bp|bpl|rsp|esp|sp|spl)$/, t);
  }
  assert.equal(c.init.regs!.rbp, BigInt(LAYOUT.data));
});

test("an instruction that reads flags never sees one left undefined (a CMP is put first)", () => {
  // Replay the text for OF: DIV/IDIV/BT/BSF/BSR leave it undefined; arithmetic, logic, MUL and
  // POPF define it; shifts and rotates depend on the count, so they make it unknown.
  for (const seed of [1234, 99, 5]) {
    const c = generateCase({ seed, blocks: 40 });
    const lines = c.source.split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#") && !l.startsWith("."));
    let state: "defined" | "undefined" | "unknown" = "defined";
    for (const l of lines) {
      if (/^(div|idiv|bt|bsf|bsr)/.test(l)) state = "undefined";
      else if (/^(cmp|add|sub|adc|sbb|neg|inc|dec|popfq|xadd|cmpxchg|and|or|xor|test|imul|mul)/.test(l)) state = "defined";
      else if (/^(sh|sa|ro|rc)/.test(l)) state = "unknown";
      else if (/^(seto|setno|setl|setge|setle|setg|cmovo|cmovno|cmovl|cmovge|cmovle|cmovg|pushfq)/.test(l)) {
        assert.notEqual(state, "undefined", `seed ${seed}: ${l} reads OF left undefined`);
      }
    }
  }
});

test("generated cases assemble with the system binutils", (t) => {
  const why = toolchainUnavailable();
  if (why) return t.skip(why);
  for (const seed of [1, 2, 3]) {
    const c = generateCase({ seed });
    const img = assemble(c.source, c.init.gpa);
    assert.equal(img.length, LAYOUT.data + 0x2000 - LAYOUT.image);
  }
});

test("comparison: RIP at an IO/MMIO exit may be either side of the instruction, flags are masked", async () => {
  const { compareExit } = await import("./compare.js");
  const { REG_NAMES } = await import("./harness.js");
  const regs = Object.fromEntries(REG_NAMES.map((r) => [r, 0n])) as Record<(typeof REG_NAMES)[number], bigint>;
  const sregs = { cr0: 0n, cr2: 0n, cr3: 0n, cr4: 0n, efer: 0n, cs: 0, ss: 0, ds: 0, es: 0, fs: 0, gs: 0 };
  const mmio = { addr: 0x300000n, len: 4, write: 1, data: "00000000" };
  const a = { n: 1, exit: "MMIO", reason: 6, mmio, regs: { ...regs, rip: 0x4000n, rflags: 0x202n }, sregs, mem: "0" };
  assert.deepEqual(compareExit(a, { ...a, regs: { ...a.regs, rip: 0x400bn } }), []);
  assert.deepEqual(compareExit(a, { ...a, regs: { ...a.regs, rip: 0x4010n } }), ["rip 0x4000 vs 0x4010"]);
  const hlt = { ...a, exit: "HLT", reason: 5, mmio: undefined };
  assert.deepEqual(compareExit(hlt, { ...hlt, regs: { ...hlt.regs, rip: 0x4001n } }), ["rip 0x4000 vs 0x4001"]);
  const f = { ...a, regs: { ...a.regs, rflags: 0x203n } };
  assert.deepEqual(compareExit(a, f), ["rflags 0x202 vs 0x203"]);
  assert.deepEqual(compareExit(a, f, 0x1), []);
  assert.deepEqual(compareExit(a, { ...a, regs: { ...a.regs, rflags: 0x10202n } }), []);
});

test("compatibility-mode cases use only legacy registers and 8/16/32-bit operands", () => {
  const c = generateCase({ seed: 11, mode: "compat32", blocks: 20 });
  const code = c.source.slice(c.source.indexOf("\t.code32"));
  assert.doesNotMatch(code, /%r(ax|bx|cx|dx|si|di|bp|sp|[89]|1[0-5])\b|%(sil|dil)\b|\b\w+q\s/);
  assert.equal(c.init.compat32, true);
  for (const r of ["r8", "r9", "r15"] as const) assert.equal(c.init.regs![r], 0n);
  assert.ok(c.init.regs!.rax! < 1n << 32n);
});
