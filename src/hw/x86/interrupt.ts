/**
 * Event delivery through the IDT/IVT (SDM Vol. 3A ch. 6): real-mode IVT, protected-mode
 * interrupt/trap gates with the TSS stack switch (and from virtual-8086 mode), IA-32e 16-byte
 * gates with IST, double fault and triple fault (SDM 6.15 Table 6-5), NMI blocking, and IRET
 * in every mode. State is committed only after every read, check and push has succeeded, so a
 * fault during delivery leaves the interrupted context intact for the double-fault logic.
 */
import type { X86Cpu } from "./cpu.js";
import { ActivityState, INTR_BLOCKING_NMI, INTR_BLOCKING_STI, INTR_BLOCKING_MOV_SS, AR_UNUSABLE } from "./state.js";
import { FAULT, GP_VECTOR, NP_VECTOR, SS_VECTOR, TS_VECTOR, DF_VECTOR, PF_VECTOR, DB_VECTOR,
  EV_NMI, EV_HW_EXC, EV_SW_INTR, EV_PRIV_SW_EXC, EV_SW_EXC, hasErrorCode, exceptionClass,
  CLASS_CONTRIBUTORY, CLASS_PF } from "./fault.js";
import { flagsSync, TF, IF, NT, RF, VM, AC, IOPL, VIF, VIP, RFLAGS_VALID } from "./flags.js";
import { sysRd, privWr, privRd, linAddr } from "./mmu.js";
import { D1, D2, readDesc, loadCs, tssStack, checkInnerSs, descLin, loadCache, loadNull, loadReal,
  SEG_CS, SEG_SS, SEG_DS, SEG_ES, SEG_FS, SEG_GS, nullDataSegsForCpl } from "./segment.js";

const stk = new Float64Array(2);
/** Exceptions of the fault class (SDM Table 6-1). */
const FAULT_VECTORS = new Set([0, 5, 6, 7, 10, 11, 12, 13, 14, 16, 17, 19, 20, 21]);
let pushRf = 0;

/** Deliver a hardware exception (fault/abort or #DB trap) raised by the core. */
export function deliverException(c: X86Cpu, vector: number, errorCode: number, extra: number, insnLen: number): void {
  deliverLoop(c, vector, insnLen ? EV_SW_EXC : EV_HW_EXC, errorCode, extra, insnLen, false);
}

/**
 * Deliver an event of VMX interruption type `type` (injection, INT n, INT3, INTO, INT1). An
 * injected #PF or #DB leaves CR2, DR6 and DR7 as they are: whoever injects it sets them (SDM
 * Vol. 3C 27.6.1.2); only an exception the delivery itself raises writes them.
 */
export function deliverEvent(c: X86Cpu, vector: number, type: number, errorCode: number, insnLen: number): void {
  deliverLoop(c, vector, type, errorCode, 0, insnLen, true);
}

function deliverLoop(c: X86Cpu, vector: number, type: number, errorCode: number, extra: number, insnLen: number, injected: boolean): void {
  const st = c.state;
  const rip0 = st.rip;
  for (;;) {
    try {
      const v = c.vmx;
      if (v !== null && (type === EV_HW_EXC || type === EV_SW_EXC || type === EV_PRIV_SW_EXC)) {
        v.exception(vector, errorCode, extra, type === EV_HW_EXC ? 0 : insnLen);
      }
      if (type === EV_HW_EXC && !injected) {
        if (vector === PF_VECTOR) st.cr2 = extra;
        else if (vector === DB_VECTOR) { st.dr[6] = (st.dr[6] | extra | 0xffff0ff0) >>> 0; st.dr[7] = st.dr[7] & ~0x2000; }
      }
      if (v !== null) v.beginEventDelivery(vector, type, errorCode, insnLen);
      const ret = type === EV_SW_INTR || type === EV_SW_EXC || type === EV_PRIV_SW_EXC ? advance(c, rip0, insnLen) : rip0;
      // Faults save EFLAGS with RF set so the restarted instruction does not re-trigger an
      // instruction breakpoint (SDM 17.3.1.1); traps, aborts and interrupts save it as is.
      pushRf = type === EV_HW_EXC && FAULT_VECTORS.has(vector) ? RF : 0;
      if (!c.pe) deliverReal(c, vector, ret);
      else if (st.efer & (1 << 10)) deliverLong(c, vector, type, errorCode, ret);
      else deliverProt(c, vector, type, errorCode, ret);
      if (type === EV_NMI) st.interruptibility |= INTR_BLOCKING_NMI;
      st.interruptibility &= ~(INTR_BLOCKING_STI | INTR_BLOCKING_MOV_SS);
      c.eventDelivered = 1;
      c.modeFlagsChanged();
      if (v !== null) v.endEventDelivery();
      return;
    } catch (e) {
      if (e !== FAULT) throw e;
      st.rip = rip0;
      const nv = c.faultVec;
      const prev = type === EV_HW_EXC ? exceptionClass(vector) : -1;
      const cur = exceptionClass(nv);
      const fold = (prev === CLASS_CONTRIBUTORY && cur === CLASS_CONTRIBUTORY) || (prev === CLASS_PF && (cur === CLASS_PF || cur === CLASS_CONTRIBUTORY));
      // In VMX non-root operation the exception bitmap is consulted for the second exception
      // before it would become #DF or a triple fault (SDM Vol. 3C 26.2, 28.2.4: the VM exit
      // records the first event in the IDT-vectoring information).
      if ((fold || (type === EV_HW_EXC && vector === DF_VECTOR)) && c.vmx !== null) c.vmx.exception(nv, c.faultErr, c.faultExtra, 0);
      if (type === EV_HW_EXC && vector === DF_VECTOR) { tripleFault(c); return; }
      if (fold) {
        vector = DF_VECTOR; errorCode = 0; extra = 0;
      } else {
        vector = nv; errorCode = c.faultErr; extra = c.faultExtra;
      }
      type = EV_HW_EXC; insnLen = 0; injected = false;
    }
  }
}

/** Triple fault: shutdown on bare metal; a VM exit in VMX non-root operation (SDM 6.15 interrupt 8, 26.2). */
export function tripleFault(c: X86Cpu): void {
  if (c.vmx !== null) c.vmx.tripleFault();
  c.state.activityState = ActivityState.SHUTDOWN;
}

function advance(c: X86Cpu, rip: number, len: number): number {
  if (c.m64) return rip + len;
  return c.csz === 2 ? (rip + len) >>> 0 : (rip + len) & 0xffff;
}

/** EXT bit of IDT/segment error codes: set for events external to the program (SDM 6.13). */
function extBit(type: number): number {
  return type === EV_SW_INTR || type === EV_SW_EXC ? 0 : 1;
}

/** Real-address mode: the IVT (SDM 20.1.4). */
function deliverReal(c: X86Cpu, vector: number, ret: number): void {
  const st = c.state;
  if (vector * 4 + 3 > st.idtrLimit) c.raise(GP_VECTOR, vector * 8 + 2);
  flagsSync(c);
  ivtTransfer(c, (st.idtrBase + vector * 4) >>> 0, c.fl & 0xffff, IF | TF | AC | RF, ret);
}

/** Push FLAGS image, CS, IP on the 16-bit stack, clear `clear` in RFLAGS and jump to the IVT entry at linear `ivt`. */
function ivtTransfer(c: X86Cpu, ivt: number, image: number, clear: number, ret: number): void {
  const st = c.state;
  const ip = sysRd(c, ivt, 2), cs = sysRd(c, (ivt + 2) >>> 0, 2);
  const sp = c.regAddr(4, c.ssz);
  const m = c.ssz === 2 ? 0xffffffff : 0xffff;
  const a1 = linAddr(c, SEG_SS, (sp - 2) & m, 2, 2), a2 = linAddr(c, SEG_SS, (sp - 4) & m, 2, 2), a3 = linAddr(c, SEG_SS, (sp - 6) & m, 2, 2);
  privWr(c, a1, 2, image, 0, 0);
  privWr(c, a2, 2, st.segSel[SEG_CS], 0, 0);
  privWr(c, a3, 2, ret & 0xffff, 0, 0);
  c.setRegAddr(4, c.ssz, (sp - 6) & m);
  c.fl &= ~clear;
  loadReal(c, SEG_CS, cs);
  st.rip = ip;
  c.modeFlagsChanged();
}

/**
 * INT n in virtual-8086 mode with CR4.VME (SDM Vol. 3 20.3.3, Table 20-2): true when the
 * interrupt's bit in the TSS redirection bitmap (the 32 bytes below the I/O map base) is clear,
 * so it goes to the 8086 handler instead of the protected-mode IDT. #GP(0) if the bitmap lies
 * beyond the TSS limit.
 */
export function v86IntRedirected(c: X86Cpu, vector: number): boolean {
  const st = c.state;
  const type = st.segAr[7] & 0xf;
  if (type !== 0xb && type !== 0x9) c.raise(GP_VECTOR, 0);
  const base = st.segBase[7], limit = st.segLimit[7];
  if (limit < 0x67) c.raise(GP_VECTOR, 0);
  const off = (sysRd(c, (base + 0x66) >>> 0, 2) & 0xffff) - 32 + (vector >>> 3);
  if (off < 0 || off > limit) c.raise(GP_VECTOR, 0);
  return ((sysRd(c, (base + off) >>> 0, 1) >>> (vector & 7)) & 1) === 0;
}

/**
 * Redirect INT n to the 8086 handler in the IVT at linear address 0 (methods 4 and 6 of SDM
 * Table 20-2). With IOPL < 3 the pushed FLAGS carry VIF in the IF position and IOPL = 3, and
 * VIF instead of IF is cleared, so the virtual-8086 monitor's view of IF is virtualised.
 */
export function v86RedirectInt(c: X86Cpu, vector: number, ret: number): void {
  flagsSync(c);
  const fl = c.fl;
  if (((fl & IOPL) >>> 12) === 3) { ivtTransfer(c, vector * 4, fl & 0xffff, IF | TF | RF, ret); return; }
  const image = ((fl & ~IF) | (fl & VIF ? IF : 0) | IOPL) & 0xffff;
  ivtTransfer(c, vector * 4, image, VIF | TF | RF, ret);
}

/** Read an IDT gate (8 bytes, or 16 in IA-32e mode) into D2 after the limit check. */
function readGate(c: X86Cpu, vector: number, type: number, wide: boolean): void {
  const st = c.state;
  const size = wide ? 16 : 8;
  const err = vector * 8 + 2 + extBit(type);
  if (vector * size + size - 1 > st.idtrLimit) c.raise(GP_VECTOR, err);
  const la = st.idtrBase + vector * size;
  D2.lo = sysRd(c, c.m64 || wide ? la : la >>> 0, 4);
  D2.hi = sysRd(c, c.m64 || wide ? la + 4 : (la + 4) >>> 0, 4);
  D2.hi2 = wide ? sysRd(c, la + 8, 4) : 0;
  const t = D2.type;
  const okType = wide ? t === 0xe || t === 0xf : t === 5 || t === 6 || t === 7 || t === 0xe || t === 0xf;
  if (D2.s || !okType) c.raise(GP_VECTOR, err);
  // Software interrupts check the gate DPL against CPL (SDM 6.12.1.1); INT1 (ICEBP) does not.
  if ((type === EV_SW_INTR || type === EV_SW_EXC) && D2.dpl < c.cpl) c.raise(GP_VECTOR, vector * 8 + 2);
  if (!D2.present) c.raise(NP_VECTOR, err);
}

/** Protected mode (SDM 6.12.1): interrupt/trap gates, task gates (VM exit in non-root). */
function deliverProt(c: X86Cpu, vector: number, type: number, errorCode: number, ret: number): void {
  const st = c.state;
  readGate(c, vector, type, false);
  const gt = D2.type;
  const ext = extBit(type);
  if (gt === 5) {
    const tsel = D2.lo >>> 16;
    if (c.vmx !== null) c.vmx.taskSwitch(tsel, 3, 0);
    c.unimplemented(0x1000 | vector); // task switches on bare metal are not implemented
  }
  const gate32 = (gt & 8) !== 0;
  const sel = D2.lo >>> 16;
  const off = gate32 ? ((D2.lo & 0xffff) | (D2.hi & 0xffff0000)) >>> 0 : D2.lo & 0xffff;
  if ((sel & ~3) === 0) c.raise(GP_VECTOR, ext);
  const cd = D1;
  if (!readDesc(c, sel, cd, false)) c.raise(GP_VECTOR, (sel & 0xfffc) + ext);
  if (!cd.isCode() || cd.dpl > c.cpl) c.raise(GP_VECTOR, (sel & 0xfffc) + ext);
  if (!cd.present) c.raise(NP_VECTOR, (sel & 0xfffc) + ext);
  const conforming = (cd.type & 4) !== 0;
  const newCpl = conforming ? c.cpl : cd.dpl;
  const fromV86 = c.v86 === 1;
  if (fromV86 && newCpl !== 0) c.raise(GP_VECTOR, (sel & 0xfffc) + ext);
  if (off > cd.limit) c.raise(GP_VECTOR, ext);
  flagsSync(c);
  const fl = c.fl | pushRf;
  const n = gate32 ? 4 : 2;
  const errc = hasErrorCode(vector) && type === EV_HW_EXC && errorCode >= 0;
  if (newCpl < c.cpl) {
    tssStack(c, newCpl, stk);
    const nsp = stk[0], nss = stk[1];
    const sd = D2;
    checkInnerSs(c, nss, newCpl, sd);
    const bigStack = (sd.hi & 0x400000) !== 0;
    const words: number[] = [];
    if (fromV86) words.push(st.segSel[SEG_GS], st.segSel[SEG_FS], st.segSel[SEG_DS], st.segSel[SEG_ES]);
    words.push(st.segSel[SEG_SS], c.regAddr(4, c.ssz), fl, st.segSel[SEG_CS], ret);
    if (errc) words.push(errorCode);
    let sp = nsp;
    const m = bigStack ? 0xffffffff : 0xffff;
    const addrs: number[] = [];
    for (let k = 0; k < words.length; k++) { sp = (sp - n) & m; addrs.push(descLin(c, sd, sp >>> 0, n, nss & 0xfffc)); }
    for (let k = 0; k < words.length; k++) privWr(c, addrs[k], n, words[k], 0, newCpl);
    // Commit.
    if (fromV86) { c.fl = fl & ~VM; for (const s of [SEG_GS, SEG_FS, SEG_DS, SEG_ES]) loadNull(c, s, 0); }
    loadCache(c, SEG_SS, (nss & ~3) | newCpl, sd);
    loadCs(c, sel, cd, newCpl);
    c.fl &= ~VM;
    st.gpr[8] = bigStack ? sp : (nsp & ~0xffff) | (sp & 0xffff);
    st.gpr[9] = 0;
  } else {
    const sp0 = c.regAddr(4, c.ssz);
    const m = c.ssz === 2 ? 0xffffffff : 0xffff;
    const words = [fl, st.segSel[SEG_CS], ret];
    if (errc) words.push(errorCode);
    let sp = sp0;
    const addrs: number[] = [];
    for (let k = 0; k < words.length; k++) { sp = (sp - n) & m; addrs.push(linAddr(c, SEG_SS, sp >>> 0, n, 2)); }
    for (let k = 0; k < words.length; k++) privWr(c, addrs[k], n, words[k], 0, c.cpl);
    loadCs(c, sel, cd, newCpl);
    c.setRegAddr(4, c.ssz, sp >>> 0);
  }
  c.fl &= ~(TF | NT | RF | VM);
  if (!(gt & 1)) c.fl &= ~IF;
  st.rip = off;
  c.stateChanged();
}

/** IA-32e mode (SDM 6.14): 16-byte gates, 64-bit pushes, IST, SS = NULL on a privilege change. */
function deliverLong(c: X86Cpu, vector: number, type: number, errorCode: number, ret: number): void {
  const st = c.state;
  readGate(c, vector, type, true);
  const ext = extBit(type);
  const sel = D2.lo >>> 16;
  const off = D2.hi2 * 4294967296 + (((D2.lo & 0xffff) | (D2.hi & 0xffff0000)) >>> 0);
  const ist = D2.hi & 7;
  const trap = (D2.type & 1) !== 0;
  if ((sel & ~3) === 0) c.raise(GP_VECTOR, ext);
  const cd = D1;
  if (!readDesc(c, sel, cd, false)) c.raise(GP_VECTOR, (sel & 0xfffc) + ext);
  if (!cd.isCode() || cd.dpl > c.cpl || !(cd.hi & 0x200000) || (cd.hi & 0x400000)) c.raise(GP_VECTOR, (sel & 0xfffc) + ext);
  if (!cd.present) c.raise(NP_VECTOR, (sel & 0xfffc) + ext);
  if (off < -c.canon || off >= c.canon) c.raise(GP_VECTOR, ext);
  const conforming = (cd.type & 4) !== 0;
  const newCpl = conforming ? c.cpl : cd.dpl;
  flagsSync(c);
  const fl = c.fl | pushRf;
  let rsp: number;
  const oldSs = st.segSel[SEG_SS];
  const oldRsp = c.regAddr(4, 3);
  if (ist) {
    tssStack(c, 0, stk);
    const base = st.segBase[7];
    const o = 36 + (ist - 1) * 8;
    if (o + 7 > st.segLimit[7]) c.raise(TS_VECTOR, st.segSel[7] & 0xfffc);
    const lo = sysRd(c, base + o, 4), hi = sysRd(c, base + o + 4, 4);
    rsp = hi * 4294967296 + (lo >>> 0);
  } else if (newCpl < c.cpl) {
    tssStack(c, newCpl, stk);
    rsp = stk[0];
  } else rsp = c.m64 ? oldRsp : c.regAddr(4, c.ssz);
  if (rsp < -c.canon || rsp >= c.canon) c.raise(SS_VECTOR, ext);
  rsp = rsp - (((rsp % 16) + 16) % 16);
  const errc = hasErrorCode(vector) && type === EV_HW_EXC && errorCode >= 0;
  const items = errc ? 6 : 5;
  const oldCs = st.segSel[SEG_CS];
  const vals = [oldSs, oldRsp, fl, oldCs, ret, errorCode];
  for (let k = 0; k < items; k++) {
    const v = vals[k];
    const la = rsp - 8 * (k + 1);
    if (la < -c.canon || la >= c.canon) c.raise(SS_VECTOR, ext);
    privWr(c, la, 8, v | 0, Math.floor(v / 4294967296) | 0, newCpl);
  }
  rsp -= 8 * items;
  if (newCpl < c.cpl) {
    st.segSel[SEG_SS] = newCpl; st.segBase[SEG_SS] = 0; st.segLimit[SEG_SS] = 0;
    st.segAr[SEG_SS] = AR_UNUSABLE | (newCpl << 5) | 0x13;
  }
  loadCs(c, sel, cd, newCpl);
  st.segAr[SEG_SS] = (st.segAr[SEG_SS] & ~0x60) | (newCpl << 5);
  c.setRegAddr(4, 3, rsp);
  c.fl = fl & ~(TF | NT | RF | VM | (trap ? 0 : IF));
  st.rip = off;
  c.stateChanged();
}

/** IRET/IRETD/IRETQ (SDM Vol. 2 IRET). */
export function iret(c: X86Cpu): void {
  const st = c.state;
  const osz = c.osz;
  const n = 1 << osz;
  flagsSync(c);
  if (!c.pe) return iretReal(c, n);
  if (c.v86) {
    if (((c.fl & IOPL) >>> 12) !== 3) {
      if (!(st.cr4 & 1) || n !== 2) c.raise(GP_VECTOR, 0);
      return iretV86Vme(c);
    }
    return iretReal(c, n);
  }
  if (c.fl & NT) {
    if (st.efer & (1 << 10)) c.raise(GP_VECTOR, 0);
    const link = sysRd(c, st.segBase[7], 2);
    if (c.vmx !== null) c.vmx.taskSwitch(link, 1, c.ilen);
    c.unimplemented(0xcf00); // task return on bare metal is not implemented
  }
  const cpl = c.cpl;
  const sp0 = c.regAddr(4, c.ssz);
  const rdStack = (k: number): number => {
    const off = c.m64 ? sp0 + k * n : c.ssz === 2 ? (sp0 + k * n) >>> 0 : (sp0 + k * n) & 0xffff;
    const la = linAddr(c, SEG_SS, off, n, 1);
    const lo = privRd(c, la, n, cpl);
    return n === 8 ? c.rhi * 4294967296 + (lo >>> 0) : n === 4 ? lo >>> 0 : lo & 0xffff;
  };
  const newRip = rdStack(0), csSel = rdStack(1) & 0xffff;
  let newFl = rdStack(2);
  if (n === 2) newFl = (c.fl & 0xffff0000) | newFl; // a 16-bit IRET keeps the upper flags
  const lma = (st.efer & (1 << 10)) !== 0;
  if ((newFl & VM) && cpl === 0 && !lma && n === 4) return iretToV86(c, newRip, csSel, newFl, rdStack);
  if ((csSel & ~3) === 0) c.raise(GP_VECTOR, 0);
  const cd = D1;
  if (!readDesc(c, csSel, cd, false)) c.raise(GP_VECTOR, csSel & 0xfffc);
  const rpl = csSel & 3;
  if (!cd.isCode() || rpl < cpl) c.raise(GP_VECTOR, csSel & 0xfffc);
  if ((cd.type & 4) ? cd.dpl > rpl : cd.dpl !== rpl) c.raise(GP_VECTOR, csSel & 0xfffc);
  if (lma && (cd.hi & 0x200000) && (cd.hi & 0x400000)) c.raise(GP_VECTOR, csSel & 0xfffc);
  if (!cd.present) c.raise(NP_VECTOR, csSel & 0xfffc);
  const toLong = lma && (cd.hi & 0x200000) !== 0;
  if (toLong ? newRip < -c.canon || newRip >= c.canon : newRip > cd.limit) c.raise(GP_VECTOR, 0);
  let newSp = 0, ssSel = 0;
  const popSs = rpl > cpl || c.m64;
  const sd = D2;
  if (popSs) {
    newSp = rdStack(3); ssSel = rdStack(4) & 0xffff;
    if ((ssSel & ~3) === 0) {
      if (!(lma && toLong && rpl !== 3)) c.raise(GP_VECTOR, 0);
    } else {
      if (!readDesc(c, ssSel, sd, false)) c.raise(GP_VECTOR, ssSel & 0xfffc);
      if ((ssSel & 3) !== rpl || sd.dpl !== rpl || !sd.isData() || !(sd.type & 2)) c.raise(GP_VECTOR, ssSel & 0xfffc);
      if (!sd.present) c.raise(SS_VECTOR, ssSel & 0xfffc);
    }
  }
  // Commit: flags per privilege (IOPL only at CPL 0, IF only if CPL <= IOPL, VIF/VIP only at CPL 0).
  let mask = RFLAGS_VALID & ~(VM | IOPL | IF | VIF | VIP);
  if (n === 2) mask &= 0xffff;
  if (cpl === 0) mask |= IOPL | (n >= 4 ? VIF | VIP : 0);
  if (cpl <= ((c.fl & IOPL) >>> 12)) mask |= IF;
  const fl = (c.fl & ~mask) | (newFl & mask);
  loadCs(c, csSel, cd, rpl);
  c.fl = (fl & ~VM) | 2;
  if (popSs) {
    if ((ssSel & ~3) === 0) { loadNull(c, SEG_SS, ssSel); st.segAr[SEG_SS] |= rpl << 5; }
    else loadCache(c, SEG_SS, ssSel, sd);
    c.stateChanged();
    c.setRegAddr(4, c.ssz, newSp);
  } else {
    c.stateChanged();
    c.setRegAddr(4, c.ssz, c.ssz === 3 ? sp0 + 3 * n : c.ssz === 2 ? (sp0 + 3 * n) >>> 0 : (sp0 + 3 * n) & 0xffff);
  }
  st.rip = toLong ? newRip : newRip >>> 0;
  if (rpl > cpl) {
    nullDataSegsForCpl(c, rpl);
  }
  st.interruptibility &= ~INTR_BLOCKING_NMI;
  c.modeFlagsChanged();
  c.stateChanged();
}

function iretReal(c: X86Cpu, n: number): void {
  const st = c.state;
  const sp = c.regAddr(4, c.ssz);
  const m = c.ssz === 2 ? 0xffffffff : 0xffff;
  const rd = (k: number): number => {
    const la = linAddr(c, SEG_SS, (sp + k * n) & m, n, 1);
    const v = privRd(c, la, n, c.cpl);
    return n === 4 ? v >>> 0 : v & 0xffff;
  };
  const ip = rd(0), cs = rd(1) & 0xffff, f = rd(2);
  if (ip > st.segLimit[SEG_CS] && !c.v86) c.raise(GP_VECTOR, 0);
  let mask: number;
  if (c.v86) mask = (n === 4 ? 0x3f7fd5 & ~(VM | IOPL | VIP | VIF) : 0x7fd5 & ~IOPL);
  else mask = n === 4 ? 0x257fd5 : 0x7fd5;
  c.fl = (c.fl & ~mask) | (f & mask) | 2;
  loadReal(c, SEG_CS, cs);
  st.rip = ip;
  c.setRegAddr(4, c.ssz, (sp + 3 * n) & m);
  st.interruptibility &= ~INTR_BLOCKING_NMI;
  c.modeFlagsChanged();
  c.stateChanged();
}

/**
 * 16-bit IRET in virtual-8086 mode with CR4.VME and IOPL < 3 (SDM Vol. 2 IRET; Vol. 3 20.3.3):
 * #GP(0) if the popped FLAGS set TF, or set IF while VIP is pending; otherwise the popped IF
 * goes to VIF and IF/IOPL stay as they are.
 */
function iretV86Vme(c: X86Cpu): void {
  const st = c.state;
  const sp = c.regAddr(4, c.ssz);
  const m = c.ssz === 2 ? 0xffffffff : 0xffff;
  const rd = (k: number): number => privRd(c, linAddr(c, SEG_SS, (sp + k * 2) & m, 2, 1), 2, c.cpl) & 0xffff;
  const ip = rd(0), cs = rd(1), f = rd(2);
  if ((f & TF) || ((f & IF) && (c.fl & VIP))) c.raise(GP_VECTOR, 0);
  const keep = IF | IOPL;
  c.fl = (((c.fl & ~0xffff) | (c.fl & keep) | (f & 0xffff & ~keep) | 2) & ~VIF) | (f & IF ? VIF : 0);
  loadReal(c, SEG_CS, cs);
  st.rip = ip;
  c.setRegAddr(4, c.ssz, (sp + 6) & m);
  st.interruptibility &= ~INTR_BLOCKING_NMI;
  c.modeFlagsChanged();
  c.stateChanged();
}

function iretToV86(c: X86Cpu, ip: number, cs: number, fl: number, rd: (k: number) => number): void {
  const st = c.state;
  const esp = rd(3), ss = rd(4), es = rd(5), ds = rd(6), fs = rd(7), gs = rd(8);
  c.fl = (fl & RFLAGS_VALID) | 2;
  c.stateChanged();
  for (const [s, v] of [[SEG_CS, cs], [SEG_SS, ss], [SEG_ES, es], [SEG_DS, ds], [SEG_FS, fs], [SEG_GS, gs]]) loadReal(c, s, v & 0xffff);
  st.gpr[8] = esp; st.gpr[9] = 0;
  st.rip = ip & 0xffff;
  st.interruptibility &= ~INTR_BLOCKING_NMI;
  c.stateChanged();
}

