// A scripted stand-in for the KVM API (test double): records ioctls, keeps registers, and
// plays back a list of exits from run(). Used to test the VMM without a CPU.
import { KvmRun } from "../../src/uapi/kvm_run.js";
import type { KvmCpuid2, KvmRegs, KvmSregs, KvmSegment, KvmUserspaceMemoryRegion } from "../../src/uapi/kvm_structs.js";
import type { KvmSystemApi, KvmVcpuApi, KvmVmApi } from "../../src/vmm/kvm_api.js";
import { KVM_CAP_IRQCHIP, KVM_CAP_PIT2 } from "../../src/uapi/kvm.js";
import { KvmError } from "../../src/virt/kvm/kvm_error.js";
import { E2BIG, EINTR } from "../../src/uapi/errno.js";

const seg = (): KvmSegment => ({ base: 0n, limit: 0xffff, selector: 0, type: 3, present: 1, dpl: 0, db: 0, s: 1, l: 0, g: 0, avl: 0, unusable: 0, padding: 0 });

export type Step = (run: KvmRun, vcpu: FakeVcpu) => void;

export class FakeVcpu implements KvmVcpuApi {
  readonly kvmRun = new KvmRun(new Uint8Array(3 * 4096));
  regs: KvmRegs = { rax: 0n, rbx: 0n, rcx: 0n, rdx: 0n, rsi: 0n, rdi: 0n, rsp: 0n, rbp: 0n, r8: 0n, r9: 0n, r10: 0n, r11: 0n, r12: 0n, r13: 0n, r14: 0n, r15: 0n, rip: 0xfff0n, rflags: 2n };
  sregs: KvmSregs = {
    cs: { ...seg(), selector: 0xf000, base: 0xffff0000n, type: 11 }, ds: seg(), es: seg(), fs: seg(), gs: seg(), ss: seg(),
    tr: { ...seg(), type: 11, s: 0 }, ldt: { ...seg(), type: 2, s: 0 }, gdt: { base: 0n, limit: 0xffff, padding: [0, 0, 0] },
    idt: { base: 0n, limit: 0xffff, padding: [0, 0, 0] }, cr0: 0x60000010n, cr2: 0n, cr3: 0n, cr4: 0n, cr8: 0n, efer: 0n,
    apic_base: 0xfee00900n, interrupt_bitmap: [0n, 0n, 0n, 0n],
  };
  runs = 0;
  constructor(readonly id: number, readonly script: Step[]) {}
  run(): number {
    this.runs++;
    const step = this.script.shift();
    if (!step) throw new Error(`vcpu ${this.id}: script exhausted`);
    step(this.kvmRun, this);
    return 0;
  }
  getRegs() { return { ...this.regs }; }
  setRegs(r: KvmRegs) { this.regs = { ...r }; }
  getSregs() { return structuredClone(this.sregs); }
  setSregs(s: KvmSregs) { this.sregs = structuredClone(s); }
  ioctl(request: number, arg: number): number { return this.vm.onIoctl(request, arg, this); }
  getStatsFd() { return { bytes: () => new Uint8Array(0) }; }
  cpuid: KvmCpuid2 | null = null;
  setCpuid2(c: KvmCpuid2) { this.cpuid = c; }
  vm!: FakeVm;
}

export class FakeVm implements KvmVmApi {
  regions: KvmUserspaceMemoryRegion[] = [];
  ioctls: { request: number; arg: number }[] = [];
  vcpus: FakeVcpu[] = [];
  constructor(readonly caps: Set<number>, readonly scripts: Step[][], readonly onIoctl: (request: number, arg: number, who: FakeVm | FakeVcpu) => number) {}
  checkExtension(cap: number): number { return this.caps.has(cap) ? 1 : 0; }
  setUserMemoryRegion(r: KvmUserspaceMemoryRegion): void { this.regions.push(r); }
  createVcpu(id: number): FakeVcpu {
    const v = new FakeVcpu(id, this.scripts[id] ?? []);
    v.vm = this;
    this.vcpus.push(v);
    return v;
  }
  ioctl(request: number, arg: number): number {
    this.ioctls.push({ request, arg });
    return this.onIoctl(request, arg, this);
  }
  getStatsFd() { return { bytes: () => new Uint8Array(0) }; }
  destroyed = false;
  destroy(): void { this.destroyed = true; }
}

export class FakeKvm implements KvmSystemApi {
  vms: FakeVm[] = [];
  /** One script list per VM created (a reset creates a new VM). */
  constructor(
    private readonly scriptsPerVm: Step[][][],
    readonly caps = new Set<number>(),
    readonly onIoctl: (request: number, arg: number, who: FakeVm | FakeVcpu) => number = () => 0,
  ) {}
  checkExtension(cap: number): number { return this.caps.has(cap) ? 1 : 0; }
  createVm(): FakeVm {
    const vm = new FakeVm(this.caps, this.scriptsPerVm[this.vms.length] ?? [], this.onIoctl);
    this.vms.push(vm);
    return vm;
  }
  subscribeTrace(): () => void { return () => {}; }
  /** Two leaves; E2BIG below 2 entries, as KVM_GET_SUPPORTED_CPUID. */
  getSupportedCpuid(nent: number): KvmCpuid2 {
    if (nent < 2) throw new KvmError(E2BIG, "KVM_GET_SUPPORTED_CPUID");
    const e = (fn: number, ebx: number) => ({ function: fn, index: 0, flags: 0, eax: 0, ebx, ecx: 0, edx: 0, padding: [0, 0, 0] });
    return { nent: 2, entries: [e(0, 0x756e6547), e(1, 0x00010800)] };
  }
}

export const withIrqchip = new Set([KVM_CAP_IRQCHIP, KVM_CAP_PIT2]);

/** Script helpers. */
export const outb = (port: number, ...bytes: number[]): Step => (run) => {
  run.exitReason = 2; run.ioDirection = 1; run.ioSize = 1; run.ioPort = port; run.ioCount = bytes.length; run.ioDataOffset = 4096;
  run.bytes.set(bytes, 4096);
};
export const outw = (port: number, v: number): Step => (run) => {
  run.exitReason = 2; run.ioDirection = 1; run.ioSize = 2; run.ioPort = port; run.ioCount = 1; run.ioDataOffset = 4096;
  run.bytes[4096] = v & 0xff; run.bytes[4097] = v >> 8;
};
export const hlt: Step = (run) => { run.exitReason = 5; };
export const intr: Step = () => { throw new KvmError(EINTR, "KVM_RUN", "signal"); };
export const exitReason = (r: number): Step => (run) => { run.exitReason = r; };
