/**
 * Small real-mode guests for the x86 KVM tests: a VM with one RAM slot holding `code` at
 * `codeGpa`, CS = 0 and RIP = codeGpa, set up through the public KVM API exactly as a VMM would.
 */
import { createHost, type HostProcess } from "../../../../src/host/process.js";
import { openKvm } from "../../../../src/kvm.js";
import { MAP_ANONYMOUS, MAP_HUGETLB, MAP_PRIVATE, PROT_READ, PROT_WRITE } from "../../../../src/uapi/mman.js";
import { VirtualClock } from "../../../../src/host/clock.js";
import * as K from "../../../../src/uapi/kvm.js";
import type { KvmRegs } from "../../../../src/uapi/kvm_structs.js";
import type { KvmDev, Kvm, KvmVcpu } from "../../../../src/virt/kvm/kvm_main.js";
import type { KvmRun } from "../../../../src/uapi/kvm_run.js";

export interface GuestOptions {
  code: Uint8Array;
  codeGpa?: number;
  /** Slot 0: [slotGpa, slotGpa + slotSize) */
  slotGpa?: number;
  slotSize?: number;
  slotFlags?: number;
  huge?: boolean;
  regs?: Partial<KvmRegs>;
  /** Skip creating the memslot (a VM without memory). */
  noSlot?: boolean;
  /** Guest instructions per VM entry (openKvm's sliceInsns: the host timer tick). */
  sliceInsns?: number;
  /** openKvm's pleGap (kvm_intel.ple_gap). */
  pleGap?: number;
}

export interface Guest {
  proc: HostProcess;
  kvm: KvmDev;
  vm: Kvm;
  vcpu: KvmVcpu;
  run: KvmRun;
  /** hva of slot 0 */
  mem: number;
  /** Guest-physical -> bytes written into slot 0's backing memory. */
  poke(gpa: number, bytes: Uint8Array): void;
  peek(gpa: number, len: number): Uint8Array;
}

export const ZERO_REGS: KvmRegs = {
  rax: 0n, rbx: 0n, rcx: 0n, rdx: 0n, rsi: 0n, rdi: 0n, rsp: 0n, rbp: 0n,
  r8: 0n, r9: 0n, r10: 0n, r11: 0n, r12: 0n, r13: 0n, r14: 0n, r15: 0n, rip: 0n, rflags: 2n,
};

export function realModeGuest(o: GuestOptions): Guest {
  const codeGpa = o.codeGpa ?? 0x1000;
  const slotGpa = o.slotGpa ?? 0;
  const slotSize = o.slotSize ?? 0x10000;
  const proc = createHost({ memBytes: 256 << 20 }).createProcess("kvm-test");
  const kvm = openKvm(proc, { sliceInsns: o.sliceInsns, pleGap: o.pleGap });
  const vm = kvm.createVm(0);
  const mem = proc.mm.mmap(0, slotSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | (o.huge ? MAP_HUGETLB : 0), -1, 0);
  const poke = (gpa: number, bytes: Uint8Array): void => proc.mm.copyToUser(mem + gpa - slotGpa, bytes);
  const peek = (gpa: number, len: number): Uint8Array => proc.mm.copyFromUser(mem + gpa - slotGpa, len);
  poke(codeGpa, o.code);
  if (!o.noSlot) {
    vm.setUserMemoryRegion({ slot: 0, flags: o.slotFlags ?? 0, guest_phys_addr: BigInt(slotGpa), memory_size: BigInt(slotSize), userspace_addr: BigInt(mem) });
  }
  const vcpu = vm.createVcpu(0);
  enterRealMode(vcpu, codeGpa, o.regs);
  return { proc, kvm, vm, vcpu, run: vcpu.kvmRun, mem, poke, peek };
}

/** Start `vcpu` in real mode at 0:rip (CS = 0 rather than the reset vector's F000), as a VMM does before the first KVM_RUN. */
export function enterRealMode(vcpu: KvmVcpu, rip: number, regs?: Partial<KvmRegs>): void {
  const sregs = vcpu.getSregs();
  sregs.cs.base = 0n;
  sregs.cs.selector = 0;
  vcpu.setSregs(sregs);
  vcpu.setRegs({ ...ZERO_REGS, rip: BigInt(rip), ...regs });
}

/**
 * A real-mode guest with the in-kernel irqchip on a virtual clock: `code` at 0x1000 and an
 * interrupt `handler` at 0x1100 that the IVT entry of `vector` points at.
 */
export function irqchipGuest(code: Uint8Array, handler: Uint8Array, vector: number): {
  proc: HostProcess; kvm: KvmDev; vm: Kvm; vcpu: KvmVcpu; clock: VirtualClock; mem: number;
} {
  const clock = new VirtualClock();
  const proc = createHost({ memBytes: 256 << 20, clock }).createProcess("irq-test");
  const kvm = openKvm(proc);
  const vm = kvm.createVm(0);
  vm.archIoctl(K.KVM_CREATE_IRQCHIP, 0);
  const mem = proc.mm.mmap(0, 0x10000, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  proc.mm.copyToUser(mem + 0x1000, code);
  proc.mm.copyToUser(mem + 0x1100, handler);
  proc.mm.copyToUser(mem + vector * 4, Uint8Array.of(0x00, 0x11, 0x00, 0x00));
  vm.setUserMemoryRegion({ slot: 0, flags: 0, guest_phys_addr: 0n, memory_size: 0x10000n, userspace_addr: BigInt(mem) });
  const vcpu = vm.createVcpu(0);
  enterRealMode(vcpu, 0x1000);
  return { proc, kvm, vm, vcpu, clock, mem };
}
