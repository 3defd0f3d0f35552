// XSAVES/XRSTORS and IA32_XSS on the bare CPU (SDM Vol. 1 13.11, 13.12; Vol. 2 XSAVES, XRSTORS;
// Vol. 4 IA32_XSS). No supervisor component exists, so IA32_XSS only holds 0.
import { test } from "node:test";
import assert from "node:assert/strict";
import { read32, write32, writeBytes, segDesc, type Rig } from "./helpers.js";
import { machine, m, EXC_NONE } from "./x87_rig.js";

const OSFXSR = 1 << 9, OSXSAVE = 1 << 18;
const FNINIT = [0xdb, 0xe3], FLD1 = [0xd9, 0xe8];
const C7 = [0x0f, 0xc7];
const XSETBV = [0x0f, 0x01, 0xd1];
const RDMSR = [0x0f, 0x32], WRMSR = [0x0f, 0x30];
const le = (v: number): number[] => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24];
/** mov eax, imm32; mov edx, imm32; mov ecx, imm32 */
const regs = (eax: number, ecx: number, edx = 0): number[] => [0xb8, ...le(eax), 0xba, ...le(edx), 0xb9, ...le(ecx)];
const cr4 = (r: Rig): void => { r.cpu.state.cr4 |= OSXSAVE | OSFXSR; };
const setXmm = (r: Rig): void => { for (let i = 0; i < 8; i++) r.cpu.state.xmm[i] = 0x01020304 * (i + 1); };
const both = (...fs: ((r: Rig) => void)[]) => (r: Rig): void => { for (const f of fs) f(r); };
const XSAVES = (a: number): number[] => m(C7, 5, a);
const XRSTORS = (a: number): number[] => m(C7, 3, a);
const pre = [...regs(3, 0), ...XSETBV, ...FNINIT, ...FLD1];

test("IA32_XSS reads 0; WRMSR of 0 is accepted, of any set bit #GP(0)", () => {
  let r = machine([...regs(0x1234, 0xda0, 0x5678), ...RDMSR]);
  assert.equal(r.exc, EXC_NONE);
  assert.equal(r.cpu.state.gpr[0], 0);
  assert.equal(r.cpu.state.gpr[4], 0);
  assert.equal(machine([...regs(0, 0xda0), ...WRMSR]).exc, EXC_NONE);
  for (const [lo, hi] of [[1, 0], [1 << 8, 0], [1 << 11, 0], [0, 1], [0x80000000, 0]]) {
    r = machine([...regs(lo!, 0xda0, hi!), ...WRMSR]);
    assert.equal(r.exc, 13, `XSS=${hi}:${lo}`);
  }
});

test("CPUID.(0DH,1): XSAVES in EAX[3], EBX = size for XCR0 | IA32_XSS, ECX:EDX = no XSS bits", () => {
  const r = machine([]);
  const out = new Int32Array(4);
  r.cpu.cpuid(0xd, 1, out);
  assert.equal(out[0]! & 0xf, 0xf, "XSAVEOPT, XSAVEC, XGETBV1, XSAVES");
  assert.deepEqual([out[1], out[2], out[3]], [576, 0, 0]);
});

test("XSAVES writes the compacted image with XCOMP_BV[63] and the init optimization", () => {
  // x87 in use (FLD1), SSE in its initial configuration: XSTATE_BV = 1, XCOMP_BV = 8000000000000003H.
  let r = machine([...pre, ...regs(3, 0), ...XSAVES(0x4000)], both(cr4, (g) => { write32(g.mem, 0x40a0, 0xdeadbeef); write32(g.mem, 0x4210, 0x55); }));
  assert.equal(r.exc, EXC_NONE);
  assert.equal(read32(r.mem, 0x4200), 1, "XSTATE_BV");
  assert.equal(read32(r.mem, 0x4204), 0);
  assert.deepEqual([read32(r.mem, 0x4208), read32(r.mem, 0x420c)], [3, 0x80000000], "XCOMP_BV");
  assert.equal(read32(r.mem, 0x4000) & 0xffff, 0x37f, "FCW saved");
  assert.equal(read32(r.mem, 0x4024), 0x80000000, "ST0 = 1.0 saved");
  assert.equal(read32(r.mem, 0x40a0), 0xdeadbeef, "SSE not saved (initial configuration)");
  // SSE in use, RFBM = EDX:EAX AND XCR0 = 2 (EAX bits beyond XCR0 are ignored).
  r = machine([...pre, ...regs(0xff, 0, 0xffffffff), ...XSAVES(0x4000)], both(cr4, setXmm));
  assert.equal(r.exc, EXC_NONE);
  assert.equal(read32(r.mem, 0x4200), 3);
  assert.equal(read32(r.mem, 0x4208), 3);
  assert.equal(read32(r.mem, 0x40a0), 0x01020304, "XMM0");
  r = machine([...pre, ...regs(2, 0), ...XSAVES(0x4000)], both(cr4, setXmm));
  assert.equal(read32(r.mem, 0x4200), 2);
  assert.equal(read32(r.mem, 0x4208), 2, "XCOMP_BV[62:0] = RFBM");
  assert.equal(read32(r.mem, 0x4024), 0, "x87 not requested, not saved");
});

test("XSAVES/XRSTORS faults: #UD without CR4.OSXSAVE, #NM with CR0.TS, #GP(0) misaligned or above CPL 0", () => {
  assert.equal(machine([...regs(3, 0), ...XSAVES(0x4000)]).exc, 6);
  assert.equal(machine([...regs(3, 0), ...XRSTORS(0x4000)]).exc, 6);
  assert.equal(machine([...pre, ...regs(3, 0), ...XSAVES(0x4000)], both(cr4, (g) => { g.cpu.state.cr0 |= 8; })).exc, 7);
  assert.equal(machine([...pre, ...regs(3, 0), ...XSAVES(0x4020)], cr4).exc, 13);
  assert.equal(machine([...pre, ...regs(3, 0), ...XRSTORS(0x4020)], cr4).exc, 13);
  // Register forms are #UD.
  assert.equal(machine([...pre, 0x0f, 0xc7, 0xe8], cr4).exc, 6);
  assert.equal(machine([...pre, 0x0f, 0xc7, 0xd8], cr4).exc, 6);
  // CPL 3: the code segment is made conforming so the #GP handler runs at CPL 3 without a stack
  // switch; it records the vector and spins (the run budget ends the test).
  const ring3 = (g: Rig): void => {
    cr4(g);
    g.cpu.state.xcr0 = 3;
    const [lo, hi] = segDesc(0, 0xfffff, 0x9f, 0xc);
    write32(g.mem, 0x8008, lo); write32(g.mem, 0x800c, hi);
    g.cpu.state.segAr[1] = 0xc09f;
    g.cpu.state.segSel[1] = 0x0b;
    for (let v = 0; v < 20; v++) writeBytes(g.mem, 0x2000 + v * 16, [0xbe, v, 0, 0, 0, 0xeb, 0xfe]);
    g.cpu.setCpl(3);
  };
  // After the instruction: mov esi, 77H; jmp $ (a HLT at CPL 3 would #GP too).
  const done = [0xbe, 0x77, 0, 0, 0, 0xeb, 0xfe];
  for (const code of [XSAVES(0x4000), XRSTORS(0x4000)]) {
    const r = machine([...regs(3, 0), ...code, ...done], both(ring3, (g) => write32(g.mem, 0x420c, 0x80000000)));
    assert.equal(r.exc, 13);
  }
  // The same machine at CPL 3 runs XSAVEC (no privilege rule), so the #GP above is the CPL check.
  assert.equal(machine([...regs(3, 0), ...m(C7, 4, 0x4000), ...done], ring3).exc, 0x77);
  assert.equal(machine([...regs(3, 0), ...XSAVES(0x4000), ...done], both(cr4, (g) => { g.cpu.state.xcr0 = 3; })).exc, 0x77, "CPL 0 passes");
});

test("XRSTORS round trip and its #GP rules (standard format, XCOMP_BV beyond XCR0|XSS, XSTATE_BV beyond XCOMP_BV, header bytes)", () => {
  // XSAVES, FNINIT + clear XMM0, XRSTORS: the FLD1 stack and XMM come back.
  const clearXmm = [0x66, 0x0f, 0xef, 0xc0]; // pxor xmm0, xmm0
  let r = machine([...pre, ...regs(3, 0), ...XSAVES(0x4000), ...FNINIT, ...clearXmm, ...regs(3, 0), ...XRSTORS(0x4000)], both(cr4, setXmm));
  assert.equal(r.exc, EXC_NONE);
  assert.equal(r.cpu.state.fpu.top, 7);
  assert.equal(r.cpu.state.fpu.stHi(0) >>> 0, 0x80000000);
  assert.equal(r.cpu.state.xmm[0], 0x01020304);
  // XSTATE_BV[i] = 0 with RFBM[i] = 1 initializes the component (MXCSR too, compacted rules).
  const image = (bv: number, cLo: number, cHi: number, extra?: (g: Rig) => void) => both(cr4, setXmm, (g) => {
    write32(g.mem, 0x4018, 0x1fc0);
    write32(g.mem, 0x4200, bv); write32(g.mem, 0x4208, cLo); write32(g.mem, 0x420c, cHi);
    extra?.(g);
  });
  r = machine([...pre, ...regs(3, 0), ...XRSTORS(0x4000)], image(0, 3, 0x80000000));
  assert.equal(r.exc, EXC_NONE);
  assert.equal(r.cpu.state.fpu.tag, 0xffff, "x87 initialized");
  assert.equal(r.cpu.state.xmm[0], 0, "XMM initialized");
  assert.equal(r.cpu.state.mxcsr, 0x1f80);
  // RFBM = 1: SSE untouched even though XSTATE_BV[1] = 0.
  r = machine([...pre, ...regs(1, 0), ...XRSTORS(0x4000)], image(0, 3, 0x80000000));
  assert.equal(r.exc, EXC_NONE);
  assert.equal(r.cpu.state.xmm[0], 0x01020304);
  // MXCSR from the image with XSTATE_BV[1] = 1.
  r = machine([...pre, ...regs(3, 0), ...XRSTORS(0x4000)], image(2, 2, 0x80000000));
  assert.equal(r.exc, EXC_NONE);
  assert.equal(r.cpu.state.mxcsr, 0x1fc0);
  assert.equal(r.cpu.state.fpu.top, 0, "x87 initialized (RFBM[0] = 1, XSTATE_BV[0] = 0)");
  const gp = (what: string, setup: (g: Rig) => void): void => {
    const g = machine([...pre, ...regs(3, 0), ...XRSTORS(0x4000)], setup);
    assert.equal(g.exc, 13, what);
    assert.equal(g.cpu.state.fpu.top, 7, `${what}: nothing loaded`);
  };
  // A standard-format image XRSTOR would take: XRSTORS refuses it.
  assert.equal(machine([...pre, ...regs(3, 0), ...m([0x0f, 0xae], 5, 0x4000)], image(3, 0, 0)).exc, EXC_NONE);
  gp("XCOMP_BV[63] clear (standard format)", image(3, 0, 0));
  gp("XCOMP_BV[62:0] beyond XCR0 | IA32_XSS", image(1, 7, 0x80000000));
  gp("XCOMP_BV bit 40", image(1, 3, 0x80000100));
  gp("XSTATE_BV bit not in XCOMP_BV", image(3, 1, 0x80000000));
  gp("header byte 16", image(1, 3, 0x80000000, (g) => write32(g.mem, 0x4210, 1)));
  gp("header byte 60", image(1, 3, 0x80000000, (g) => write32(g.mem, 0x423c, 1 << 24)));
  gp("MXCSR reserved bit", image(2, 2, 0x80000000, (g) => write32(g.mem, 0x4018, 0x10000)));
  // The compacted XRSTOR still accepts what XSAVES wrote (same format).
  r = machine([...pre, ...regs(3, 0), ...XSAVES(0x4000), ...FNINIT, ...regs(3, 0), ...m([0x0f, 0xae], 5, 0x4000)], cr4);
  assert.equal(r.exc, EXC_NONE);
  assert.equal(r.cpu.state.fpu.top, 7);
});
