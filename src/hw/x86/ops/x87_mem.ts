/**
 * Memory images for the FPU state instructions (FNSTENV/FLDENV, FNSAVE/FRSTOR, FXSAVE/FXRSTOR,
 * the XSAVE family): a whole image is read into a scratch buffer before any state changes, and
 * every page an image store touches is checked for writing before the first byte is stored, so
 * a #PF or #GP part-way leaves neither the registers nor memory half-updated (SDM Vol. 3A 6.6:
 * faults are restartable).
 */
import type { X86Cpu } from "../cpu.js";
import { rd8, rdLW, wr8 } from "../mmu.js";

/** Scratch image buffer, large enough for the biggest XSAVE area this CPU defines. */
export const IMG = new Uint8Array(4096);

/** Next byte address after `la` (wraps at 4 GiB outside 64-bit mode). */
function next(c: X86Cpu, la: number, k: number): number {
  return c.m64 ? la + k : (la + k) >>> 0;
}

/** Read `n` bytes at linear `la` (already checked against the segment) into buf[o..]. */
export function readImage(c: X86Cpu, la: number, n: number, buf: Uint8Array, o: number): void {
  for (let k = 0; k < n; k++) buf[o + k] = rd8(c, next(c, la, k));
}

/** Check that all `n` bytes at `la` are writable (one write-checked access per page), faulting if not. */
export function probeWrite(c: X86Cpu, la: number, n: number): void {
  rdLW(c, 0, la);
  let k = 4096 - (la & 4095);
  while (k < n) {
    rdLW(c, 0, next(c, la, k));
    k += 4096;
  }
  if (n > 1) rdLW(c, 0, next(c, la, n - 1));
}

/** Store buf[o..o+n) at `la` after checking every page for writing. */
export function writeImage(c: X86Cpu, la: number, n: number, buf: Uint8Array, o: number): void {
  probeWrite(c, la, n);
  for (let k = 0; k < n; k++) wr8(c, next(c, la, k), buf[o + k]!);
}
