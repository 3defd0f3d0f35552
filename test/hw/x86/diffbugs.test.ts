// Regressions found by the differential test against /dev/kvm (test/diff), each pinned here.
import { test } from "node:test";
import assert from "node:assert/strict";
import { run64, setR, getR } from "./helpers.js";

test("LEA with 64-bit address size and a 32-bit destination keeps the exact low bits", () => {
  // leal -2081818159(%rsi,%rdx,4), %r13d
  const { cpu } = run64([0x44, 0x8d, 0xac, 0x96, 0xd1, 0xf9, 0xe9, 0x83], (c) => {
    setR(c, 6, 0x4aaa51c68a03ad05n); setR(c, 2, 0xba0be1c18c34e869n); setR(c, 13, -1n);
  });
  const want = BigInt.asUintN(32, 0x4aaa51c68a03ad05n + 4n * 0xba0be1c18c34e869n - 2081818159n);
  assert.equal(getR(cpu, 13), want);
});

test("LEA with a 16-bit destination writes only the low 16 bits of the exact sum", () => {
  // leaw -1878641261(%r12,%r13,4), %r15w
  const { cpu } = run64([0x66, 0x47, 0x8d, 0xbc, 0xac, 0x93, 0x35, 0x06, 0x90], (c) => {
    setR(c, 12, 0x9e6b9b71a9140b34n); setR(c, 13, 0xceaef59e0c252bcan); setR(c, 15, 0x1122334455667788n);
  });
  const low = BigInt.asUintN(16, 0x9e6b9b71a9140b34n + 4n * 0xceaef59e0c252bcan - 1878641261n);
  assert.equal(getR(cpu, 15), 0x1122334455660000n | low);
});

test("PUSH r64 / PUSH imm in 64-bit mode move RSP by 8", () => {
  // push %rbx; push %r15; pushq $-67420094; pushq $7
  const { cpu, mem } = run64([0x53, 0x41, 0x57, 0x68, 0x42, 0x4b, 0xfb, 0xfb, 0x6a, 0x07], (c) => {
    setR(c, 3, 0x1122334455667788n); setR(c, 15, 0x99aabbccddeeff00n);
  });
  assert.equal(getR(cpu, 4), 0x80000n - 32n);
  assert.equal(mem.read32(0x80000 - 8), 0x55667788);
  assert.equal(mem.read32(0x80000 - 4), 0x11223344);
  assert.equal(mem.read32(0x80000 - 16), 0xddeeff00);
  assert.equal(mem.read32(0x80000 - 24) >>> 0, 0xfbfb4b42);
  assert.equal(mem.read32(0x80000 - 20) >>> 0, 0xffffffff);
  assert.equal(mem.read32(0x80000 - 32), 7);
});
