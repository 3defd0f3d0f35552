// FXSAVE/FXRSTOR, LDMXCSR/STMXCSR, XSAVE/XSAVEOPT/XSAVEC/XRSTOR, XGETBV/XSETBV and CPUID leaf 0DH
// on the bare CPU (SDM Vol. 1 ch. 13, Vol. 2 instruction pages).
import { test } from "node:test";
import assert from "node:assert/strict";
import { read32, write32, type Rig } from "./helpers.js";
import { machine, m, EXC_NONE } from "./x87_rig.js";

const OSFXSR = 1 << 9, OSXSAVE = 1 << 18;
const FNINIT = [0xdb, 0xe3], FLD1 = [0xd9, 0xe8];
const FX = [0x0f, 0xae], C7 = [0x0f, 0xc7];
const XSETBV = [0x0f, 0x01, 0xd1], XGETBV = [0x0f, 0x01, 0xd0];
const setXmm = (r: Rig): void => { for (let i = 0; i < 8; i++) r.cpu.state.xmm[i] = 0x11111111 * (i + 1); };
const cr4 = (bits: number) => (r: Rig): void => { r.cpu.state.cr4 |= bits; };
const both = (...fs: ((r: Rig) => void)[]) => (r: Rig): void => { for (const f of fs) f(r); };
/** mov eax, imm32; mov edx, 0; mov ecx, imm32 */
const regs = (eax: number, ecx: number): number[] => [0xb8, ...le(eax), 0xba, 0, 0, 0, 0, 0xb9, ...le(ecx)];
const le = (v: number): number[] => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24];

test("FXSAVE stores the legacy image (x87, MXCSR, MXCSR_MASK, XMM0-7 in 32-bit mode)", () => {
  const r = machine([...FNINIT, ...FLD1, ...m(FX, 0, 0x4000)], both(cr4(OSFXSR), setXmm));
  assert.equal(r.exc, EXC_NONE);
  assert.equal(read32(r.mem, 0x4000), 0x3800037f, "FCW, FSW with TOP=7");
  assert.equal(read32(r.mem, 0x4004) & 0xff, 0x80, "abridged tag: R7 valid");
  assert.equal(read32(r.mem, 0x4018), 0x1f80);
  assert.equal(read32(r.mem, 0x401c), 0xffff);
  assert.equal(read32(r.mem, 0x4020 + 4), 0x80000000, "ST0 = 1.0");
  assert.equal(read32(r.mem, 0x40a0), 0x11111111, "XMM0");
  assert.equal(read32(r.mem, 0x40a0 + 16 + 12), 0x88888888, "XMM1 lane 3");
  // Without CR4.OSFXSR the XMM area is not written.
  const r2 = machine([...m(FX, 0, 0x4000)], (g) => { setXmm(g); write32(g.mem, 0x40a0, 0xdeadbeef); });
  assert.equal(read32(r2.mem, 0x40a0), 0xdeadbeef);
  // 16-byte alignment.
  assert.equal(machine([...m(FX, 0, 0x4008)], cr4(OSFXSR)).exc, 13);
  assert.equal(machine([...m(FX, 0, 0x4000)], (g) => { g.cpu.state.cr0 |= 8; }).exc, 7);
});

test("FXRSTOR loads x87/MXCSR/XMM and raises #GP for reserved MXCSR bits", () => {
  const setup = (mx: number) => both(cr4(OSFXSR), (g) => {
    write32(g.mem, 0x4000, 0x0000007f); write32(g.mem, 0x4004, 0x01); // FCW 007F, R0 valid
    write32(g.mem, 0x4018, mx);
    write32(g.mem, 0x4020 + 4, 0xc0000000); write32(g.mem, 0x4020 + 8, 0x4000); // ST0 = 3.0
    write32(g.mem, 0x40a0 + 16, 0x12345678); // XMM1
  });
  const r = machine(m(FX, 1, 0x4000), setup(0x1f80 | 0x40));
  assert.equal(r.exc, EXC_NONE);
  const st = r.cpu.state;
  assert.equal(st.fpu.cw, 0x7f);
  assert.equal(st.mxcsr, 0x1fc0);
  assert.equal(st.xmm[4], 0x12345678);
  assert.deepEqual([st.fpu.stSe(0), st.fpu.stHi(0) >>> 0], [0x4000, 0xc0000000]);
  const bad = machine(m(FX, 1, 0x4000), setup(0x10000));
  assert.equal(bad.exc, 13);
  assert.equal(bad.cpu.state.fpu.cw, 0x40, "nothing loaded");
});

test("LDMXCSR/STMXCSR: #UD without CR4.OSFXSR, #GP for reserved bits", () => {
  const set = (g: Rig): void => write32(g.mem, 0x3000, 0x7f80);
  let r = machine([...m(FX, 2, 0x3000), ...m(FX, 3, 0x3004)], both(cr4(OSFXSR), set));
  assert.equal(r.exc, EXC_NONE);
  assert.equal(read32(r.mem, 0x3004), 0x7f80);
  r = machine(m(FX, 2, 0x3000), set);
  assert.equal(r.exc, 6);
  r = machine(m(FX, 2, 0x3000), both(cr4(OSFXSR), (g) => write32(g.mem, 0x3000, 0x11f80)));
  assert.equal(r.exc, 13);
});

test("XSETBV validates XCR0; XGETBV reads XCR0 and XINUSE", () => {
  let r = machine([...FNINIT, ...regs(3, 0), ...XSETBV, ...regs(0, 1), ...XGETBV], cr4(OSXSAVE | OSFXSR));
  assert.equal(r.exc, EXC_NONE);
  assert.equal(r.cpu.state.xcr0, 3);
  assert.equal(r.cpu.state.gpr[0], 0, "XINUSE: x87 and SSE in their initial configuration");
  r = machine([...regs(3, 0), ...XSETBV, ...FNINIT, ...FLD1, ...regs(0, 1), ...XGETBV], cr4(OSXSAVE | OSFXSR));
  assert.equal(r.cpu.state.gpr[0], 1);
  for (const bad of [2, 7, 5, 0]) assert.equal(machine([...regs(bad, 0), ...XSETBV], cr4(OSXSAVE)).exc, 13, `XCR0=${bad}`);
  assert.equal(machine([...regs(1, 1), ...XSETBV], cr4(OSXSAVE)).exc, 13, "ECX=1");
  assert.equal(machine(XSETBV).exc, 6, "no CR4.OSXSAVE");
  assert.equal(machine([...regs(0, 2), ...XGETBV], cr4(OSXSAVE)).exc, 13);
});

test("XSAVE / XSAVEC write the header; XRSTOR restores and initializes; bad headers #GP", () => {
  const pre = [...regs(3, 0), ...XSETBV, ...FNINIT, ...FLD1];
  // XSAVE with RFBM = 3
  let r = machine([...pre, ...regs(3, 0), ...m(FX, 4, 0x4000)], both(cr4(OSXSAVE | OSFXSR), setXmm));
  assert.equal(r.exc, EXC_NONE);
  assert.equal(read32(r.mem, 0x4200), 3, "XSTATE_BV");
  assert.equal(read32(r.mem, 0x4208), 0, "XCOMP_BV untouched");
  assert.equal(read32(r.mem, 0x40a0), 0x11111111);
  // XSAVE with RFBM = 1 leaves MXCSR and XMM alone.
  r = machine([...pre, ...regs(1, 0), ...m(FX, 4, 0x4000)], both(cr4(OSXSAVE | OSFXSR), setXmm, (g) => write32(g.mem, 0x4018, 0xaaaa)));
  assert.equal(read32(r.mem, 0x4018), 0xaaaa);
  assert.equal(read32(r.mem, 0x40a0), 0);
  assert.equal(read32(r.mem, 0x4200), 1);
  // XSAVEC: compacted header; SSE in its initial configuration is not saved.
  r = machine([...pre, ...regs(3, 0), ...m(C7, 4, 0x4000)], cr4(OSXSAVE | OSFXSR));
  assert.equal(read32(r.mem, 0x4200), 1);
  assert.equal(read32(r.mem, 0x4208), 3);
  assert.equal(read32(r.mem, 0x420c), 0x80000000);
  // XRSTOR with XSTATE_BV = 0: both components to their initial configuration.
  r = machine([...pre, ...regs(3, 0), ...m(FX, 5, 0x4000)], both(cr4(OSXSAVE | OSFXSR), setXmm, (g) => write32(g.mem, 0x4018, 0x1f80)));
  assert.equal(r.exc, EXC_NONE);
  assert.equal(r.cpu.state.fpu.top, 0);
  assert.equal(r.cpu.state.fpu.tag, 0xffff);
  assert.equal(r.cpu.state.xmm[0], 0);
  // Round trip: XSAVE then XRSTOR of a modified image.
  r = machine([...pre, ...regs(3, 0), ...m(FX, 4, 0x4000), ...FNINIT, ...regs(3, 0), ...m(FX, 5, 0x4000)], both(cr4(OSXSAVE | OSFXSR), setXmm));
  assert.equal(r.cpu.state.fpu.top, 7);
  assert.equal(r.cpu.state.fpu.stHi(0) >>> 0, 0x80000000);
  // #GP: XSTATE_BV beyond XCR0, reserved header bytes, misalignment; #UD without OSXSAVE.
  const hdr = (o: number, v: number) => both(cr4(OSXSAVE | OSFXSR), (g) => write32(g.mem, 0x4200 + o, v));
  assert.equal(machine([...pre, ...regs(3, 0), ...m(FX, 5, 0x4000)], hdr(0, 4)).exc, 13);
  assert.equal(machine([...pre, ...regs(3, 0), ...m(FX, 5, 0x4000)], hdr(16, 1)).exc, 13);
  assert.equal(machine([...pre, ...regs(3, 0), ...m(FX, 5, 0x4000)], hdr(8, 1)).exc, 13);
  assert.equal(machine([...pre, ...regs(3, 0), ...m(FX, 4, 0x4010)], cr4(OSXSAVE | OSFXSR)).exc, 13);
  assert.equal(machine(m(FX, 4, 0x4000)).exc, 6);
});

test("CPUID reports FPU, FXSR, XSAVE and leaf 0DH sizes for x87 + SSE", () => {
  const r = machine([]);
  const out = new Int32Array(4);
  r.cpu.cpuid(1, 0, out);
  assert.equal(out[3]! & 1, 1);
  assert.equal((out[3]! >>> 24) & 1, 1);
  assert.equal((out[2]! >>> 26) & 1, 1);
  r.cpu.cpuid(0xd, 0, out);
  assert.deepEqual([...out], [3, 576, 576, 0]);
  r.cpu.cpuid(0xd, 1, out);
  assert.equal(out[0]! & 7, 7, "XSAVEOPT, XSAVEC, XGETBV with ECX=1 (XSAVES: xsaves.test.ts)");
});

test("64-bit mode: FXSAVE64 stores a 64-bit FIP and XMM8-15; XSAVEC + XRSTOR of a compacted image round-trips", async () => {
  const { run64, read32: rd } = await import("./helpers.js");
  const abs = (op: number[], reg: number, a: number): number[] => [...op, (reg << 3) | 4, 0x25, ...le(a)];
  const setup = (c: Rig["cpu"]): void => {
    c.state.cr4 |= OSFXSR | OSXSAVE;
    c.state.xcr0 = 3;
    c.state.xmm[15 * 4] = 0x15151515;
    c.stateChanged();
  };
  // 0x1000 FNINIT; 0x1002 FLD1; 0x1004 FXSAVE64 [0x6000]; FXSAVE [0x6200]; eax=3, edx=0; XSAVEC [0x6400]; FNINIT; XRSTOR [0x6400]
  const code = [...FNINIT, ...FLD1, 0x48, ...abs(FX, 0, 0x6000), ...abs(FX, 0, 0x6200),
    0xb8, 3, 0, 0, 0, 0x31, 0xd2, ...abs(C7, 4, 0x6400), ...FNINIT, ...abs(FX, 5, 0x6400)];
  const { mem, cpu } = run64(code, setup);
  assert.equal(rd(mem, 0x6008), 0x1002, "FIP of FLD1, 64-bit");
  assert.equal(rd(mem, 0x600c), 0);
  assert.equal(rd(mem, 0x60a0 + 15 * 16), 0x15151515, "XMM15");
  assert.equal(rd(mem, 0x6200 + 8), 0x1002);
  assert.equal(rd(mem, 0x6400 + 512), 3, "XSTATE_BV: x87 and SSE in use");
  assert.deepEqual([rd(mem, 0x6400 + 520), rd(mem, 0x6400 + 524)], [3, 0x80000000], "XCOMP_BV");
  const f = cpu.state.fpu;
  assert.equal(f.top, 7, "XRSTOR brought the stack back");
  assert.equal(f.stHi(0) >>> 0, 0x80000000);
  assert.equal(cpu.state.xmm[60], 0x15151515);
});
