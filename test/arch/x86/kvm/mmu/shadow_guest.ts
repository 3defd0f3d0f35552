/**
 * Small hand-built guests for the shadow-MMU tests (openKvm(proc, { ept: false })): flat segments,
 * a #PF handler (pop eax/rax; mov ebx, cr2; hlt), and page tables for each guest paging mode.
 */
import assert from "node:assert/strict";
import { ZERO_REGS } from "../guest_helpers.js";
import { createHost } from "../../../../../src/host/process.js";
import { openKvm } from "../../../../../src/kvm.js";
import * as K from "../../../../../src/uapi/kvm.js";
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from "../../../../../src/uapi/mman.js";

export const HLT = 0xf4;
export const b = (...x: number[]): Uint8Array => Uint8Array.from(x);
export const u32 = (v: number): number[] => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
/** mov eax, [disp32] (valid in 32-bit and 64-bit mode) */
export const load = (a: number): number[] => [0x8b, 0x04, 0x25, ...u32(a)];
/** mov [disp32], eax */
export const store = (a: number): number[] => [0x89, 0x04, 0x25, ...u32(a)];
/** mov eax, imm32; jmp eax */
export const jmpTo = (a: number): number[] => [0xb8, ...u32(a), 0xff, 0xe0];
/** invlpg [disp32] */
export const invlpg = (a: number): number[] => [0x0f, 0x01, 0x3c, 0x25, ...u32(a)];
/** mov eax, imm32; mov cr3, eax */
export const setCr3 = (v: number): number[] => [0xb8, ...u32(v), 0x0f, 0x22, 0xd8];
/** mov eax, imm32 */
export const movEax = (v: number): number[] => [0xb8, ...u32(v)];

export const CODE = 0x1000;
export const PF_HANDLER = 0x1800;
export const IDT = 0x2000;
export const GDT = 0x3000;
export const STACK_TOP = 0xf000;
export const MEM = 0x400000;

export type Mode = "nonpaging" | "32" | "pae" | "64";


/** A VM with 1 MiB of RAM at gpa 0, a #PF handler (pop eax/rax; mov ebx, cr2; hlt) and flat segments. */
export function shadowGuest(mode: Mode, opts: { ept?: boolean; cr3?: number; cr0Extra?: number; cr4?: number; nxe?: boolean; slotFlags?: number } = {}) {
  const proc = createHost({ memBytes: 64 << 20 }).createProcess("shadow-test");
  const kvm = openKvm(proc, { ept: opts.ept ?? false });
  const vm = kvm.createVm(0);
  const hva = proc.mm.mmap(0, MEM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  const poke = (gpa: number, bytes: ArrayLike<number>): void => proc.mm.copyToUser(hva + gpa, Uint8Array.from(bytes));
  const peek32 = (gpa: number): number => new DataView(proc.mm.copyFromUser(hva + gpa, 4).buffer).getUint32(0, true);
  const pte = (gpa: number, v: number, hi = 0): void => poke(gpa, [...u32(v), ...(mode === "32" ? [] : u32(hi))]);
  vm.setUserMemoryRegion({ slot: 0, flags: opts.slotFlags ?? 0, guest_phys_addr: 0n, memory_size: BigInt(MEM), userspace_addr: BigInt(hva) });
  const long = mode === "64";
  // GDT: null, 0x08 code32, 0x10 data, 0x18 code64.
  poke(GDT, [0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0x9a, 0xcf, 0, 0xff, 0xff, 0, 0, 0, 0x92, 0xcf, 0, 0xff, 0xff, 0, 0, 0, 0x9a, 0xaf, 0]);
  const csSel = long ? 0x18 : 0x08;
  const gate = long
    ? [PF_HANDLER & 0xff, PF_HANDLER >> 8, csSel, 0, 0, 0x8e, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    : [PF_HANDLER & 0xff, PF_HANDLER >> 8, csSel, 0, 0, 0x8e, 0, 0];
  poke(IDT + 14 * gate.length, gate);
  poke(PF_HANDLER, [0x58, 0x0f, 0x20, 0xd3, HLT]);
  const vcpu = vm.createVcpu(0);
  const s = vcpu.getSregs();
  const code = { base: 0n, limit: 0xffffffff, selector: csSel, type: 0xb, present: 1, dpl: 0, db: long ? 0 : 1, s: 1, l: long ? 1 : 0, g: 1, avl: 0, unusable: 0, padding: 0 };
  const data = { ...code, selector: 0x10, type: 0x3, l: 0, db: 1 };
  const paging = mode !== "nonpaging";
  const cr0 = 0x11 | (paging ? 0x80000000 : 0) | (opts.cr0Extra ?? 0x10000);
  const cr4 = (opts.cr4 ?? 0) | (mode === "pae" || long ? 0x20 : 0);
  const efer = (long ? 0x500 : 0) | (opts.nxe ? 0x800 : 0);
  Object.assign(s, {
    cs: code, ds: data, es: data, ss: data, fs: data, gs: data,
    cr0: BigInt(cr0 >>> 0), cr3: BigInt(opts.cr3 ?? 0), cr4: BigInt(cr4), efer: BigInt(efer),
    idt: { base: BigInt(IDT), limit: 256 * gate.length - 1, padding: [0, 0, 0] },
    gdt: { base: BigInt(GDT), limit: 0x1f, padding: [0, 0, 0] },
  });
  vcpu.setSregs(s);
  vcpu.setRegs({ ...ZERO_REGS, rip: BigInt(CODE), rsp: BigInt(STACK_TOP) });
  const run = (): number => {
    vcpu.run();
    return vcpu.kvmRun.exitReason;
  };
  // Later code fragments go to fresh addresses: the processor keeps decoded instructions of code
  // it ran, and a host-side write to guest memory does not invalidate them.
  let next = CODE + 0x100;
  const enter = (bytes: number[]): void => {
    poke(next, bytes);
    vcpu.setRegs({ ...vcpu.getRegs(), rip: BigInt(next) });
    next += 0x100;
  };
  return { kvm, vm, vcpu, poke, peek32, pte, run, enter, hva, proc };
}

/**
 * Page tables identity-mapping the first 1 MiB (supervisor, writable) plus, at linear
 * 0x40000000, one PT whose entries the test fills. Returns the gpa of that PT.
 */
export function buildTables(g: ReturnType<typeof shadowGuest>, mode: Mode): { root: number; pt: number } {
  if (mode === "32") {
    // PD at 0x4000: PD[0] -> PT 0x5000 (low 1 MiB), PD[0x100] (la 0x40000000) -> PT 0x6000.
    g.pte(0x4000, 0x5003);
    g.pte(0x4000 + 0x100 * 4, 0x6007);
    for (let i = 0; i < 256; i++) g.pte(0x5000 + i * 4, (i << 12) | 3);
    return { root: 0x4000, pt: 0x6000 };
  }
  if (mode === "pae") {
    // PDPT at 0x4000: [0] -> PD 0x7000 (low), [1] (la 0x40000000) -> PD 0x8000.
    g.pte(0x4000, 0x7001);
    g.pte(0x4008, 0x8001);
    g.pte(0x7000, 0x5003);
    g.pte(0x8000, 0x6007);
    for (let i = 0; i < 256; i++) g.pte(0x5000 + i * 8, (i << 12) | 3);
    // The PDPTE registers are loaded when the VMM sets CR3 (KVM_SET_SREGS): again, now that the PDPT is filled.
    g.vcpu.setSregs(g.vcpu.getSregs());
    return { root: 0x4000, pt: 0x6000 };
  }
  // 4-level: PML4 0x4000 -> PDPT 0x9000: [0] -> PD 0x7000 (low), [1] -> PD 0x8000.
  g.pte(0x4000, 0x9007);
  g.pte(0x9000, 0x7003);
  g.pte(0x9008, 0x8007);
  g.pte(0x7000, 0x5003);
  g.pte(0x8000, 0x6007);
  for (let i = 0; i < 256; i++) g.pte(0x5000 + i * 8, (i << 12) | 3);
  return { root: 0x4000, pt: 0x6000 };
}

export const LA = 0x40000000;

/** Run `code` in a guest of `mode` with the test PT's entry 0 = `entry` (hi = high half). */
export function faultCase(mode: Mode, entry: number, code: number[], o: { hi?: number; cr0Extra?: number; cr4?: number; nxe?: boolean } = {}) {
  const g0 = shadowGuest(mode, { cr3: 0x4000, cr0Extra: o.cr0Extra, cr4: o.cr4, nxe: o.nxe });
  const { pt } = buildTables(g0, mode);
  g0.pte(pt, entry, o.hi ?? 0);
  g0.poke(CODE, [...code, HLT]);
  assert.equal(g0.run(), K.KVM_EXIT_HLT);
  const r = g0.vcpu.getRegs();
  const faulted = Number(r.rip) === PF_HANDLER + 5;
  return { g: g0, faulted, err: Number(r.rax & 0xffffffffn), cr2: Number(r.rbx), regs: r, pt };
}
