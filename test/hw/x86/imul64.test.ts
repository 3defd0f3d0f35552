// 64-bit IMUL (two- and three-operand forms): the low 64 bits and CF=OF against BigInt, for
// operands around the 32-bit sign-extension boundary (the 64x32 fast path) and full 64-bit ones.
import { test } from "node:test";
import assert from "node:assert/strict";
import { makeRig, writeBytes, long64, setR, getR } from "./helpers.js";

const EDGES = [0n, 1n, -1n, 2n, -2n, 0x7fffffffn, -0x80000000n, 0x80000000n, -0x80000001n, 0xffffffffn,
  0x100000000n, -0x100000000n, 0x7fffffffffffffffn, -0x8000000000000000n, 0x3fffffffffffffffn, 0x123456789abcdefn, -0x5555aaaa3333cccdn];

function operands(): [bigint, bigint][] {
  let s = 0x2468ace1;
  const rnd = (): number => { s ^= s << 13; s ^= s >>> 17; s ^= s << 5; return s >>> 0; };
  const r64 = (): bigint => BigInt.asIntN(64, (BigInt(rnd()) << 32n) | BigInt(rnd()));
  const r32 = (): bigint => BigInt.asIntN(32, BigInt(rnd()));
  const out: [bigint, bigint][] = [];
  for (const a of EDGES) for (const b of EDGES) out.push([a, b]);
  for (let k = 0; k < 200; k++) { out.push([r64(), r32()]); out.push([r32(), r64()]); out.push([r64(), r64()]); out.push([r32() >> 3n, r32()]); }
  return out;
}

test("IMUL r64, r/m64 and IMUL r64, r/m64, imm32 give the truncated product and CF=OF exactly", () => {
  const { cpu, mem } = makeRig(8);
  // 1000: imul rax, rbx ; hlt    1010: imul rax, rbx, imm32 ; hlt
  writeBytes(mem, 0x1000, [0x48, 0x0f, 0xaf, 0xc3, 0xf4]);
  long64(cpu, 0x1000);
  let checked = 0;
  for (const [a, b] of operands()) {
    const want = a * b;
    const trunc = BigInt.asIntN(64, want);
    const ovf = trunc !== want;
    setR(cpu, 0, a); setR(cpu, 3, b);
    cpu.state.rip = 0x1000; cpu.state.activityState = 0;
    cpu.run(10);
    assert.equal(getR(cpu, 0), BigInt.asUintN(64, trunc), `imul ${a} * ${b}`);
    assert.equal((cpu.getRflags() & 0x801) !== 0, ovf, `CF/OF of ${a} * ${b}`);
    assert.equal(cpu.getRflags() & 0x801, ovf ? 0x801 : 0);
    if (b >= -0x80000000n && b <= 0x7fffffffn) {
      const imm = Number(BigInt.asUintN(32, b));
      writeBytes(mem, 0x1010, [0x48, 0x69, 0xc3, imm & 0xff, (imm >>> 8) & 0xff, (imm >>> 16) & 0xff, imm >>> 24, 0xf4]);
      cpu.invalidateCode(1); // the bytes were written behind the CPU's back (as a VMM would, then invalidates)
      setR(cpu, 0, 0x5an); setR(cpu, 3, a);
      cpu.state.rip = 0x1010; cpu.state.activityState = 0;
      cpu.run(10);
      assert.equal(getR(cpu, 0), BigInt.asUintN(64, trunc), `imul ${a}, imm ${b}`);
      assert.equal(cpu.getRflags() & 0x801, ovf ? 0x801 : 0, `CF/OF of ${a} * imm ${b}`);
      checked++;
    }
  }
  assert.ok(checked > 300);
});
