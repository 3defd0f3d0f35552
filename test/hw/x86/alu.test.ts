import { test } from "node:test";
import assert from "node:assert/strict";
import { run32, run64, setR, getR } from "./helpers.js";

const CF = 1, PF = 4, AF = 0x10, ZF = 0x40, SF = 0x80, OF = 0x800;
const ARITH = CF | PF | AF | ZF | SF | OF;

/** Execute `op eax, ebx`-style code with EAX=a, EBX=b (and CF preset), return [eax, arith flags]. */
function alu32(code: number[], a: number, b: number, cfIn = 0): [number, number] {
  const { cpu } = run32(code, (c) => { c.state.gpr[0] = a; c.state.gpr[6] = b; c.setRflags(2 | cfIn); });
  return [cpu.state.gpr[0] >>> 0, cpu.getRflags() & ARITH];
}

test("ADD 32 flags: carry, overflow, zero, parity, aux", () => {
  const add = [0x01, 0xd8]; // add eax, ebx
  assert.deepEqual(alu32(add, 0xffffffff, 1), [0, CF | ZF | PF | AF]);
  assert.deepEqual(alu32(add, 0x7fffffff, 1), [0x80000000, OF | SF | AF | PF]);
  assert.deepEqual(alu32(add, 0x80000000, 0x80000000), [0, CF | OF | ZF | PF]);
  assert.deepEqual(alu32(add, 1, 2), [3, PF]);
});

test("SUB/CMP/SBB/ADC 32 flags", () => {
  assert.deepEqual(alu32([0x29, 0xd8], 0, 1), [0xffffffff, CF | SF | AF | PF]); // sub eax,ebx
  assert.deepEqual(alu32([0x29, 0xd8], 0x80000000, 1), [0x7fffffff, OF | AF | PF]);
  assert.deepEqual(alu32([0x39, 0xd8], 5, 5), [5, ZF | PF]); // cmp leaves eax
  assert.deepEqual(alu32([0x19, 0xd8], 5, 5, CF), [0xffffffff, CF | SF | AF | PF]); // sbb with borrow
  assert.deepEqual(alu32([0x11, 0xd8], 0xffffffff, 0, CF), [0, CF | ZF | PF | AF]); // adc with carry
  assert.deepEqual(alu32([0x11, 0xd8], 0x7fffffff, 0, CF), [0x80000000, OF | SF | PF | AF]);
});

test("8/16-bit ALU forms and logic ops", () => {
  assert.deepEqual(alu32([0x00, 0xd8], 0x1234ff, 0x01), [0x123400, CF | ZF | PF | AF]); // add al,bl
  assert.deepEqual(alu32([0x66, 0x01, 0xd8], 0xabcd7fff, 1), [0xabcd8000, OF | SF | PF | AF]); // add ax,bx
  assert.deepEqual(alu32([0x21, 0xd8], 0xf0f0f0f0, 0x0f0f0f0f), [0, ZF | PF]); // and
  assert.deepEqual(alu32([0x31, 0xd8], 0x80, 0x1), [0x81, PF]); // xor
  assert.deepEqual(alu32([0xf7, 0xd8], 0x80000000, 0), [0x80000000, CF | OF | SF | PF]); // neg eax
  assert.deepEqual(alu32([0xf7, 0xd8], 0, 0), [0, ZF | PF]);
  // inc preserves CF; dec sets OF at 0x80000000
  assert.deepEqual(alu32([0x40], 0xffffffff, 0, CF), [0, CF | ZF | PF | AF]);
  assert.deepEqual(alu32([0x48], 0x80000000, 0), [0x7fffffff, OF | AF | PF]);
  // grp1 with sign-extended imm8: sub eax, -1
  assert.deepEqual(alu32([0x83, 0xe8, 0xff], 0, 0), [1, CF | AF]);
});

test("64-bit ALU: carries across the halves", () => {
  const { cpu } = run64([0x48, 0x01, 0xd8, 0x48, 0x89, 0xc1, 0x48, 0x29, 0xd9, 0x48, 0x29, 0xd9], (c) => {
    setR(c, 0, 0xffffffffn); setR(c, 3, 1n);
  });
  // add rax,rbx -> 0x100000000; mov rcx,rax; sub rcx,rbx twice -> 0xfffffffe
  assert.equal(getR(cpu, 0), 0x100000000n);
  assert.equal(getR(cpu, 1), 0xfffffffen);
  const r = run64([0x48, 0x01, 0xd8], (c) => { setR(c, 0, -1n); setR(c, 3, 1n); });
  assert.equal(getR(r.cpu, 0), 0n);
  assert.equal(r.cpu.getRflags() & (CF | ZF | OF), CF | ZF);
  const o = run64([0x48, 0x29, 0xd8], (c) => { setR(c, 0, 0x8000000000000000n); setR(c, 3, 1n); });
  assert.equal(getR(o.cpu, 0), 0x7fffffffffffffffn);
  assert.equal(o.cpu.getRflags() & (CF | OF | SF), OF);
  // 32-bit op zero-extends in 64-bit mode; 16-bit op merges
  const z = run64([0x01, 0xd8, 0x66, 0x01, 0xd9], (c) => { setR(c, 0, 0xffffffff00000001n); setR(c, 3, 1n); setR(c, 1, 0x1111222233334444n); });
  assert.equal(getR(z.cpu, 0), 2n);
  assert.equal(getR(z.cpu, 1), 0x1111222233334445n);
});

test("MUL/IMUL/DIV/IDIV in every size", () => {
  const m = run64([0x48, 0xf7, 0xe3], (c) => { setR(c, 0, 0xffffffffffffffffn); setR(c, 3, 0xffffffffffffffffn); });
  assert.equal(getR(m.cpu, 0), 1n);
  assert.equal(getR(m.cpu, 2), 0xfffffffffffffffen);
  assert.equal(m.cpu.getRflags() & (CF | OF), CF | OF);
  const im = run64([0x48, 0xf7, 0xeb], (c) => { setR(c, 0, -3n); setR(c, 3, 5n); });
  assert.equal(getR(im.cpu, 0), BigInt.asUintN(64, -15n));
  assert.equal(getR(im.cpu, 2), 0xffffffffffffffffn);
  assert.equal(im.cpu.getRflags() & (CF | OF), 0);
  const i3 = run64([0x48, 0x6b, 0xc3, 0xf9], (c) => { setR(c, 3, 0x4000000000000000n); }); // imul rax, rbx, -7
  assert.equal(getR(i3.cpu, 0), BigInt.asUintN(64, 0x4000000000000000n * -7n));
  assert.equal(i3.cpu.getRflags() & (CF | OF), CF | OF);
  const d = run64([0x48, 0xf7, 0xf3], (c) => { setR(c, 2, 5n); setR(c, 0, 0x123456789abcdefn); setR(c, 3, 0x987654321n); });
  const n = (5n << 64n) | 0x123456789abcdefn;
  assert.equal(getR(d.cpu, 0), n / 0x987654321n);
  assert.equal(getR(d.cpu, 2), n % 0x987654321n);
  const id = run64([0x48, 0xf7, 0xfb], (c) => { setR(c, 2, -1n); setR(c, 0, -100n); setR(c, 3, 7n); });
  assert.equal(getR(id.cpu, 0), BigInt.asUintN(64, -14n));
  assert.equal(getR(id.cpu, 2), BigInt.asUintN(64, -2n));
  const d32 = run32([0xf7, 0xf3], (c) => { c.state.gpr[4] = 3; c.state.gpr[0] = 0x12345678; c.state.gpr[6] = 0x10000; });
  const n32 = (3n << 32n) | 0x12345678n;
  assert.equal(BigInt(d32.cpu.state.gpr[0] >>> 0), n32 / 0x10000n);
  assert.equal(BigInt(d32.cpu.state.gpr[4] >>> 0), n32 % 0x10000n);
  const d8 = run32([0xf6, 0xf3], (c) => { c.state.gpr[0] = 1000; c.state.gpr[6] = 7; });
  assert.equal(d8.cpu.state.gpr[0] & 0xffff, (1000 % 7 << 8) | Math.floor(1000 / 7));
  const m32 = run32([0xf7, 0xe3], (c) => { c.state.gpr[0] = 0xffffffff | 0; c.state.gpr[6] = 0xffffffff | 0; });
  assert.equal(m32.cpu.state.gpr[0] >>> 0, 1);
  assert.equal(m32.cpu.state.gpr[4] >>> 0, 0xfffffffe);
});

test("shifts and rotates: counts, CF/OF, masking", () => {
  const shl = run32([0xd1, 0xe0], (c) => { c.state.gpr[0] = 0xc0000000 | 0; });
  assert.equal(shl.cpu.state.gpr[0] >>> 0, 0x80000000);
  assert.equal(shl.cpu.getRflags() & (CF | OF | SF), CF | SF);
  const sar = run32([0xc1, 0xf8, 4], (c) => { c.state.gpr[0] = 0x80000008 | 0; });
  assert.equal(sar.cpu.state.gpr[0] >>> 0, 0xf8000000);
  assert.equal(sar.cpu.getRflags() & CF, CF);
  const shr0 = run32([0xd3, 0xe8], (c) => { c.state.gpr[0] = 5; c.state.gpr[2] = 32; c.setRflags(2 | CF); });
  assert.equal(shr0.cpu.state.gpr[0], 5, "count masked to 0 leaves the operand");
  assert.equal(shr0.cpu.getRflags() & CF, CF, "and the flags");
  const rol = run32([0xd0, 0xc0], (c) => { c.state.gpr[0] = 0x81; });
  assert.equal(rol.cpu.state.gpr[0] & 0xff, 0x03);
  assert.equal(rol.cpu.getRflags() & (CF | OF), CF | OF);
  const rcr = run32([0xd0, 0xd8], (c) => { c.state.gpr[0] = 0x01; c.setRflags(2 | CF); });
  assert.equal(rcr.cpu.state.gpr[0] & 0xff, 0x80);
  assert.equal(rcr.cpu.getRflags() & CF, CF);
  const rcl9 = run32([0xc0, 0xd0, 9], (c) => { c.state.gpr[0] = 0x55; });
  assert.equal(rcl9.cpu.state.gpr[0] & 0xff, 0x55, "RCL r8 by 9 is the identity");
  const s64 = run64([0x48, 0xc1, 0xe0, 36], (c) => { setR(c, 0, 0x12345n); });
  assert.equal(getR(s64.cpu, 0), 0x12345n << 36n);
  const r64 = run64([0x48, 0xc1, 0xc8, 4], (c) => { setR(c, 0, 0x123456789abcdef1n); });
  assert.equal(getR(r64.cpu, 0), 0x1123456789abcdefn);
  const sh = run32([0x0f, 0xa4, 0xd8, 8], (c) => { c.state.gpr[0] = 0x11223344; c.state.gpr[6] = 0xaabbccdd | 0; });
  assert.equal(sh.cpu.state.gpr[0] >>> 0, 0x223344aa);
  const shr = run32([0x0f, 0xad, 0xd8], (c) => { c.state.gpr[0] = 0x11223344; c.state.gpr[6] = 0xaabbccdd | 0; c.state.gpr[2] = 8; });
  assert.equal(shr.cpu.state.gpr[0] >>> 0, 0xdd112233);
});

test("bit ops, BSF/BSR, POPCNT/LZCNT/TZCNT, BSWAP, MOVSX/ZX, SETcc/CMOVcc", () => {
  const bt = run32([0x0f, 0xab, 0xd8], (c) => { c.state.gpr[0] = 0; c.state.gpr[6] = 33; }); // bts eax, ebx (reg: bit 1)
  assert.equal(bt.cpu.state.gpr[0], 2);
  const bsr = run32([0x0f, 0xbd, 0xc3], (c) => { c.state.gpr[6] = 0x00f00000; });
  assert.equal(bsr.cpu.state.gpr[0], 23);
  const lz = run32([0xf3, 0x0f, 0xbd, 0xc3], (c) => { c.state.gpr[6] = 0x00f00000; });
  assert.equal(lz.cpu.state.gpr[0], 8);
  const tz = run32([0xf3, 0x0f, 0xbc, 0xc3], (c) => { c.state.gpr[6] = 0; });
  assert.equal(tz.cpu.state.gpr[0], 32);
  assert.equal(tz.cpu.getRflags() & CF, CF);
  const pc = run64([0xf3, 0x48, 0x0f, 0xb8, 0xc3], (c) => { setR(c, 3, 0xff00ff00ff00ff01n); });
  assert.equal(getR(pc.cpu, 0), 33n);
  const bs = run64([0x48, 0x0f, 0xc8], (c) => { setR(c, 0, 0x0102030405060708n); });
  assert.equal(getR(bs.cpu, 0), 0x0807060504030201n);
  const sx = run64([0x48, 0x0f, 0xbe, 0xc3, 0x0f, 0xb7, 0xcb], (c) => { setR(c, 3, 0x1234f080n); setR(c, 1, -1n); });
  assert.equal(getR(sx.cpu, 0), 0xffffffffffffff80n);
  assert.equal(getR(sx.cpu, 1), 0xf080n);
  const sc = run32([0x39, 0xd8, 0x0f, 0x9c, 0xc1, 0x0f, 0x4f, 0xd3], (c) => { c.state.gpr[0] = -5; c.state.gpr[6] = 3; c.state.gpr[4] = 77; });
  assert.equal(sc.cpu.state.gpr[2] & 0xff, 1, "setl after cmp -5,3");
  assert.equal(sc.cpu.state.gpr[4], 77, "cmovg not taken");
});

test("BMI1/BMI2 and ADX", () => {
  // andn eax, ebx(vvvv), ecx: c4 e2 60 f2 c1
  const a = run64([0xc4, 0xe2, 0x60, 0xf2, 0xc1], (c) => { setR(c, 3, 0xf0n); setR(c, 1, 0xffn); });
  assert.equal(getR(a.cpu, 0), 0x0fn);
  // pext rax, rbx, rcx (mask rcx): c4 e2 e2 f5 c1
  const p = run64([0xc4, 0xe2, 0xe2, 0xf5, 0xc1], (c) => { setR(c, 3, 0x12345678n); setR(c, 1, 0xff00n); });
  assert.equal(getR(p.cpu, 0), 0x56n);
  // pdep rax, rbx, rcx: c4 e2 e3 f5 c1
  const d = run64([0xc4, 0xe2, 0xe3, 0xf5, 0xc1], (c) => { setR(c, 3, 0x56n); setR(c, 1, 0xff00n); });
  assert.equal(getR(d.cpu, 0), 0x5600n);
  // shlx rax, rbx, rcx: c4 e2 f1 f7 c3
  const s = run64([0xc4, 0xe2, 0xf1, 0xf7, 0xc3], (c) => { setR(c, 3, 1n); setR(c, 1, 40n); });
  assert.equal(getR(s.cpu, 0), 1n << 40n);
  // rorx eax, ebx, 8: c4 e3 7b f0 c3 08
  const r = run64([0xc4, 0xe3, 0x7b, 0xf0, 0xc3, 0x08], (c) => { setR(c, 3, 0x11223344n); });
  assert.equal(getR(r.cpu, 0), 0x44112233n);
  // mulx rax(hi), rbx(lo: vvvv), rcx with rdx: c4 e2 e3 f6 c1
  const m = run64([0xc4, 0xe2, 0xe3, 0xf6, 0xc1], (c) => { setR(c, 2, 0xffffffffffffffffn); setR(c, 1, 3n); });
  assert.equal(getR(m.cpu, 0), 2n);
  assert.equal(getR(m.cpu, 3), 0xfffffffffffffffdn);
  // blsr ebx(vvvv), ecx: c4 e2 60 f3 c9
  const b = run64([0xc4, 0xe2, 0x60, 0xf3, 0xc9], (c) => { setR(c, 1, 0b101000n); });
  assert.equal(getR(b.cpu, 3), 0b100000n);
  // adcx rax, rbx with CF: 66 48 0f 38 f6 c3
  const x = run64([0xf9, 0x66, 0x48, 0x0f, 0x38, 0xf6, 0xc3], (c) => { setR(c, 0, -1n); setR(c, 3, 0n); });
  assert.equal(getR(x.cpu, 0), 0n);
  assert.equal(x.cpu.getRflags() & CF, CF);
});

test("CRC32, BCD, LAHF/SAHF, CBW family, XADD/CMPXCHG", () => {
  // crc32 eax, byte bl: f2 0f 38 f0 c3
  const c1 = run32([0xf2, 0x0f, 0x38, 0xf0, 0xc3], (c) => { c.state.gpr[0] = -1; c.state.gpr[6] = 0x31; });
  // Reference: CRC-32C of "1" with init ~0 and no final xor.
  let crc = 0xffffffff;
  crc ^= 0x31;
  for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  assert.equal(c1.cpu.state.gpr[0] >>> 0, crc >>> 0);
  const daa = run32([0x04, 0x27, 0x27], (c) => { c.state.gpr[0] = 0x15; }); // add al,0x27; daa -> 0x42
  assert.equal(daa.cpu.state.gpr[0] & 0xff, 0x42);
  const aam = run32([0xd4, 0x0a], (c) => { c.state.gpr[0] = 63; });
  assert.equal(aam.cpu.state.gpr[0] & 0xffff, 0x0603);
  const cqo = run64([0x48, 0x98, 0x48, 0x99], (c) => { setR(c, 0, 0x80000000n); });
  assert.equal(getR(cqo.cpu, 0), 0xffffffff80000000n);
  assert.equal(getR(cqo.cpu, 2), 0xffffffffffffffffn);
  const xa = run32([0x0f, 0xc1, 0xd8], (c) => { c.state.gpr[0] = 5; c.state.gpr[6] = 7; });
  assert.equal(xa.cpu.state.gpr[0], 12);
  assert.equal(xa.cpu.state.gpr[6], 5);
  const cx = run32([0x0f, 0xb1, 0xd9], (c) => { c.state.gpr[0] = 9; c.state.gpr[2] = 9; c.state.gpr[6] = 4; }); // cmpxchg ecx, ebx
  assert.equal(cx.cpu.state.gpr[2], 4);
  assert.equal(cx.cpu.getRflags() & ZF, ZF);
});

test("64-bit LEA is exact over the whole 64-bit range; FF /2 near CALL is 64-bit in 64-bit mode", () => {
  const l = run64([0x49, 0x8d, 0x3c, 0x18], (c) => { setR(c, 8, 0x7fffffffffffffffn); setR(c, 3, 0n); }); // lea rdi,[r8+rbx]
  assert.equal(getR(l.cpu, 7), 0x7fffffffffffffffn);
  const l2 = run64([0x48, 0x8d, 0x44, 0x8b, 0xff], (c) => { setR(c, 3, 0x1234567890abcdefn); setR(c, 1, -2n); }); // lea rax,[rbx+rcx*4-1]
  assert.equal(getR(l2.cpu, 0), BigInt.asUintN(64, 0x1234567890abcdefn - 8n - 1n));
  // call rax -> target: pop rcx; hlt. RSP moves by 8 and the return address is 64-bit.
  const { cpu } = run64([0xff, 0xd0], (c) => {
    setR(c, 0, 0x1100n);
    c.physmem.write8(0x1100, 0x59); c.physmem.write8(0x1101, 0xf4);
  });
  assert.equal(getR(cpu, 1), 0x1002n);
  assert.equal(getR(cpu, 4), 0x80000n);
});
