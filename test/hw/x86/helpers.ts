// Bare-metal test rig for the x86 core: a small PhysMem, code bytes placed at a physical address,
// registers set directly, port I/O captured.
import { PhysMem } from "../../../src/hw/physmem.js";
import { X86Cpu, type X86IoBus } from "../../../src/hw/x86/cpu.js";

export class IoLog implements X86IoBus {
  readonly outs: [number, number, number][] = [];
  inValue = 0;
  in(_port: number, _size: number): number { return this.inValue; }
  out(port: number, size: number, value: number): void { this.outs.push([port, size, value]); }
  text(port = 0x3f8): string { return this.outs.filter((o) => o[0] === port).map((o) => String.fromCharCode(o[2] & 0xff)).join(""); }
}

export interface Rig { mem: PhysMem; cpu: X86Cpu; io: IoLog; }

/** A machine with `mb` MiB of RAM (all populated). */
export function makeRig(mb = 4): Rig {
  const mem = new PhysMem(mb * 1024 * 1024);
  for (let pfn = 0; pfn < mem.nrFrames; pfn += 512) mem.populate(pfn);
  const io = new IoLog();
  const cpu = new X86Cpu(mem, { io, clockNs: () => 1000, tscKhz: 1000000 });
  return { mem, cpu, io };
}

export function writeBytes(mem: PhysMem, addr: number, bytes: ArrayLike<number>): void {
  for (let i = 0; i < bytes.length; i++) mem.write8(addr + i, bytes[i] & 0xff);
}

export function write32(mem: PhysMem, addr: number, v: number): void {
  for (let i = 0; i < 4; i++) mem.write8(addr + i, (v >>> (8 * i)) & 0xff);
}

export function write64(mem: PhysMem, addr: number, lo: number, hi: number): void {
  write32(mem, addr, lo); write32(mem, addr + 4, hi);
}

export function read32(mem: PhysMem, addr: number): number {
  let v = 0;
  for (let i = 0; i < 4; i++) v |= mem.read8(addr + i) << (8 * i);
  return v >>> 0;
}

/** Real mode, CS=DS=ES=SS=0 (bases 0, limits 64K), IP=ip, SP=0x8000. */
export function realMode(cpu: X86Cpu, ip: number): void {
  const st = cpu.state;
  for (let s = 0; s < 6; s++) { st.segSel[s] = 0; st.segBase[s] = 0; st.segLimit[s] = 0xffff; st.segAr[s] = s === 1 ? 0x9b : 0x93; }
  st.cr0 = 0x60000010;
  st.rip = ip;
  st.gpr[8] = 0x8000;
  cpu.setRflags(2);
  cpu.stateChanged();
}

/** Flat 32-bit protected mode without paging: code 0x08, data 0x10 (descriptor caches set directly), CPL 0. */
export function flat32(cpu: X86Cpu, eip: number): void {
  const st = cpu.state;
  for (let s = 0; s < 6; s++) {
    st.segSel[s] = s === 1 ? 0x08 : 0x10; st.segBase[s] = 0; st.segLimit[s] = 0xffffffff;
    st.segAr[s] = s === 1 ? 0xc09b : 0xc093;
  }
  st.cr0 = 0x60000011;
  st.rip = eip;
  st.gpr[8] = 0x80000;
  cpu.setRflags(2);
  cpu.stateChanged();
}

/** Set a 64-bit GPR from a bigint (tests only). */
export function setR(cpu: X86Cpu, r: number, v: bigint): void {
  const u = BigInt.asUintN(64, v);
  cpu.state.gpr[2 * r] = Number(u & 0xffffffffn) | 0;
  cpu.state.gpr[2 * r + 1] = Number(u >> 32n) | 0;
}

export function getR(cpu: X86Cpu, r: number): bigint {
  return (BigInt(cpu.state.gpr[2 * r + 1] >>> 0) << 32n) | BigInt(cpu.state.gpr[2 * r] >>> 0);
}

/** Run until HLT/shutdown (or n instructions). */
export function runToHlt(cpu: X86Cpu, n = 100000): number {
  return cpu.run(n);
}
