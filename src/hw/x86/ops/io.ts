/**
 * Port I/O: IN/OUT (SDM Vol. 2), the I/O permission checks of protected and virtual-8086 mode
 * (SDM Vol. 1 19.5: CPL > IOPL consults the TSS I/O bitmap), and the VMX I/O intercept with
 * its Table 28-5 exit qualification. Bare metal sends the access to the optional X86IoBus.
 */
import type { X86Cpu } from "../cpu.js";
import { IOPL } from "../flags.js";
import { GP_VECTOR } from "../fault.js";
import { sysRd } from "../mmu.js";

/** Exit-qualification bits for I/O instructions (SDM Table 28-5). */
export const IOQ_IN = 1 << 3;
export const IOQ_STRING = 1 << 4;
export const IOQ_REP = 1 << 5;
export const IOQ_IMM = 1 << 6;

/** #GP(0) unless the access to `port` of `size` bytes is permitted at the current CPL/IOPL. */
export function ioPermission(c: X86Cpu, port: number, size: number): void {
  if (!c.pe) return;
  if (!c.v86 && c.cpl <= ((c.fl & IOPL) >>> 12)) return;
  const st = c.state;
  const type = st.segAr[7] & 0xf;
  if (type !== 0xb && type !== 0x9) c.raise(GP_VECTOR, 0); // only a 32/64-bit TSS has a bitmap
  const base = st.segBase[7], limit = st.segLimit[7];
  if (limit < 0x67) c.raise(GP_VECTOR, 0);
  const mapBase = sysRd(c, c.m64 ? base + 0x66 : (base + 0x66) >>> 0, 2) & 0xffff;
  const off = mapBase + (port >>> 3);
  if (off + 1 > limit) c.raise(GP_VECTOR, 0);
  const bits = sysRd(c, c.m64 ? base + off : (base + off) >>> 0, 2);
  const mask = ((1 << size) - 1) << (port & 7);
  if (bits & mask) c.raise(GP_VECTOR, 0);
}

/** Read `size` bytes from a port (after permission and intercept checks). */
export function portIn(c: X86Cpu, port: number, size: number): number {
  const io = c.io;
  if (io === null) return size === 4 ? -1 : (1 << (size * 8)) - 1;
  return io.in(port, size);
}

export function portOut(c: X86Cpu, port: number, size: number, v: number): void {
  const io = c.io;
  if (io !== null) io.out(port, size, size === 4 ? v >>> 0 : v & ((1 << (size * 8)) - 1));
}

/** E4/E5/EC/ED: IN AL/eAX, imm8/DX; E6/E7/EE/EF: OUT */
export function inOut(c: X86Cpu): void {
  const b = c.opb;
  const size = b & 1 ? (c.osz === 1 ? 2 : 4) : 1;
  const immForm = (b & 8) === 0;
  const port = immForm ? c.imm & 0xff : c.state.gpr[4] & 0xffff;
  const isIn = (b & 2) === 0;
  ioPermission(c, port, size);
  const v = c.vmx;
  if (v !== null) {
    const q = (size - 1) | (isIn ? IOQ_IN : 0) | (immForm ? IOQ_IMM : 0) | (port << 16);
    const next = c.state.rip;
    c.state.rip = c.curRip;
    v.io(port, size, q, c.ilen, 0);
    c.state.rip = next;
  }
  const sz = size === 1 ? 0 : size === 2 ? 1 : 2;
  if (isIn) c.setReg(sz, 0, portIn(c, port, size), 0);
  else portOut(c, port, size, c.getReg(sz, 0));
}
