/**
 * Segment-register loads and far control transfers: MOV Sreg, LDS/LES/LSS/LFS/LGS, JMP/CALL far
 * (direct, through call gates with the inner-stack switch, SDM 5.8.4-5.8.6), RET far (to the
 * same or an outer privilege), INT n/INT3/INTO/INT1, IRET, SYSCALL/SYSRET, SYSENTER/SYSEXIT.
 */
import type { X86Cpu } from "../cpu.js";
import { INTR_BLOCKING_MOV_SS } from "../state.js";
import { flagsSync, getOF, IOPL, IF, RF, VM, RFLAGS_VALID } from "../flags.js";
import { GP_VECTOR, UD_VECTOR, NP_VECTOR, SS_VECTOR, BP_VECTOR, OF_VECTOR, DB_VECTOR, EV_SW_INTR, EV_SW_EXC, EV_PRIV_SW_EXC } from "../fault.js";
import { linAddr, rdL, wrL, privWr } from "../mmu.js";
import { eaLin, rdE, wrE, push, osBytes } from "./operand.js";
import { D1, D2, readDesc, loadSeg, loadReal, loadCs, loadCache, loadNull, checkCodeTarget, tssStack, checkInnerSs, descLin,
  SEG_CS, SEG_SS, SEG_ES, SEG_DS, SEG_FS, SEG_GS, nullDataSegsForCpl } from "../segment.js";
import { iret as iretImpl, v86IntRedirected, v86RedirectInt } from "../interrupt.js";
import { hookBegin } from "./system.js";

const stk = new Float64Array(2);

/** 8C: MOV Ev, Sreg */
export function movFromSreg(c: X86Cpu): void {
  const s = c.reg & 7;
  if (s > 5) c.raise(UD_VECTOR, -1);
  const v = c.state.segSel[s];
  if (c.mod === 3) c.setReg(c.osz, c.rm, v, 0);
  else wrE(c, 1, v, 0);
}

/** 8E: MOV Sreg, Ew (not CS; MOV SS blocks interrupts for one instruction) */
export function movToSreg(c: X86Cpu): void {
  const s = c.reg & 7;
  if (s === SEG_CS || s > 5) c.raise(UD_VECTOR, -1);
  loadSeg(c, s, rdE(c, 1) & 0xffff);
  if (s === SEG_SS) { c.state.interruptibility |= INTR_BLOCKING_MOV_SS; c.modeFlagsChanged(); }
}

/** C4 LES, C5 LDS (outside 64-bit mode), 0F B2 LSS, 0F B4 LFS, 0F B5 LGS: load far pointer */
export function loadFarPtr(c: X86Cpu): void {
  if (c.mod === 3) c.raise(UD_VECTOR, -1);
  const osz = c.osz, n = osBytes(osz);
  let s: number;
  if (c.op < 256) s = c.opb === 0xc4 ? SEG_ES : SEG_DS;
  else s = c.opb === 0xb2 ? SEG_SS : c.opb === 0xb4 ? SEG_FS : SEG_GS;
  const la = eaLin(c, n + 2, 1);
  const off = rdL(c, osz, la), offHi = c.rhi;
  const sel = rdL(c, 1, c.m64 ? la + n : (la + n) >>> 0);
  loadSeg(c, s, sel);
  c.setReg(osz, c.reg, off, offHi);
}

function pushWord(c: X86Cpu, n: number, v: number): void {
  push(c, n, v | 0, Math.floor(v / 4294967296) | 0);
}

/** Far JMP/CALL to sel:off (SDM Vol. 2 JMP/CALL "far" operation). */
export function farTransfer(c: X86Cpu, sel: number, off: number, call: boolean): void {
  const st = c.state;
  const osz = c.osz, n = osBytes(osz);
  if (!c.pe || c.v86) {
    const t = osz === 1 ? off & 0xffff : off >>> 0;
    if (call) { pushWord(c, n, st.segSel[SEG_CS]); pushWord(c, n, st.rip); }
    loadReal(c, SEG_CS, sel);
    st.rip = t;
    c.stateChanged();
    return;
  }
  if ((sel & ~3) === 0) c.raise(GP_VECTOR, 0);
  const d = D1;
  if (!readDesc(c, sel, d, false)) c.raise(GP_VECTOR, sel & 0xfffc);
  if (d.s) {
    checkCodeTarget(c, sel, d, c.cpl, true);
    const long = (st.efer & (1 << 10)) !== 0 && (d.hi & 0x200000) !== 0;
    const t = long ? off : osz === 1 ? off & 0xffff : off >>> 0;
    if (long ? t < -c.canon || t >= c.canon : t > d.limit) c.raise(GP_VECTOR, 0);
    if (call) {
      // Both pushes are checked before any state changes (a fault restarts the CALL).
      const ret = st.rip, cs = st.segSel[SEG_CS];
      const sp = c.regAddr(4, c.ssz);
      const a1 = stackLin(c, sp, -n, n), a2 = stackLin(c, sp, -2 * n, n);
      wrL(c, osz, a1, cs, 0); wrL(c, osz, a2, ret | 0, Math.floor(ret / 4294967296) | 0);
      c.setRegAddr(4, c.ssz, spWrap(c, sp - 2 * n));
    }
    loadCs(c, sel, d, c.cpl);
    st.rip = t;
    c.stateChanged();
    return;
  }
  const type = d.type;
  const lma = (st.efer & (1 << 10)) !== 0;
  if (type === 1 || type === 9 || type === 5) {
    // TSS or task gate: a task switch.
    const v = c.vmx;
    if (v !== null) { hookBegin(c); v.taskSwitch(sel, call ? 0 : 2, c.ilen); }
    c.unimplemented(0x2000 | type); // hardware task switching on bare metal is not implemented
  }
  const isGate = lma ? type === 0xc : type === 4 || type === 0xc;
  if (!isGate) c.raise(GP_VECTOR, sel & 0xfffc);
  if (d.dpl < c.cpl || d.dpl < (sel & 3)) c.raise(GP_VECTOR, sel & 0xfffc);
  if (!d.present) c.raise(NP_VECTOR, sel & 0xfffc);
  const gate32 = type === 0xc;
  let gd = d;
  if (lma) { if (!readDesc(c, sel, D2, true)) c.raise(GP_VECTOR, sel & 0xfffc); gd = D2; }
  const csSel = gd.lo >>> 16;
  let target = gate32 ? ((gd.lo & 0xffff) | (gd.hi & 0xffff0000)) >>> 0 : gd.lo & 0xffff;
  if (lma) target = gd.hi2 * 4294967296 + target;
  const params = gd.hi & 0x1f;
  if ((csSel & ~3) === 0) c.raise(GP_VECTOR, 0);
  const cd = lma ? D1 : D2;
  if (!readDesc(c, csSel, cd, false)) c.raise(GP_VECTOR, csSel & 0xfffc);
  if (!cd.isCode() || cd.dpl > c.cpl) c.raise(GP_VECTOR, csSel & 0xfffc);
  const conforming = (cd.type & 4) !== 0;
  if (!call && !conforming && cd.dpl !== c.cpl) c.raise(GP_VECTOR, csSel & 0xfffc);
  if (lma && (!(cd.hi & 0x200000) || (cd.hi & 0x400000))) c.raise(GP_VECTOR, csSel & 0xfffc);
  if (!cd.present) c.raise(NP_VECTOR, csSel & 0xfffc);
  if (lma ? target < -c.canon || target >= c.canon : target > cd.limit) c.raise(GP_VECTOR, 0);
  const gn = lma ? 8 : gate32 ? 4 : 2;
  if (!call) {
    loadCs(c, csSel, cd, c.cpl);
    st.rip = target;
    c.stateChanged();
    return;
  }
  const retCs = st.segSel[SEG_CS], retIp = st.rip;
  if (!conforming && cd.dpl < c.cpl) {
    // Inner privilege: new stack from the TSS, old SS:rSP and the parameters pushed on it.
    const newCpl = cd.dpl;
    tssStack(c, newCpl, stk);
    const oldSs = st.segSel[SEG_SS], oldSp = c.regAddr(4, c.ssz);
    const words: number[] = [oldSs, oldSp];
    if (!lma) for (let i = params - 1; i >= 0; i--) words.push(rdL(c, gn === 4 ? 2 : 1, stackLin(c, oldSp, i * gn, gn)) >>> 0);
    words.push(retCs, retIp);
    if (lma) {
      let rsp = stk[0];
      const addrs: number[] = [];
      for (let k = 0; k < words.length; k++) { rsp -= 8; addrs.push(rsp); }
      for (let k = 0; k < words.length; k++) privWr(c, addrs[k], 8, words[k] | 0, Math.floor(words[k] / 4294967296) | 0, newCpl);
      loadCs(c, csSel, cd, newCpl);
      st.segSel[SEG_SS] = newCpl; st.segBase[SEG_SS] = 0; st.segLimit[SEG_SS] = 0; st.segAr[SEG_SS] = (1 << 16) | (newCpl << 5) | 0x13;
      c.stateChanged();
      c.setRegAddr(4, 3, rsp);
    } else {
      const nss = stk[1], sd = D1 === cd ? D2 : D1;
      checkInnerSs(c, nss, newCpl, sd);
      const big = (sd.hi & 0x400000) !== 0;
      let sp = stk[0];
      const m = big ? 0xffffffff : 0xffff;
      const addrs: number[] = [];
      for (let k = 0; k < words.length; k++) { sp = ((sp - gn) & m) >>> 0; addrs.push(descLin(c, sd, sp, gn, nss & 0xfffc)); }
      for (let k = 0; k < words.length; k++) privWr(c, addrs[k], gn, words[k], 0, newCpl);
      loadCache(c, SEG_SS, (nss & ~3) | newCpl, sd);
      loadCs(c, csSel, cd, newCpl);
      c.stateChanged();
      c.setRegAddr(4, big ? 2 : 1, sp);
    }
  } else {
    const sp = c.regAddr(4, c.ssz);
    const a1 = stackLin(c, sp, -gn, gn), a2 = stackLin(c, sp, -2 * gn, gn);
    wrL(c, gn === 8 ? 3 : gn === 4 ? 2 : 1, a1, retCs, 0);
    wrL(c, gn === 8 ? 3 : gn === 4 ? 2 : 1, a2, retIp | 0, Math.floor(retIp / 4294967296) | 0);
    c.setRegAddr(4, c.ssz, spWrap(c, sp - 2 * gn));
    loadCs(c, csSel, cd, c.cpl);
    c.stateChanged();
  }
  st.rip = target;
}

function spWrap(c: X86Cpu, v: number): number {
  return c.ssz === 1 ? v & 0xffff : c.ssz === 2 ? v >>> 0 : v;
}

function stackLin(c: X86Cpu, sp: number, delta: number, n: number): number {
  return linAddr(c, SEG_SS, spWrap(c, sp + delta), n, delta < 0 ? 2 : 1);
}

/** EA: JMP ptr16:16/32 (invalid in 64-bit mode) */
export function jmpFarPtr(c: X86Cpu): void { farTransfer(c, c.imm2 & 0xffff, c.osz === 1 ? c.imm & 0xffff : c.imm >>> 0, false); }
/** 9A: CALL ptr16:16/32 */
export function callFarPtr(c: X86Cpu): void { farTransfer(c, c.imm2 & 0xffff, c.osz === 1 ? c.imm & 0xffff : c.imm >>> 0, true); }

/** FF /3 CALL m16:16/32/64, FF /5 JMP m16:16/32/64 */
export function farIndirect(c: X86Cpu, call: boolean): void {
  if (c.mod === 3) c.raise(UD_VECTOR, -1);
  const osz = c.osz, n = osBytes(osz);
  const la = eaLin(c, n + 2, 1);
  const lo = rdL(c, osz, la), hi = c.rhi;
  const sel = rdL(c, 1, c.m64 ? la + n : (la + n) >>> 0) & 0xffff;
  const off = osz === 3 ? hi * 4294967296 + (lo >>> 0) : osz === 2 ? lo >>> 0 : lo & 0xffff;
  farTransfer(c, sel, off, call);
}

/** CB / CA iw: RET far */
export function retFar(c: X86Cpu): void {
  const st = c.state;
  const osz = c.osz, n = osBytes(osz);
  const imm = c.opb === 0xca ? c.imm & 0xffff : 0;
  const sp = c.regAddr(4, c.ssz);
  const rd = (k: number): number => {
    const v = rdL(c, osz, stackLin(c, sp, k, n));
    return n === 8 ? c.rhi * 4294967296 + (v >>> 0) : n === 4 ? v >>> 0 : v & 0xffff;
  };
  const ip = rd(0), cs = rd(n) & 0xffff;
  if (!c.pe || c.v86) {
    if (ip > st.segLimit[SEG_CS] && !c.v86) c.raise(GP_VECTOR, 0);
    loadReal(c, SEG_CS, cs);
    st.rip = ip;
    c.setRegAddr(4, c.ssz, spWrap(c, sp + 2 * n + imm));
    c.stateChanged();
    return;
  }
  if ((cs & ~3) === 0) c.raise(GP_VECTOR, 0);
  const d = D1;
  if (!readDesc(c, cs, d, false)) c.raise(GP_VECTOR, cs & 0xfffc);
  const rpl = cs & 3;
  if (!d.isCode() || rpl < c.cpl) c.raise(GP_VECTOR, cs & 0xfffc);
  if ((d.type & 4) ? d.dpl > rpl : d.dpl !== rpl) c.raise(GP_VECTOR, cs & 0xfffc);
  if (!d.present) c.raise(NP_VECTOR, cs & 0xfffc);
  const long = (st.efer & (1 << 10)) !== 0 && (d.hi & 0x200000) !== 0;
  if (long ? ip < -c.canon || ip >= c.canon : ip > d.limit) c.raise(GP_VECTOR, 0);
  if (rpl === c.cpl) {
    loadCs(c, cs, d, rpl);
    c.setRegAddr(4, c.ssz, spWrap(c, sp + 2 * n + imm));
    st.rip = ip;
    c.stateChanged();
    return;
  }
  // Return to an outer privilege level: SS:rSP follow the immediate-adjusted frame.
  const nsp = rd(2 * n + imm), nss = rd(3 * n + imm) & 0xffff;
  const sd = D2;
  const lma = (st.efer & (1 << 10)) !== 0;
  if ((nss & ~3) === 0) {
    if (!(lma && long && rpl !== 3)) c.raise(GP_VECTOR, 0);
  } else {
    if (!readDesc(c, nss, sd, false)) c.raise(GP_VECTOR, nss & 0xfffc);
    if ((nss & 3) !== rpl || sd.dpl !== rpl || !sd.isData() || !(sd.type & 2)) c.raise(GP_VECTOR, nss & 0xfffc);
    if (!sd.present) c.raise(SS_VECTOR, nss & 0xfffc);
  }
  loadCs(c, cs, d, rpl);
  if ((nss & ~3) === 0) { loadNull(c, SEG_SS, nss); st.segAr[SEG_SS] |= rpl << 5; } else loadCache(c, SEG_SS, nss, sd);
  c.stateChanged();
  c.setRegAddr(4, c.ssz, spWrap(c, nsp + imm));
  st.rip = ip;
  nullDataSegsForCpl(c, rpl);
}

/** CD ib: INT n; CC: INT3; CE: INTO; F1: INT1 (ICEBP) */
export function intN(c: X86Cpu): void {
  const st = c.state;
  const len = c.ilen;
  switch (c.opb) {
    case 0xcc: st.rip = c.curRip; c.deliverEvent(BP_VECTOR, EV_SW_EXC, -1, len); return;
    case 0xce:
      if (c.m64) c.raise(UD_VECTOR, -1);
      if (getOF(c)) { st.rip = c.curRip; c.deliverEvent(OF_VECTOR, EV_SW_EXC, -1, len); }
      return;
    case 0xf1: st.rip = c.curRip; c.deliverEvent(DB_VECTOR, EV_PRIV_SW_EXC, -1, len); return;
    default: {
      // Virtual-8086 mode (SDM Vol. 3 Table 20-2): with CR4.VME the TSS redirection bitmap may
      // send INT n to the 8086 handler; otherwise IOPL < 3 is #GP(0).
      if (c.v86) {
        const vector = c.imm & 0xff;
        if ((st.cr4 & 1) && v86IntRedirected(c, vector)) { v86RedirectInt(c, vector, st.rip); return; }
        if (((c.fl & IOPL) >>> 12) < 3) c.raise(GP_VECTOR, 0);
      }
      st.rip = c.curRip;
      c.deliverEvent(c.imm & 0xff, EV_SW_INTR, -1, len);
    }
  }
}

/** CF: IRET */
export function iret(c: X86Cpu): void { iretImpl(c); }

const AR_CODE64 = 0xa09b, AR_DATA = 0xc093, AR_CODE32 = 0xc09b;

function flatSeg(c: X86Cpu, s: number, sel: number, ar: number): void {
  const st = c.state;
  st.segSel[s] = sel; st.segBase[s] = 0; st.segLimit[s] = 0xffffffff; st.segAr[s] = ar;
}

/** 0F 05: SYSCALL (64-bit mode) */
export function syscall(c: X86Cpu): void {
  const st = c.state;
  if (!c.m64 || !(st.efer & 1)) c.raise(UD_VECTOR, -1);
  flagsSync(c);
  const next = st.rip;
  c.setReg(3, 1, next | 0, Math.floor(next / 4294967296) | 0);
  c.setReg(3, 11, (c.fl | 2) & ~RF, 0);
  const sel = c.starHi & 0xfffc;
  flatSeg(c, SEG_CS, sel, AR_CODE64);
  flatSeg(c, SEG_SS, (sel + 8) & 0xfffc, AR_DATA);
  c.fl = (c.fl & ~c.fmask & ~RF) | 2;
  st.rip = c.lstar;
  c.stateChanged();
}

/** 0F 07: SYSRET (REX.W: to 64-bit mode) */
export function sysret(c: X86Cpu): void {
  const st = c.state;
  if (!(st.efer & 1) || !(st.efer & (1 << 10))) c.raise(UD_VECTOR, -1);
  if (!c.m64 || c.cpl !== 0) c.raise(GP_VECTOR, 0);
  const to64 = c.osz === 3;
  const g = st.gpr;
  const rip = to64 ? g[3] * 4294967296 + (g[2] >>> 0) : g[2] >>> 0;
  if (to64 && (rip < -c.canon || rip >= c.canon)) c.raise(GP_VECTOR, 0);
  const base = (c.starHi >>> 16) & 0xffff;
  if (to64) flatSeg(c, SEG_CS, ((base + 16) & 0xfffc) | 3, AR_CODE64 | 0x60);
  else flatSeg(c, SEG_CS, base | 3, AR_CODE32 | 0x60);
  st.segSel[SEG_SS] = ((base + 8) & 0xfffc) | 3;
  st.segAr[SEG_SS] = AR_DATA | 0x60;
  c.fl = ((g[22] & 0x3c7fd7) | 2) & RFLAGS_VALID;
  c.fl |= 2;
  st.rip = rip;
  c.stateChanged();
  c.modeFlagsChanged();
}

/** 0F 34: SYSENTER */
export function sysenter(c: X86Cpu): void {
  const st = c.state;
  if (!c.pe) c.raise(GP_VECTOR, 0);
  const cs = c.sysenterCs & 0xfffc;
  if (cs === 0) c.raise(GP_VECTOR, 0);
  const lma = (st.efer & (1 << 10)) !== 0;
  flagsSync(c);
  c.fl &= ~(VM | IF | RF);
  flatSeg(c, SEG_CS, cs, lma ? AR_CODE64 : AR_CODE32);
  flatSeg(c, SEG_SS, (cs + 8) & 0xfffc, AR_DATA);
  st.rip = lma ? c.sysenterEip : c.sysenterEip >>> 0;
  c.stateChanged();
  c.setRegAddr(4, lma ? 3 : 2, lma ? c.sysenterEsp : c.sysenterEsp >>> 0);
  c.modeFlagsChanged();
}

/** 0F 35: SYSEXIT (REX.W: to 64-bit mode) */
export function sysexit(c: X86Cpu): void {
  const st = c.state;
  const cs = c.sysenterCs & 0xfffc;
  if (!c.pe || c.v86 || c.cpl !== 0 || cs === 0) c.raise(GP_VECTOR, 0);
  const to64 = c.osz === 3;
  const g = st.gpr;
  const rip = to64 ? g[5] * 4294967296 + (g[4] >>> 0) : g[4] >>> 0;
  const rsp = to64 ? g[3] * 4294967296 + (g[2] >>> 0) : g[2] >>> 0;
  if (to64 && (rip < -c.canon || rip >= c.canon || rsp < -c.canon || rsp >= c.canon)) c.raise(GP_VECTOR, 0);
  flatSeg(c, SEG_CS, ((cs + (to64 ? 32 : 16)) & 0xfffc) | 3, (to64 ? AR_CODE64 : AR_CODE32) | 0x60);
  flatSeg(c, SEG_SS, ((cs + (to64 ? 40 : 24)) & 0xfffc) | 3, AR_DATA | 0x60);
  st.rip = rip;
  c.stateChanged();
  c.setRegAddr(4, to64 ? 3 : 2, rsp);
}

