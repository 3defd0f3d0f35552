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

/** Identity-mapped 4-level paging of the first 8 MiB (2 MiB pages) and 64-bit mode at CPL 0. */
export function long64(cpu: X86Cpu, rip: number): void {
  const mem = cpu.physmem;
  const pml4 = 0x10000, pdpt = 0x11000, pd = 0x12000;
  for (let a = pml4; a < pd + 0x1000; a += 4) mem.write32(a, 0);
  write64(mem, pml4, pdpt | 0x7, 0);
  write64(mem, pdpt, pd | 0x7, 0);
  for (let i = 0; i < 4; i++) write64(mem, pd + i * 8, (i << 21) | 0x87, 0);
  const st = cpu.state;
  for (let s = 0; s < 6; s++) {
    st.segSel[s] = s === 1 ? 0x08 : 0x10; st.segBase[s] = 0; st.segLimit[s] = 0xffffffff;
    st.segAr[s] = s === 1 ? 0xa09b : 0xc093;
  }
  st.segSel[7] = 0x28; st.segBase[7] = 0x20000; st.segLimit[7] = 0x67; st.segAr[7] = 0x8b;
  st.cr3 = pml4; st.cr4 = 0x20; st.efer = 0x500; st.cr0 = 0x80000011;
  st.rip = rip;
  st.gpr[8] = 0x80000; st.gpr[9] = 0;
  cpu.setRflags(2);
  cpu.stateChanged();
}

/** Write a 64-bit IDT gate (interrupt gate if trap=false) for `vector` at idt base. */
export function idtGate64(mem: PhysMem, idt: number, vector: number, sel: number, off: number, dpl = 0, ist = 0, trap = false): void {
  const a = idt + vector * 16;
  write32(mem, a, (off & 0xffff) | (sel << 16));
  write32(mem, a + 4, (off & 0xffff0000) | 0x8000 | (dpl << 13) | ((trap ? 0xf : 0xe) << 8) | ist);
  write32(mem, a + 8, 0); write32(mem, a + 12, 0);
}

/** Write a 32-bit interrupt/trap gate. */
export function idtGate32(mem: PhysMem, idt: number, vector: number, sel: number, off: number, dpl = 0, trap = false): void {
  const a = idt + vector * 8;
  write32(mem, a, (off & 0xffff) | (sel << 16));
  write32(mem, a + 4, (off & 0xffff0000) | 0x8000 | (dpl << 13) | ((trap ? 0xf : 0xe) << 8));
}

/** A GDT at `gdt`: entries given as [lo, hi] dword pairs starting at index 0 (index 0 should be null). */
export function writeGdt(mem: PhysMem, gdt: number, entries: [number, number][]): void {
  entries.forEach(([lo, hi], i) => write64(mem, gdt + i * 8, lo, hi));
}

/** Segment descriptor dwords for base/limit/access byte/flags nibble (G D/B L AVL). */
export function segDesc(base: number, limit: number, access: number, flags: number): [number, number] {
  const lo = ((base & 0xffff) << 16) | (limit & 0xffff);
  const hi = ((base >>> 16) & 0xff) | (access << 8) | (limit & 0xf0000) | (flags << 20) | (base & 0xff000000);
  return [lo >>> 0, hi >>> 0];
}

/** Run `code` (followed by HLT) in 64-bit mode at 0x1000; returns the cpu for inspection. */
export function run64(code: number[], setup?: (cpu: X86Cpu) => void): Rig {
  const rig = makeRig(8);
  writeBytes(rig.mem, 0x1000, [...code, 0xf4]);
  long64(rig.cpu, 0x1000);
  if (setup) setup(rig.cpu);
  rig.cpu.run(10000);
  return rig;
}

/** Run `code` (followed by HLT) in flat 32-bit protected mode at 0x1000. */
export function run32(code: number[], setup?: (cpu: X86Cpu) => void): Rig {
  const rig = makeRig(4);
  writeBytes(rig.mem, 0x1000, [...code, 0xf4]);
  flat32(rig.cpu, 0x1000);
  if (setup) setup(rig.cpu);
  rig.cpu.run(10000);
  return rig;
}
