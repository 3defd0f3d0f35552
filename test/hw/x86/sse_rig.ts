// Test rig for the MMX/SSE handlers: 64-bit mode at CPL 0 with CR4.OSFXSR|OSXMMEXCPT set, an IDT
// whose vector-v handler is "mov eax, 0x100 + v; hlt", data at DATA (RSI points there).
import type { X86Cpu } from "../../../src/hw/x86/cpu.js";
import { makeRig, writeBytes, long64, idtGate64, writeGdt, segDesc, type Rig } from "./helpers.js";

export const DATA = 0x5000;
export const CR4_SSE = (1 << 9) | (1 << 10);

export function sseRun(code: number[], setup?: (cpu: X86Cpu) => void): Rig {
  const rig = makeRig(8);
  const { mem, cpu } = rig;
  writeBytes(mem, 0x1000, [...code, 0xf4]);
  long64(cpu, 0x1000);
  writeGdt(mem, 0x8000, [[0, 0], segDesc(0, 0xfffff, 0x9b, 0xa), segDesc(0, 0xfffff, 0x93, 0xc)]);
  cpu.state.gdtrBase = 0x8000; cpu.state.gdtrLimit = 0x17;
  cpu.state.idtrBase = 0x9000; cpu.state.idtrLimit = 0xfff;
  for (let v = 0; v < 20; v++) {
    idtGate64(mem, 0x9000, v, 0x08, 0x3000 + v * 16);
    writeBytes(mem, 0x3000 + v * 16, [0xb8, 0x00 + v, 0x01, 0, 0, 0xf4]);
  }
  cpu.state.cr4 |= CR4_SSE;
  cpu.state.gpr[12] = DATA;
  cpu.stateChanged();
  if (setup) setup(cpu);
  cpu.run(1000);
  return rig;
}

/** Vector of the exception taken (the handler left 0x100 + vector in EAX), or -1. */
export function vectorTaken(cpu: X86Cpu): number {
  const eax = cpu.state.gpr[0]!;
  return cpu.state.rip > 0x3000 && cpu.state.rip < 0x3200 && (eax & ~0xff) === 0x100 ? eax & 0xff : -1;
}

const F64 = new Float64Array(1);
const F64W = new Int32Array(F64.buffer);
const F32 = new Float32Array(1);
const F32W = new Int32Array(F32.buffer);

export function setXd(cpu: X86Cpu, r: number, lane: number, v: number): void {
  F64[0] = v;
  cpu.state.xmm[r * 4 + lane * 2] = F64W[0]!; cpu.state.xmm[r * 4 + lane * 2 + 1] = F64W[1]!;
}
export function getXd(cpu: X86Cpu, r: number, lane: number): number {
  F64W[0] = cpu.state.xmm[r * 4 + lane * 2]!; F64W[1] = cpu.state.xmm[r * 4 + lane * 2 + 1]!;
  return F64[0]!;
}
export function setXf(cpu: X86Cpu, r: number, lane: number, v: number): void {
  F32[0] = v;
  cpu.state.xmm[r * 4 + lane] = F32W[0]!;
}
export function getXf(cpu: X86Cpu, r: number, lane: number): number {
  F32W[0] = cpu.state.xmm[r * 4 + lane]!;
  return F32[0]!;
}
export function xmmWords(cpu: X86Cpu, r: number): number[] {
  return Array.from(cpu.state.xmm.subarray(r * 4, r * 4 + 4), (v) => v >>> 0);
}
export function setXmm(cpu: X86Cpu, r: number, words: number[]): void {
  for (let i = 0; i < 4; i++) cpu.state.xmm[r * 4 + i] = words[i]! | 0;
}
export function writeF64(rig: Rig, addr: number, v: number): void {
  F64[0] = v;
  rig.mem.write32(addr, F64W[0]!); rig.mem.write32(addr + 4, F64W[1]!);
}
