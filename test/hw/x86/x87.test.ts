// x87 instructions on the bare CPU: values, condition codes, stack faults, #NM/#MF/#UD, the
// last-instruction pointers and the FSTENV/FSAVE images (SDM Vol. 1 ch. 8, Vol. 2 D8-DF).
import { test } from "node:test";
import assert from "node:assert/strict";
import { makeRig, writeBytes, write32, write64, read32, type Rig } from "./helpers.js";
import { machine, m, EXC_NONE } from "./x87_rig.js";
import { SW_C0, SW_C1, SW_C2, SW_C3, SW_ES, SW_SF, TAG_EMPTY } from "../../../src/hw/x86/fp/x87_state.js";

const CF = 1, PF = 4, ZF = 0x40;
const FNINIT = [0xdb, 0xe3], FLD1 = [0xd9, 0xe8], FLDZ = [0xd9, 0xee], FLDPI = [0xd9, 0xeb];
const FNSTSW_AX = [0xdf, 0xe0];
function st0(r: Rig, i = 0): [number, number, number] {
  const f = r.cpu.state.fpu;
  return [f.stSe(i), f.stHi(i) >>> 0, f.stLo(i) >>> 0];
}

function f64Bits(x: number): [number, number] {
  const b = new DataView(new ArrayBuffer(8));
  b.setFloat64(0, x, true);
  return [b.getUint32(0, true), b.getUint32(4, true)];
}

test("FLD1 FLD1 FADDP FSTP m32 stores 2.0 and leaves the stack empty", () => {
  const r = machine([...FNINIT, ...FLD1, ...FLD1, 0xde, 0xc1, ...m(0xd9, 3, 0x3000)]);
  assert.equal(r.exc, EXC_NONE);
  assert.equal(read32(r.mem, 0x3000), 0x40000000);
  assert.equal(r.cpu.state.fpu.top, 0);
  assert.equal(r.cpu.state.fpu.tag, 0xffff);
});

test("FIDIV m32int rounds to nearest at 64 bits (C1 = rounded up, PE) and FSTP m80 stores the bits", () => {
  const r = machine([...FNINIT, ...FLD1, ...m(0xda, 6, 0x3000), ...FNSTSW_AX, ...m(0xdb, 7, 0x3010)], (g) => write32(g.mem, 0x3000, 3));
  assert.equal(r.exc, EXC_NONE);
  assert.equal(r.ax & (SW_C1 | 0x3f), SW_C1 | 0x20);
  assert.equal(read32(r.mem, 0x3010), 0xaaaaaaab);
  assert.equal(read32(r.mem, 0x3014), 0xaaaaaaaa);
  assert.equal(read32(r.mem, 0x3018) & 0xffff, 0x3ffd);
});

test("precision control 24 bits rounds FDIV results to single precision", () => {
  const r = machine([...FNINIT, ...m(0xd9, 5, 0x3004), ...FLD1, ...m(0xda, 6, 0x3000)], (g) => { write32(g.mem, 0x3000, 3); write32(g.mem, 0x3004, 0x007f); });
  assert.deepEqual(st0(r), [0x3ffd, 0xaaaaab00, 0]);
  assert.equal(r.cpu.state.fpu.cw, 0x007f);
});

test("FCOMPP / FUCOMPP condition codes and FCOMI / FUCOMIP EFLAGS", () => {
  // ST0 = 1, ST1 = pi: 1 < pi -> C0; both popped.
  let r = machine([...FNINIT, ...FLDPI, ...FLD1, 0xde, 0xd9, ...FNSTSW_AX]);
  assert.equal(r.ax & (SW_C0 | SW_C2 | SW_C3 | 0x3800), SW_C0);
  // FLDZ FLD1: ST0 = 1 > ST1 = 0 -> no flags; FCOMI ST0, ST1.
  r = machine([...FNINIT, ...FLDZ, ...FLD1, 0xdb, 0xf1]);
  assert.equal(r.cpu.getRflags() & (ZF | PF | CF), 0);
  r = machine([...FNINIT, ...FLD1, ...FLDZ, 0xdf, 0xe9]); // FUCOMIP: 0 < 1
  assert.equal(r.cpu.getRflags() & (ZF | PF | CF), CF);
  assert.equal(r.cpu.state.fpu.top, 7);
  // QNaN operand: unordered, FUCOMI raises nothing, FCOMI raises IE.
  const nan = (g: Rig): void => write32(g.mem, 0x3000, 0x7fc00000);
  r = machine([...FNINIT, ...FLD1, ...m(0xd9, 0, 0x3000), 0xdb, 0xe9, ...FNSTSW_AX], nan);
  assert.equal(r.cpu.getRflags() & (ZF | PF | CF), ZF | PF | CF);
  assert.equal(r.ax & 1, 0);
  r = machine([...FNINIT, ...FLD1, ...m(0xd9, 0, 0x3000), 0xdb, 0xf1, ...FNSTSW_AX], nan);
  assert.equal(r.ax & 1, 1);
});

test("FCOMI/FCOMIP write EFLAGS even when an unmasked exception stops them; then they do not pop", () => {
  // FLD1; FLD tbyte SNaN (no exception for m80); FLDCW 037E (IE unmasked); FCOMIP ST0, ST1
  const r = machine([...FNINIT, ...FLD1, ...m(0xdb, 5, 0x3000), ...m(0xd9, 5, 0x3010), 0xdf, 0xf1, ...FNSTSW_AX, 0xdb, 0xe2],
    (g) => { write64(g.mem, 0x3000, 0, 0xa0000000); write32(g.mem, 0x3008, 0x7fff); write32(g.mem, 0x3010, 0x037e); });
  assert.equal(r.exc, EXC_NONE);
  assert.equal(r.cpu.getRflags() & (ZF | PF | CF), ZF | PF | CF);
  assert.equal(r.ax & (SW_ES | 1 | 0x3800), SW_ES | 1 | 0x3000, "IE pending, TOP still 6");
});

test("stack overflow (masked) pushes the indefinite with IE, SF and C1; underflow sets C1 = 0", () => {
  const nine = Array.from({ length: 9 }, () => FLD1).flat();
  let r = machine([...FNINIT, ...nine, ...FNSTSW_AX]);
  assert.equal(r.ax & (SW_C1 | SW_SF | 1), SW_C1 | SW_SF | 1);
  assert.deepEqual(st0(r), [0xffff, 0xc0000000, 0]);
  r = machine([...FNINIT, 0xd8, 0xc1, ...FNSTSW_AX]); // FADD ST0, ST1 on an empty stack
  assert.equal(r.ax & (SW_C1 | SW_SF | 1), SW_SF | 1);
  assert.deepEqual(st0(r), [0xffff, 0xc0000000, 0]);
});

test("an unmasked exception is pending until the next waiting instruction: #MF with CR0.NE, FERR# without", () => {
  const code = [...FNINIT, ...m(0xd9, 5, 0x3000), 0xd8, 0xc1, ...FNSTSW_AX, 0x89, 0xc7 /* mov edi, eax */, 0xd9, 0xd0 /* FNOP */];
  const cw = (g: Rig): void => write32(g.mem, 0x3000, 0x037e);
  const r = machine(code, cw);
  assert.equal(r.exc, 16);
  assert.equal(r.cpu.state.gpr[14] & (SW_ES | 1), SW_ES | 1, "FNSTSW does not wait");
  // The stack was not touched by the unmasked underflow.
  assert.equal(r.cpu.state.fpu.tag, 0xffff);
  const r2 = machine(code, (g) => { cw(g); g.cpu.state.cr0 &= ~0x20; });
  assert.equal(r2.exc, EXC_NONE);
  assert.equal(r2.cpu.state.fpuFerr, 1);
  // FNCLEX clears the pending state; FWAIT then passes.
  const r3 = machine([...code.slice(0, -2), 0xdb, 0xe2, 0x9b, 0xd9, 0xd0], cw);
  assert.equal(r3.exc, EXC_NONE);
});

test("#NM: CR0.EM or CR0.TS for x87 instructions; WAIT only with TS and MP", () => {
  assert.equal(machine(FLD1, (g) => { g.cpu.state.cr0 |= 8; }).exc, 7);
  assert.equal(machine(FLD1, (g) => { g.cpu.state.cr0 |= 4; }).exc, 7);
  assert.equal(machine([0x9b], (g) => { g.cpu.state.cr0 |= 8; }).exc, EXC_NONE);
  assert.equal(machine([0x9b], (g) => { g.cpu.state.cr0 |= 0xa; }).exc, 7);
});

test("undefined x87 encodings raise #UD", () => {
  assert.equal(machine([0xd9, 0xd1]).exc, 6);
  assert.equal(machine(m(0xdd, 5, 0x3000)).exc, 6);
  assert.equal(machine([0xde, 0xd8]).exc, 6);
  assert.equal(machine([0xda, 0xe8]).exc, 6);
});

test("FIST/FISTP round per RC, FISTTP truncates, out of range gives the integer indefinite", () => {
  const load = (x: number) => (g: Rig): void => { const [lo, hi] = f64Bits(x); write64(g.mem, 0x3000, lo, hi); };
  let r = machine([...FNINIT, ...m(0xdd, 0, 0x3000), ...m(0xdb, 2, 0x3010), ...m(0xdb, 1, 0x3014)], load(2.5));
  assert.equal(read32(r.mem, 0x3010), 2);
  assert.equal(read32(r.mem, 0x3014), 2);
  r = machine([...FNINIT, ...m(0xdd, 0, 0x3000), ...m(0xdb, 3, 0x3010)], load(-3.5));
  assert.equal(read32(r.mem, 0x3010) | 0, -4);
  r = machine([...FNINIT, ...m(0xdd, 0, 0x3000), ...m(0xdf, 3, 0x3010), ...FNSTSW_AX], load(40000));
  assert.equal(read32(r.mem, 0x3010) & 0xffff, 0x8000);
  assert.equal(r.ax & 1, 1);
});

test("FILD m64 / FBSTP / FBLD round trip 18-digit BCD", () => {
  const v = 123456789012345678n;
  const r = machine([...FNINIT, ...m(0xdf, 5, 0x3000), ...m(0xdf, 6, 0x3010), ...m(0xdf, 4, 0x3010), ...m(0xdf, 7, 0x3020)],
    (g) => write64(g.mem, 0x3000, Number(v & 0xffffffffn), Number(v >> 32n)));
  assert.equal(read32(r.mem, 0x3010), 0x12345678);
  assert.equal(read32(r.mem, 0x3014), 0x34567890);
  assert.equal(read32(r.mem, 0x3018) & 0xffff, 0x0012);
  assert.equal((BigInt(read32(r.mem, 0x3024)) << 32n) | BigInt(read32(r.mem, 0x3020)), v);
});

test("FNSTENV: FIP/FCS of the last non-control instruction; FOP/FDP/FDS only from one with an unmasked exception", () => {
  // 0x1000 FNINIT; 0x1002 FLD dword [0x3000]; 0x1008 FNOP; 0x100a FNSTENV [0x3100]
  const r = machine([...FNINIT, ...m(0xd9, 0, 0x3000), 0xd9, 0xd0, ...m(0xd9, 6, 0x3100)], (g) => write32(g.mem, 0x3000, 0x3f800000));
  const e = (k: number): number => read32(r.mem, 0x3100 + 4 * k);
  assert.equal(e(0) & 0xffff, 0x037f);
  assert.equal(e(2) & 0xffff, 0x3fff, "tag word: ST0 valid, rest empty");
  assert.equal(e(3), 0x1008, "FIP = the FNOP");
  assert.equal(e(4), 0, "FOP not recorded without an exception; FCS deprecated (0)");
  assert.equal(e(5), 0, "FDP not recorded without an exception");
  assert.equal(r.cpu.state.fpu.cw, 0x037f);
  // With IE unmasked, FLD of an SNaN leaves an exception pending: FOP D9 05, FDP/FDS recorded.
  const x = machine([...FNINIT, ...m(0xd9, 5, 0x3004), ...m(0xd9, 0, 0x3000), ...m(0xd9, 6, 0x3100)],
    (g) => { write32(g.mem, 0x3000, 0x7f800001); write32(g.mem, 0x3004, 0x037e); });
  const ex = (k: number): number => read32(x.mem, 0x3100 + 4 * k);
  assert.equal(ex(3), 0x1008);
  assert.equal(ex(4), 0x105 << 16);
  assert.equal(ex(5), 0x3000);
  assert.equal(ex(6) & 0xffff, 0, "FDS deprecated (0)");
  assert.equal(x.cpu.state.fpu.sw & SW_ES, 0, "FNSTENV masked everything: nothing pending");
  const r2 = machine([...FNINIT, ...m(0xd9, 5, 0x3000), ...m(0xd9, 6, 0x3100)], (g) => write32(g.mem, 0x3000, 0x0360));
  assert.equal(r2.cpu.state.fpu.cw, 0x037f);
});

test("FNSAVE reinitializes and FRSTOR restores registers, TOP and tags", () => {
  const r = machine([...FNINIT, ...FLDPI, ...FLD1, ...m(0xdd, 6, 0x3100), ...FNSTSW_AX, 0x89, 0xc7, ...m(0xdd, 4, 0x3100)]);
  assert.equal(r.cpu.state.gpr[14] & 0x3800, 0, "TOP 0 after FNSAVE");
  const f = r.cpu.state.fpu;
  assert.equal(f.top, 6);
  assert.deepEqual(st0(r), [0x3fff, 0x80000000, 0]);
  assert.deepEqual(st0(r, 1), [0x4000, 0xc90fdaa2, 0x2168c235]);
  assert.equal(f.tagOf(f.phys(2)), TAG_EMPTY);
});

test("FXCH, FCHS, FABS, FXAM, FSQRT, FPREM, FCMOVcc, FINCSTP", () => {
  let r = machine([...FNINIT, ...FLDPI, ...FLD1, 0xd9, 0xc9, 0xd9, 0xe0]); // fxch; fchs
  assert.deepEqual(st0(r), [0xc000, 0xc90fdaa2, 0x2168c235]);
  assert.deepEqual(st0(r, 1), [0x3fff, 0x80000000, 0]);
  r = machine([...FNINIT, ...FLD1, 0xd9, 0xe0, 0xd9, 0xe1, 0xd9, 0xe5, ...FNSTSW_AX]); // fabs(-1); fxam -> normal
  assert.deepEqual(st0(r), [0x3fff, 0x80000000, 0]);
  assert.equal(r.ax & (SW_C0 | SW_C1 | SW_C2 | SW_C3), SW_C2);
  r = machine([...FNINIT, 0xd9, 0xe5, ...FNSTSW_AX]); // fxam on empty
  assert.equal(r.ax & (SW_C0 | SW_C2 | SW_C3), SW_C0 | SW_C3);
  r = machine([...FNINIT, ...FLD1, ...FLD1, 0xde, 0xc1, 0xd9, 0xfa]); // sqrt(2)
  assert.deepEqual(st0(r), [0x3fff, 0xb504f333, 0xf9de6484]);
  // FPREM: 7 rem 2 = 1, quotient 3 -> C1 = 1, C3 = 1, C0 = 0.
  r = machine([...FNINIT, ...m(0xda, 0, 0x3000), 0xd9, 0xe8, 0xd8, 0xc0, ...m(0xdb, 0, 0x3004), 0xd9, 0xf8, ...FNSTSW_AX],
    (g) => { write32(g.mem, 0x3000, 0); write32(g.mem, 0x3004, 7); });
  assert.deepEqual(st0(r), [0x3fff, 0x80000000, 0]);
  assert.equal(r.ax & (SW_C0 | SW_C1 | SW_C2 | SW_C3), SW_C1 | SW_C3);
  // FCMOVB ST0, ST1 with CF=1 copies; FCMOVNB does not.
  r = machine([...FNINIT, ...FLDPI, ...FLD1, 0xf9 /* stc */, 0xda, 0xc1]);
  assert.deepEqual(st0(r), st0(r, 1));
  r = machine([...FNINIT, ...FLDPI, ...FLD1, 0xf9, 0xdb, 0xc1]);
  assert.deepEqual(st0(r), [0x3fff, 0x80000000, 0]);
  r = machine([...FNINIT, ...FLD1, 0xd9, 0xf7]);
  assert.equal(r.cpu.state.fpu.top, 0);
});

test("FPTAN/FSINCOS/FXTRACT on a full stack: masked overflow leaves the indefinite in ST(0) and ST(1) (as a Xeon does)", () => {
  const full = [...FNINIT, 0xd9, 0xee, ...Array.from({ length: 6 }, () => FLD1).flat(), ...FLDPI];
  for (const op of [[0xd9, 0xf2], [0xd9, 0xfb], [0xd9, 0xf4]]) {
    const r = machine([...full, ...op, ...FNSTSW_AX]);
    assert.equal(r.ax, 0x3a41, `FSW after ${op}`);
    assert.deepEqual(st0(r), [0xffff, 0xc0000000, 0]);
    assert.deepEqual(st0(r, 1), [0xffff, 0xc0000000, 0]);
  }
});

test("FPTAN pushes 1.0; FSIN out of range sets C2 and leaves the operand", () => {
  let r = machine([...FNINIT, ...FLDZ, 0xd9, 0xf2]);
  assert.deepEqual(st0(r), [0x3fff, 0x80000000, 0]);
  assert.deepEqual(st0(r, 1), [0, 0, 0]);
  r = machine([...FNINIT, ...m(0xdb, 5, 0x3000), 0xd9, 0xfe, ...FNSTSW_AX], (g) => { write64(g.mem, 0x3000, 0, 0x80000000); write32(g.mem, 0x3008, 0x403f); });
  assert.equal(r.ax & SW_C2, SW_C2);
  assert.deepEqual(st0(r), [0x403f, 0x80000000, 0]);
});

test("FLD m32 SNaN raises IE and loads the QNaN; FADD m32 SNaN keeps the SNaN rules", () => {
  let r = machine([...FNINIT, ...m(0xd9, 0, 0x3000), ...FNSTSW_AX], (g) => write32(g.mem, 0x3000, 0x7f800001));
  assert.equal(r.ax & 1, 1);
  assert.deepEqual(st0(r), [0x7fff, 0xc0000100, 0]);
  r = machine([...FNINIT, ...FLD1, ...m(0xd8, 0, 0x3000), ...FNSTSW_AX], (g) => write32(g.mem, 0x3000, 0x7f800001));
  assert.equal(r.ax & 1, 1);
  assert.deepEqual(st0(r), [0x7fff, 0xc0000100, 0]);
});

test("real-mode 16-bit FNSTENV stores the 14-byte real-mode image", () => {
  const rig = makeRig();
  const { mem, cpu } = rig;
  // FNINIT; FLD1; FNSTENV [0x3100] (16-bit addressing: D9 36 00 31)
  writeBytes(mem, 0x10000, [...FNINIT, ...FLD1, 0xd9, 0x36, 0x00, 0x31, 0xf4]);
  const st = cpu.state;
  for (let s = 0; s < 6; s++) { st.segSel[s] = 0; st.segBase[s] = 0; st.segLimit[s] = 0xffff; st.segAr[s] = s === 1 ? 0x9b : 0x93; }
  st.segSel[1] = 0x1000; st.segBase[1] = 0x10000; st.cr0 = 0x60000010; st.rip = 0;
  cpu.stateChanged();
  cpu.run(100);
  const w = (k: number): number => mem.read8(0x3100 + 2 * k) | (mem.read8(0x3101 + 2 * k) << 8);
  assert.equal(w(0), 0x037f);
  assert.equal(w(3), 0x0002, "IP as a 20-bit linear address (0x10002), low 16 bits");
  assert.equal(w(4), 0x1000, "linear IP bits 19:16 above FOP (0: no exception)");
});
