/**
 * The opcode table: for every implemented opcode, its operand format (decode.ts flags) and its
 * handler. Everything not listed decodes as an unimplemented opcode and raises #UD with
 * cpu.lastUnimplemented = (map << 8) | opcode. Maps: 0 one-byte, 1 0F, 2 0F38, 3 0F3A,
 * 4-6 VEX 0F/0F38/0F3A (SDM Vol. 2 Appendix A).
 */
import type { X86Cpu } from "./cpu.js";
import { def, defSpecial, SPEC_ALU_RR32, SPEC_MOV_RR32, SPEC_ALU_RR64, SPEC_MOV_RR64, SPEC_INCDEC_R, SPEC_MOV_RM, F_MODRM as M, F_IB as IB, F_IW as IW, F_IZ as IZ, F_IV as IV, F_ENTER, F_FAR, F_MOFFS, F_D64 as D64,
  F_F64 as F64, F_I64 as I64, F_LOCK as LK, F_GRPIMM } from "./decode.js";
import * as alu from "./ops/alu.js";
import * as mov from "./ops/mov.js";
import * as br from "./ops/branch.js";
import * as stk from "./ops/stack.js";
import * as sys from "./ops/system.js";
import * as io from "./ops/io.js";
import * as sh from "./ops/shift.js";
import * as md from "./ops/muldiv.js";
import * as str from "./ops/string.js";
import * as far from "./ops/far.js";
import * as desc from "./ops/desc.js";
import * as bit from "./ops/bit.js";
import * as fpu from "./ops/x87.js";
import * as xs from "./ops/xsave.js";
import { BR_VECTOR, UD_VECTOR } from "./fault.js";
import { eaLin } from "./ops/operand.js";
import { rdL } from "./mmu.js";
import "./opcodes_sse.js";

// ---- one-byte map ----
for (let op = 0; op < 8; op++) {
  const b = op << 3;
  const lk = op === 7 ? 0 : LK;
  def(0, b + 0, M | lk, alu.aluEbGb);
  def(0, b + 1, M | lk, alu.aluEvGv);
  def(0, b + 2, M, alu.aluGbEb);
  def(0, b + 3, M, alu.aluGvEv);
  def(0, b + 4, IB, alu.aluALIb);
  def(0, b + 5, IZ, alu.aluAXIz);
}
def(0, 0x06, I64, stk.pushSeg); def(0, 0x07, I64, stk.popSeg);
def(0, 0x0e, I64, stk.pushSeg);
def(0, 0x16, I64, stk.pushSeg); def(0, 0x17, I64, stk.popSeg);
def(0, 0x1e, I64, stk.pushSeg); def(0, 0x1f, I64, stk.popSeg);
for (let r = 0; r < 8; r++) {
  def(0, 0x40 + r, I64, alu.incDecReg);
  def(0, 0x48 + r, I64, alu.incDecReg);
  def(0, 0x50 + r, D64, stk.pushReg);
  def(0, 0x58 + r, D64, stk.popReg);
  def(0, 0x90 + r, 0, r === 0 ? nop90 : mov.xchgAX);
  def(0, 0xb0 + r, IB, mov.movRbIb);
  def(0, 0xb8 + r, IV, mov.movRvIv);
}
def(0, 0x60, I64, stk.pusha); def(0, 0x61, I64, stk.popa);
def(0, 0x62, M | I64, bound);
def(0, 0x63, M, movsxdOrArpl);
def(0, 0x68, IZ | D64, stk.pushImm); def(0, 0x6a, IB | D64, stk.pushImm);
for (let cc = 0; cc < 16; cc++) def(0, 0x70 + cc, IB | F64, br.jcc);
def(0, 0x80, M | IB | LK, alu.grp1EbIb); def(0, 0x81, M | IZ | LK, alu.grp1EvI);
def(0, 0x82, M | IB | LK | I64, alu.grp1EbIb); def(0, 0x83, M | IB | LK, alu.grp1EvI);
def(0, 0x84, M, alu.testEbGb); def(0, 0x85, M, alu.testEvGv);
def(0, 0x86, M | LK, mov.xchgEG); def(0, 0x87, M | LK, mov.xchgEG);
def(0, 0x88, M, mov.movEbGb); def(0, 0x89, M, mov.movEvGv); def(0, 0x8a, M, mov.movGbEb); def(0, 0x8b, M, mov.movGvEv);
def(0, 0x8d, M, mov.lea);
def(0, 0x8f, M | D64, stk.popEv);
def(0, 0x98, 0, mov.cbw); def(0, 0x99, 0, mov.cwd);
def(0, 0x9c, D64, stk.pushf); def(0, 0x9d, D64, stk.popf);
def(0, 0x9e, 0, mov.sahf); def(0, 0x9f, 0, mov.lahf);
def(0, 0xa0, F_MOFFS, mov.movMoffs); def(0, 0xa1, F_MOFFS, mov.movMoffs); def(0, 0xa2, F_MOFFS, mov.movMoffs); def(0, 0xa3, F_MOFFS, mov.movMoffs);
def(0, 0xa8, IB, alu.testALIb); def(0, 0xa9, IZ, alu.testAXIz);
def(0, 0xc2, IW | F64, br.retNear); def(0, 0xc3, F64, br.retNear);
def(0, 0xc6, M | IB, mov.movEbIb); def(0, 0xc7, M | IZ, mov.movEvIz);
def(0, 0xc8, F_ENTER | D64, stk.enter); def(0, 0xc9, D64, stk.leave);
def(0, 0xd7, 0, mov.xlat);
def(0, 0xe0, IB | F64, br.loop); def(0, 0xe1, IB | F64, br.loop); def(0, 0xe2, IB | F64, br.loop); def(0, 0xe3, IB | F64, br.loop);
def(0, 0xe4, IB, io.inOut); def(0, 0xe5, IB, io.inOut); def(0, 0xe6, IB, io.inOut); def(0, 0xe7, IB, io.inOut);
def(0, 0xe8, IZ | F64, br.callRel); def(0, 0xe9, IZ | F64, br.jmpRel); def(0, 0xeb, IB | F64, br.jmpRel);
def(0, 0xec, 0, io.inOut); def(0, 0xed, 0, io.inOut); def(0, 0xee, 0, io.inOut); def(0, 0xef, 0, io.inOut);
def(0, 0xf4, 0, sys.hlt);
def(0, 0xf5, 0, sys.flagOp); def(0, 0xf8, 0, sys.flagOp); def(0, 0xf9, 0, sys.flagOp); def(0, 0xfc, 0, sys.flagOp); def(0, 0xfd, 0, sys.flagOp);
def(0, 0xfa, 0, sys.cliSti); def(0, 0xfb, 0, sys.cliSti);
def(0, 0xfe, M | LK, alu.grp4);
def(0, 0xff, M | LK, grp5);
def(0, 0xf6, M | IB | F_GRPIMM | LK, grp3);
def(0, 0xf7, M | IZ | F_GRPIMM | LK, grp3);

def(0, 0x27, I64, bit.daaDas); def(0, 0x2f, I64, bit.daaDas); def(0, 0x37, I64, bit.aaaAas); def(0, 0x3f, I64, bit.aaaAas);
def(0, 0x69, M | IZ, md.imulGvEvI); def(0, 0x6b, M | IB, md.imulGvEvI);
def(0, 0x6c, 0, str.ins); def(0, 0x6d, 0, str.ins); def(0, 0x6e, 0, str.outs); def(0, 0x6f, 0, str.outs);
def(0, 0x8c, M, far.movFromSreg); def(0, 0x8e, M, far.movToSreg);
def(0, 0x9a, F_FAR | I64, far.callFarPtr); def(0, 0xea, F_FAR | I64, far.jmpFarPtr);
def(0, 0xa4, 0, str.movs); def(0, 0xa5, 0, str.movs); def(0, 0xa6, 0, str.cmps); def(0, 0xa7, 0, str.cmps);
def(0, 0xaa, 0, str.stos); def(0, 0xab, 0, str.stos); def(0, 0xac, 0, str.lods); def(0, 0xad, 0, str.lods);
def(0, 0xae, 0, str.scas); def(0, 0xaf, 0, str.scas);
def(0, 0xc0, M | IB, sh.grp2Ib); def(0, 0xc1, M | IB, sh.grp2Ib);
def(0, 0xd0, M, sh.grp2One); def(0, 0xd1, M, sh.grp2One); def(0, 0xd2, M, sh.grp2Cl); def(0, 0xd3, M, sh.grp2Cl);
def(0, 0xc4, M | I64, far.loadFarPtr); def(0, 0xc5, M | I64, far.loadFarPtr);
def(0, 0xca, IW, far.retFar); def(0, 0xcb, 0, far.retFar);
def(0, 0xcc, 0, far.intN); def(0, 0xcd, IB, far.intN); def(0, 0xce, 0, far.intN); def(0, 0xf1, 0, far.intN);
def(0, 0xcf, 0, far.iret);
def(0, 0xd4, IB | I64, bit.aam); def(0, 0xd5, IB | I64, bit.aad);
for (let b = 0xd8; b <= 0xdf; b++) def(0, b, M, fpu.x87);
def(0, 0x9b, 0, fpu.fwait);
def(0, 0xd6, I64, salc);

// ---- specialized register forms (decode.ts) ----
defSpecial(SPEC_ALU_RR32, alu.aluRR32);
defSpecial(SPEC_MOV_RR32, mov.movRR32);
defSpecial(SPEC_ALU_RR64, alu.aluRR64);
defSpecial(SPEC_MOV_RR64, mov.movRR64);
defSpecial(SPEC_INCDEC_R, alu.incDecR);
defSpecial(SPEC_MOV_RM, mov.movRM);

// ---- 0F map ----
def(1, 0x00, M, desc.grp6);
def(1, 0x01, M, grp7);
def(1, 0x02, M, desc.larLsl); def(1, 0x03, M, desc.larLsl);
def(1, 0x05, 0, far.syscall); def(1, 0x07, 0, far.sysret);
def(1, 0x34, 0, far.sysenter); def(1, 0x35, 0, far.sysexit);
def(1, 0x0d, M, sys.nopEv);
def(1, 0xa3, M, bit.btEvGv); def(1, 0xab, M | LK, bit.btEvGv); def(1, 0xb3, M | LK, bit.btEvGv); def(1, 0xbb, M | LK, bit.btEvGv);
def(1, 0xba, M | IB | LK, bit.grp8);
def(1, 0xbc, M, bit.bsfBsr); def(1, 0xbd, M, bit.bsfBsr); def(1, 0xb8, M, bit.popcnt);
def(1, 0xa4, M | IB, sh.shld); def(1, 0xa5, M, sh.shld); def(1, 0xac, M | IB, sh.shld); def(1, 0xad, M, sh.shld);
def(1, 0xaf, M, md.imulGvEv);
def(1, 0xb2, M, far.loadFarPtr); def(1, 0xb4, M, far.loadFarPtr); def(1, 0xb5, M, far.loadFarPtr);
def(1, 0xae, M, grp15);
def(1, 0x78, M, (c) => sys.vmxInsn(c, sys.VMX_REASONS.VMREAD)); def(1, 0x79, M, (c) => sys.vmxInsn(c, sys.VMX_REASONS.VMWRITE));

def(1, 0x06, 0, sys.clts);
def(1, 0x08, 0, sys.wbinvd); def(1, 0x09, 0, sys.wbinvd);
def(1, 0x0b, 0, sys.ud); def(1, 0xb9, M, sys.ud); def(1, 0xff, M, sys.ud);
for (let b = 0x18; b <= 0x1f; b++) def(1, b, M, sys.nopEv);
def(1, 0x20, M, sys.movCr); def(1, 0x22, M, sys.movCr);
def(1, 0x21, M, sys.movDr); def(1, 0x23, M, sys.movDr);
def(1, 0x30, 0, sys.wrmsr); def(1, 0x31, 0, rdtsc0); def(1, 0x32, 0, sys.rdmsr); def(1, 0x33, 0, sys.rdpmc);
for (let cc = 0; cc < 16; cc++) {
  def(1, 0x40 + cc, M, mov.cmov);
  def(1, 0x80 + cc, IZ | F64, br.jcc);
  def(1, 0x90 + cc, M, mov.setcc);
}
def(1, 0xa0, D64, stk.pushSeg); def(1, 0xa1, D64, stk.popSeg); def(1, 0xa8, D64, stk.pushSeg); def(1, 0xa9, D64, stk.popSeg);
def(1, 0xa2, 0, sys.cpuidInsn);
def(1, 0xb0, M | LK, mov.cmpxchg); def(1, 0xb1, M | LK, mov.cmpxchg);
def(1, 0xb6, M, mov.movzxsx); def(1, 0xb7, M, mov.movzxsx); def(1, 0xbe, M, mov.movzxsx); def(1, 0xbf, M, mov.movzxsx);
def(1, 0xc0, M | LK, mov.xadd); def(1, 0xc1, M | LK, mov.xadd);
def(1, 0xc7, M | LK, grp9);
for (let r = 0; r < 8; r++) def(1, 0xc8 + r, 0, mov.bswap);

// ---- 0F38 map ----
def(2, 0xf0, M, movbeOrCrc); def(2, 0xf1, M, movbeOrCrc);
def(2, 0x82, M, sys.invpcid);
def(2, 0x80, M, (c) => { if (!c.p66) c.unimplemented(0x280); sys.vmxInsn(c, sys.VMX_REASONS.INVEPT); });
def(2, 0x81, M, (c) => { if (!c.p66) c.unimplemented(0x281); sys.vmxInsn(c, sys.VMX_REASONS.INVVPID); });
def(2, 0xf6, M, bit.adcxAdox);

// ---- VEX maps (BMI1/BMI2) ----
def(5, 0xf2, M, bit.andn);
def(5, 0xf3, M, bit.blsGroup);
def(5, 0xf5, M, bit.bzhiPdepPext);
def(5, 0xf6, M, bit.mulx);
def(5, 0xf7, M, bit.bextrShx);
def(6, 0xf0, M | IB, bit.rorx);

function nop90(c: X86Cpu): void {
  if (c.rexB()) { mov.xchgAX(c); return; }
  if (c.rep === 1) sys.pause(c);
}

function movsxdOrArpl(c: X86Cpu): void {
  if (c.m64) { mov.movsxd(c); return; }
  desc.arpl(c);
}

function rdtsc0(c: X86Cpu): void { sys.rdtsc(c, false); }

/** 62: BOUND Gv, Ma (outside 64-bit mode): #BR unless lower <= index <= upper (signed). */
function bound(c: X86Cpu): void {
  if (c.mod === 3) c.raise(6, -1);
  const sz = c.osz, n = sz === 1 ? 2 : 4;
  const la = eaLin(c, 2 * n, 1);
  const sx = (v: number): number => (sz === 1 ? (v << 16) >> 16 : v | 0);
  const lower = sx(rdL(c, sz, la)), upper = sx(rdL(c, sz, (la + n) >>> 0));
  const idx = sx(c.getReg(sz, c.reg));
  if (idx < lower || idx > upper) c.raise(BR_VECTOR, -1);
}

/** FF: INC/DEC/CALL/CALLF/JMP/JMPF/PUSH Ev */
function grp5(c: X86Cpu): void {
  switch (c.reg & 7) {
    case 0: alu.incDecEv(c, false); return;
    case 1: alu.incDecEv(c, true); return;
    case 2: br.callEv(c); return;
    case 3: far.farIndirect(c, true); return;
    case 4: br.jmpEv(c); return;
    case 5: far.farIndirect(c, false); return;
    case 6: stk.pushEv(c); return;
    default: c.unimplemented(0xff00 | (c.reg & 7));
  }
}

/** F6/F7: TEST/NOT/NEG/MUL/IMUL/DIV/IDIV */
function grp3(c: X86Cpu): void {
  const sz = c.opb === 0xf6 ? 0 : c.osz;
  switch (c.reg & 7) {
    case 0: case 1: {
      const v = sz === 0 ? c.imm & 0xff : c.imm;
      const e = rdE1(c, sz);
      alu.logicFlags(c, sz, e & v, c.rhi & (c.imm >> 31));
      return;
    }
    case 2: alu.notE(c, sz); return;
    case 3: alu.negE(c, sz); return;
    case 4: md.mulOne(c, sz, false); return;
    case 5: md.mulOne(c, sz, true); return;
    case 6: md.divOne(c, sz, false); return;
    default: md.divOne(c, sz, true); return;
  }
}

function rdE1(c: X86Cpu, sz: number): number {
  if (c.mod === 3) return c.getReg(sz, c.rm);
  return rdE(c, sz);
}
import { rdE } from "./ops/operand.js";

/** 0F C7: CMPXCHG8B/16B (/1), XRSTORS (/3), XSAVEC (/4), XSAVES (/5), RDRAND (/6), RDSEED (/7) */
function grp9(c: X86Cpu): void {
  switch (c.reg & 7) {
    case 1: mov.cmpxchg8b(c); return;
    case 3:
      if (c.mod !== 3 && !c.rep && !c.p66) { xs.xrstors(c); return; }
      c.raise(UD_VECTOR, -1);
    case 4:
      if (c.mod !== 3 && !c.rep && !c.p66) { xs.xsavec(c); return; }
      c.raise(UD_VECTOR, -1);
    case 5:
      if (c.mod !== 3 && !c.rep && !c.p66) { xs.xsaves(c); return; }
      c.raise(UD_VECTOR, -1);
    case 6:
      if (c.mod === 3) { sys.rdrand(c); return; }
      sys.vmxInsn(c, c.p66 ? sys.VMX_REASONS.VMCLEAR : c.rep === 1 ? sys.VMX_REASONS.VMXON : sys.VMX_REASONS.VMPTRLD);
      return;
    case 7:
      if (c.mod === 3) { sys.rdrand(c); return; }
      sys.vmxInsn(c, sys.VMX_REASONS.VMPTRST);
      return;
    default: c.unimplemented(0x1c700 | (c.reg & 7));
  }
}

function movbeOrCrc(c: X86Cpu): void {
  if (c.rep === 2) { bit.crc32(c); return; }
  mov.movbe(c);
}

/** 0F 01: SGDT/SIDT/LGDT/LIDT/SMSW/LMSW/INVLPG and the register-form system instructions. */
function grp7(c: X86Cpu): void {
  const r = c.reg & 7;
  if (c.mod !== 3) {
    switch (r) {
      case 4: sys.smsw(c); return;
      case 6: sys.lmsw(c); return;
      case 7: sys.invlpg(c); return;
      case 5: c.unimplemented(0x10105);
      default: desc.gdtIdt(c); return;
    }
  }
  const modrm = 0xc0 | (r << 3) | (c.rm & 7);
  switch (modrm) {
    case 0xc1: sys.vmxInsn(c, sys.VMX_REASONS.VMCALL); return;
    case 0xc2: sys.vmxInsn(c, sys.VMX_REASONS.VMLAUNCH); return;
    case 0xc3: sys.vmxInsn(c, sys.VMX_REASONS.VMRESUME); return;
    case 0xc4: sys.vmxInsn(c, sys.VMX_REASONS.VMOFF); return;
    case 0xc8: sys.monitorMwait(c, false); return;
    case 0xc9: sys.monitorMwait(c, true); return;
    case 0xca: case 0xcb: clacStac(c); return;
    case 0xd0: sys.xgetbv(c); return;
    case 0xd1: sys.xsetbv(c); return;
    case 0xd4: sys.vmxInsn(c, sys.VMX_REASONS.VMFUNC); return;
    case 0xf8: sys.swapgs(c); return;
    case 0xf9: sys.rdtsc(c, true); return;
  }
  if (r === 4) { sys.smsw(c); return; }
  if (r === 6) { sys.lmsw(c); return; }
  c.unimplemented(0x10100 | modrm);
}

/** 0F 01 CA CLAC / CB STAC (CPL 0, SMAP) */
function clacStac(c: X86Cpu): void {
  if (!(c.state.cr4 & (1 << 21))) c.raise(6, -1);
  sys.requireCpl0(c);
  if (c.rm === 2) c.fl &= ~0x40000; else c.fl |= 0x40000;
  c.modeFlagsChanged();
}

/**
 * 0F AE: fences (no-ops on this in-order core), RD/WRFS/GSBASE, and the memory forms without a
 * prefix: FXSAVE, FXRSTOR, LDMXCSR, STMXCSR, XSAVE, XRSTOR, XSAVEOPT, CLFLUSH (66: CLFLUSHOPT).
 */
function grp15(c: X86Cpu): void {
  const r = c.reg & 7;
  if (c.mod === 3) {
    if (r >= 5 && !c.rep) return; // LFENCE / MFENCE / SFENCE
    if (r < 4 && c.rep === 1) { fsgsbase(c, r); return; }
    c.unimplemented(0x1ae00 | (c.rep << 4) | r);
  }
  if (r === 7 && !c.rep) return; // CLFLUSH / CLFLUSHOPT: no caches to flush
  if (!c.rep && !c.p66) {
    switch (r) {
      case 0: xs.fxsave(c); return;
      case 1: xs.fxrstor(c); return;
      case 2: xs.ldmxcsr(c); return;
      case 3: xs.stmxcsr(c); return;
      case 4: xs.xsave(c); return;
      case 5: xs.xrstor(c); return;
      case 6: xs.xsaveopt(c); return;
    }
  }
  c.unimplemented(0x1ae00 | (c.rep << 4) | r);
}

/** F3 0F AE /0-/3 (register): RDFSBASE, RDGSBASE, WRFSBASE, WRGSBASE (64-bit mode, CR4.FSGSBASE). */
function fsgsbase(c: X86Cpu, r: number): void {
  if (!c.m64 || !(c.state.cr4 & (1 << 16))) c.raise(6, -1);
  const st = c.state;
  const s = r & 1 ? 5 : 4;
  const sz = c.osz === 3 ? 3 : 2;
  if (r < 2) {
    const b = st.segBase[s];
    c.setReg(sz, c.rm, b | 0, Math.floor(b / 4294967296) | 0);
    return;
  }
  const lo = c.getReg(sz, c.rm), hi = sz === 3 ? c.rhi : 0;
  const v = hi * 4294967296 + (lo >>> 0);
  if (v < -c.canon || v >= c.canon) c.raise(13, 0);
  st.segBase[s] = v;
  c.segCache(s);
}

/** D6 (undocumented SALC) is #UD on this CPU, recorded as unimplemented. */
function salc(c: X86Cpu): void {
  c.unimplemented(0xd6);
}

