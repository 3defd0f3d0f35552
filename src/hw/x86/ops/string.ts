/**
 * String instructions MOVS/CMPS/STOS/LODS/SCAS/INS/OUTS with REP/REPE/REPNE in every address
 * size (SDM Vol. 2, Vol. 1 7.3.9). A REP instruction runs at most REP_CHUNK iterations per
 * dispatch and then restarts itself (RIP left at the instruction), so it is interruptible and a
 * fault in iteration k leaves RCX/RSI/RDI describing the k-1 completed ones.
 */
import type { X86Cpu } from "../cpu.js";
import { DF } from "../flags.js";
import { linAddr, rdL, wrL } from "../mmu.js";
import { alu, alu64, ALU_SUB } from "./alu.js";
import { getZF } from "../flags.js";
import { ioPermission, portIn, portOut, IOQ_IN, IOQ_STRING, IOQ_REP } from "./io.js";

const REP_CHUNK = 1024;

function step(c: X86Cpu, sz: number): number {
  return c.fl & DF ? -(1 << sz) : 1 << sz;
}

function addWrap(asz: number, v: number, d: number): number {
  const r = v + d;
  return asz === 1 ? r & 0xffff : asz === 2 ? r >>> 0 : r;
}

function opSize(c: X86Cpu): number {
  return c.opb & 1 ? c.osz : 0;
}

/** Count register for REP (masked to address size); null iteration when zero. */
function repCount(c: X86Cpu): number {
  return c.regAddr(1, c.asz);
}

/** After a chunk: RCX written back; if iterations remain, RIP goes back to repeat the instruction. */
function repDone(c: X86Cpu, cnt: number, more: boolean): void {
  c.setRegAddr(1, c.asz, cnt);
  if (more) { c.state.rip = c.curRip; c.breakLoop = 1; }
}

/** A4/A5: MOVS */
export function movs(c: X86Cpu): void {
  const sz = opSize(c), asz = c.asz, d = step(c, sz), n = 1 << sz, seg = c.seg;
  let si = c.regAddr(6, asz), di = c.regAddr(7, asz);
  if (!c.rep) {
    const v = rdL(c, sz, linAddr(c, seg, si, n, 1)), vh = c.rhi;
    wrL(c, sz, linAddr(c, 0, di, n, 2), v, vh);
    c.setRegAddr(6, asz, addWrap(asz, si, d)); c.setRegAddr(7, asz, addWrap(asz, di, d));
    return;
  }
  let cnt = repCount(c);
  let k = 0;
  try {
    while (cnt !== 0 && k < REP_CHUNK) {
      const v = rdL(c, sz, linAddr(c, seg, si, n, 1)), vh = c.rhi;
      wrL(c, sz, linAddr(c, 0, di, n, 2), v, vh);
      si = addWrap(asz, si, d); di = addWrap(asz, di, d); cnt = addWrap(asz, cnt, -1); k++;
    }
  } finally {
    c.setRegAddr(6, asz, si); c.setRegAddr(7, asz, di); c.setRegAddr(1, asz, cnt);
  }
  repDone(c, cnt, cnt !== 0);
}

/** AA/AB: STOS */
export function stos(c: X86Cpu): void {
  const sz = opSize(c), asz = c.asz, d = step(c, sz), n = 1 << sz;
  const v = c.getReg(sz, 0), vh = c.rhi;
  let di = c.regAddr(7, asz);
  if (!c.rep) { wrL(c, sz, linAddr(c, 0, di, n, 2), v, vh); c.setRegAddr(7, asz, addWrap(asz, di, d)); return; }
  let cnt = repCount(c), k = 0;
  try {
    while (cnt !== 0 && k < REP_CHUNK) {
      wrL(c, sz, linAddr(c, 0, di, n, 2), v, vh);
      di = addWrap(asz, di, d); cnt = addWrap(asz, cnt, -1); k++;
    }
  } finally { c.setRegAddr(7, asz, di); c.setRegAddr(1, asz, cnt); }
  repDone(c, cnt, cnt !== 0);
}

/** AC/AD: LODS */
export function lods(c: X86Cpu): void {
  const sz = opSize(c), asz = c.asz, d = step(c, sz), n = 1 << sz, seg = c.seg;
  let si = c.regAddr(6, asz);
  if (!c.rep) { const v = rdL(c, sz, linAddr(c, seg, si, n, 1)); c.setReg(sz, 0, v, c.rhi); c.setRegAddr(6, asz, addWrap(asz, si, d)); return; }
  let cnt = repCount(c), k = 0;
  try {
    while (cnt !== 0 && k < REP_CHUNK) {
      const v = rdL(c, sz, linAddr(c, seg, si, n, 1)); c.setReg(sz, 0, v, c.rhi);
      si = addWrap(asz, si, d); cnt = addWrap(asz, cnt, -1); k++;
    }
  } finally { c.setRegAddr(6, asz, si); c.setRegAddr(1, asz, cnt); }
  repDone(c, cnt, cnt !== 0);
}

function cmp(c: X86Cpu, sz: number, a: number, ah: number, b: number, bh: number): void {
  if (sz === 3) alu64(c, ALU_SUB, a, ah, b, bh); else alu(c, ALU_SUB, sz, a, b);
}

/** A6/A7: CMPS (REPE/REPNE stop on ZF) */
export function cmps(c: X86Cpu): void {
  const sz = opSize(c), asz = c.asz, d = step(c, sz), n = 1 << sz, seg = c.seg;
  let si = c.regAddr(6, asz), di = c.regAddr(7, asz);
  const rep = c.rep;
  let cnt = rep ? repCount(c) : 1, k = 0;
  let stop = false;
  try {
    while (cnt !== 0 && k < REP_CHUNK) {
      const a = rdL(c, sz, linAddr(c, seg, si, n, 1)), ah = c.rhi;
      const b = rdL(c, sz, linAddr(c, 0, di, n, 1)), bh = c.rhi;
      cmp(c, sz, a, ah, b, bh);
      si = addWrap(asz, si, d); di = addWrap(asz, di, d); k++;
      if (!rep) { cnt = 0; break; }
      cnt = addWrap(asz, cnt, -1);
      if ((rep === 1) !== (getZF(c) === 1)) { stop = true; break; }
    }
  } finally {
    c.setRegAddr(6, asz, si); c.setRegAddr(7, asz, di);
    if (rep) c.setRegAddr(1, asz, cnt);
  }
  if (rep) repDone(c, cnt, cnt !== 0 && !stop);
}

/** AE/AF: SCAS */
export function scas(c: X86Cpu): void {
  const sz = opSize(c), asz = c.asz, d = step(c, sz), n = 1 << sz;
  const a = c.getReg(sz, 0), ah = c.rhi;
  let di = c.regAddr(7, asz);
  const rep = c.rep;
  let cnt = rep ? repCount(c) : 1, k = 0;
  let stop = false;
  try {
    while (cnt !== 0 && k < REP_CHUNK) {
      const b = rdL(c, sz, linAddr(c, 0, di, n, 1)), bh = c.rhi;
      cmp(c, sz, a, ah, b, bh);
      di = addWrap(asz, di, d); k++;
      if (!rep) { cnt = 0; break; }
      cnt = addWrap(asz, cnt, -1);
      if ((rep === 1) !== (getZF(c) === 1)) { stop = true; break; }
    }
  } finally {
    c.setRegAddr(7, asz, di);
    if (rep) c.setRegAddr(1, asz, cnt);
  }
  if (rep) repDone(c, cnt, cnt !== 0 && !stop);
}

function ioSize(c: X86Cpu): number {
  return c.opb & 1 ? (c.osz === 1 ? 2 : 4) : 1;
}

/** 6C/6D: INS (to ES:rDI from port DX) */
export function ins(c: X86Cpu): void {
  const size = ioSize(c), sz = size === 1 ? 0 : size === 2 ? 1 : 2, asz = c.asz, d = step(c, sz);
  const port = c.state.gpr[4] & 0xffff;
  if (c.rep && repCount(c) === 0) return;
  ioPermission(c, port, size);
  let di = c.regAddr(7, asz);
  const v = c.vmx;
  if (v !== null) {
    const la = linAddr(c, 0, di, size, 2);
    const q = (size - 1) | IOQ_IN | IOQ_STRING | (c.rep ? IOQ_REP : 0) | (port << 16);
    const next = c.state.rip; c.state.rip = c.curRip;
    v.io(port, size, q, c.ilen, la);
    c.state.rip = next;
  }
  let cnt = c.rep ? repCount(c) : 1, k = 0;
  try {
    while (cnt !== 0 && k < REP_CHUNK) {
      const la = linAddr(c, 0, di, size, 2);
      wrL(c, sz, la, portIn(c, port, size), 0);
      di = addWrap(asz, di, d); cnt = addWrap(asz, cnt, -1); k++;
      if (!c.rep) break;
    }
  } finally { c.setRegAddr(7, asz, di); if (c.rep) c.setRegAddr(1, asz, cnt); }
  if (c.rep) repDone(c, cnt, cnt !== 0);
}

/** 6E/6F: OUTS (from seg:rSI to port DX) */
export function outs(c: X86Cpu): void {
  const size = ioSize(c), sz = size === 1 ? 0 : size === 2 ? 1 : 2, asz = c.asz, d = step(c, sz), seg = c.seg;
  const port = c.state.gpr[4] & 0xffff;
  if (c.rep && repCount(c) === 0) return;
  ioPermission(c, port, size);
  let si = c.regAddr(6, asz);
  const v = c.vmx;
  if (v !== null) {
    const la = linAddr(c, seg, si, size, 1);
    const q = (size - 1) | IOQ_STRING | (c.rep ? IOQ_REP : 0) | (port << 16);
    const next = c.state.rip; c.state.rip = c.curRip;
    v.io(port, size, q, c.ilen, la);
    c.state.rip = next;
  }
  let cnt = c.rep ? repCount(c) : 1, k = 0;
  try {
    while (cnt !== 0 && k < REP_CHUNK) {
      portOut(c, port, size, rdL(c, sz, linAddr(c, seg, si, size, 1)));
      si = addWrap(asz, si, d); cnt = addWrap(asz, cnt, -1); k++;
      if (!c.rep) break;
    }
  } finally { c.setRegAddr(6, asz, si); if (c.rep) c.setRegAddr(1, asz, cnt); }
  if (c.rep) repDone(c, cnt, cnt !== 0);
}
