/**
 * The opcode table: for every implemented opcode, its operand format (decode.ts flags) and its
 * handler. Everything not listed decodes as an unimplemented opcode and raises #UD with
 * cpu.lastUnimplemented = (map << 8) | opcode. Maps: 0 one-byte, 1 0F, 2 0F38, 3 0F3A,
 * 4-6 VEX 0F/0F38/0F3A (SDM Vol. 2 Appendix A).
 */
import type { X86Cpu } from "./cpu.js";
import { def, F_MODRM as M, F_IB as IB, F_IW as IW, F_IZ as IZ, F_IV as IV, F_ENTER, F_MOFFS, F_D64 as D64,
  F_F64 as F64, F_I64 as I64, F_LOCK as LK, F_GRPIMM } from "./decode.js";
import * as alu from "./ops/alu.js";
import * as mov from "./ops/mov.js";
import * as br from "./ops/branch.js";
import * as stk from "./ops/stack.js";
import * as sys from "./ops/system.js";
import * as io from "./ops/io.js";
import { UD_VECTOR } from "./fault.js";

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

// ---- 0F map ----
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

function nop90(c: X86Cpu): void {
  if (c.rexB()) { mov.xchgAX(c); return; }
  if (c.rep === 1) sys.pause(c);
}

function movsxdOrArpl(c: X86Cpu): void {
  if (c.m64) { mov.movsxd(c); return; }
  c.unimplemented(0x63);
}

function rdtsc0(c: X86Cpu): void { sys.rdtsc(c, false); }

/** FF: INC/DEC/CALL/CALLF/JMP/JMPF/PUSH Ev */
function grp5(c: X86Cpu): void {
  switch (c.reg & 7) {
    case 0: alu.incDecEv(c, false); return;
    case 1: alu.incDecEv(c, true); return;
    case 2: br.callEv(c); return;
    case 4: br.jmpEv(c); return;
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
    default: c.unimplemented(c.opb << 8 | (c.reg & 7));
  }
}

function rdE1(c: X86Cpu, sz: number): number {
  if (c.mod === 3) return c.getReg(sz, c.rm);
  return rdE(c, sz);
}
import { rdE } from "./ops/operand.js";

/** 0F C7: CMPXCHG8B/16B (/1), RDRAND (/6), RDSEED (/7) */
function grp9(c: X86Cpu): void {
  switch (c.reg & 7) {
    case 1: mov.cmpxchg8b(c); return;
    case 6: case 7: sys.rdrand(c); return;
    default: c.unimplemented(0x1c700 | (c.reg & 7));
  }
}

function movbeOrCrc(c: X86Cpu): void {
  if (c.rep === 2) c.unimplemented(0x200 | c.opb);
  mov.movbe(c);
}

export { UD_VECTOR };
