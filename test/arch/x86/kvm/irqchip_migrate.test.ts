/**
 * KVM_GET/SET_IRQCHIP (PIC master, slave, IOAPIC), KVM_GET/SET_PIT2 and KVM_GET/SET_LAPIC taken
 * mid-run and loaded into a fresh VM (what a VMM's save/restore or migration does) give the
 * same guest behaviour: a real-mode guest with a 10 ms PIT tick through the PIC and a 3 ms
 * x2APIC periodic timer reports every interrupt with an OUT. The LAPIC timer keeps its phase
 * (KVM_SET_LAPIC restarts it from TMCCT), so its reports come at the times of an undisturbed
 * run; KVM_SET_PIT2 reloads each count, so the PIT's period restarts at the restore, as in KVM.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as K from "../../../../src/uapi/kvm.js";
import { createHost } from "../../../../src/host/process.js";
import { VirtualClock } from "../../../../src/host/clock.js";
import { openKvm } from "../../../../src/kvm.js";
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from "../../../../src/uapi/mman.js";
import { KvmError } from "../../../../src/virt/kvm/kvm_error.js";
import type { KvmDev, KvmVcpu, Kvm } from "../../../../src/virt/kvm/kvm_main.js";
import { enterRealMode } from "./guest_helpers.js";

const le32 = (v: number): number[] => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
const out = (port: number, v: number): number[] => [0xb0, v, 0xe6, port];
const wrmsr = (msr: number, lo: number): number[] => [0x66, 0xb9, ...le32(msr), 0x66, 0xb8, ...le32(lo), 0x66, 0x31, 0xd2, 0x0f, 0x30];
const PIT_COUNT = 11932; // 10 ms
const CODE = [
  ...out(0x20, 0x11), ...out(0x21, 0x08), ...out(0x21, 0x04), ...out(0x21, 0x01), ...out(0x21, 0xfe),
  ...out(0x43, 0x34), ...out(0x40, PIT_COUNT & 0xff), ...out(0x40, PIT_COUNT >> 8),
  0x66, 0xb9, ...le32(0x1b), 0x0f, 0x32, 0x66, 0x0d, ...le32(0xc00), 0x0f, 0x30, // IA32_APIC_BASE |= EN | EXTD
  ...wrmsr(0x80f, 0x1ff), ...wrmsr(0x83e, 0xb), ...wrmsr(0x832, 0x20040), ...wrmsr(0x838, 3_000_000), // SVR, TDCR /1, LVTT periodic 0x40, TMICT
  0xfb, 0xf4, 0xeb, 0xfd, // sti; l: hlt; jmp l
];
const PIT_HANDLER = [0x50, 0xb0, 0x50, 0xe6, 0x10, 0xb0, 0x20, 0xe6, 0x20, 0x58, 0xcf]; // out 0x10 'P'; EOI to the PIC
const APIC_HANDLER = [0x50, 0x51, 0x52, 0xb0, 0x4c, 0xe6, 0x11, 0x66, 0xb9, ...le32(0x80b), 0x66, 0x31, 0xc0, 0x66, 0x31, 0xd2, 0x0f, 0x30, 0x5a, 0x59, 0x58, 0xcf]; // out 0x11 'L'; x2APIC EOI

function newVm(kvm: KvmDev, mem: number): { vm: Kvm; vcpu: KvmVcpu } {
  const vm = kvm.createVm(0);
  vm.archIoctl(K.KVM_CREATE_IRQCHIP, 0);
  vm.archIoctl(K.KVM_CREATE_PIT2, { flags: 0, pad: new Array(15).fill(0) });
  vm.setUserMemoryRegion({ slot: 0, flags: 0, guest_phys_addr: 0n, memory_size: 0x10000n, userspace_addr: BigInt(mem) });
  return { vm, vcpu: vm.createVcpu(0) };
}

function boot() {
  const clock = new VirtualClock(1_000_000_000);
  const proc = createHost({ memBytes: 256 << 20, clock }).createProcess("migrate");
  const kvm = openKvm(proc);
  const mem = proc.mm.mmap(0, 0x10000, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  proc.mm.copyToUser(mem + 0x1000, Uint8Array.from(CODE));
  proc.mm.copyToUser(mem + 0x1100, Uint8Array.from(PIT_HANDLER));
  proc.mm.copyToUser(mem + 0x1120, Uint8Array.from(APIC_HANDLER));
  proc.mm.copyToUser(mem + 8 * 4, Uint8Array.of(0x00, 0x11, 0, 0));
  proc.mm.copyToUser(mem + 0x40 * 4, Uint8Array.of(0x20, 0x11, 0, 0));
  const { vm, vcpu } = newVm(kvm, mem);
  enterRealMode(vcpu, 0x1000);
  return { clock, proc, kvm, mem, vm, vcpu };
}

/** Run to the next interrupt report: "P" or "L" and the VM clock. */
function next(vcpu: KvmVcpu, clock: VirtualClock): string {
  vcpu.run();
  const r = vcpu.kvmRun;
  assert.equal(r.exitReason, K.KVM_EXIT_IO);
  return `${r.ioPort === 0x10 ? "P" : "L"}@${clock.nowNs()}`;
}

test("irqchip, PIT and LAPIC state moved to a fresh VM mid-run: the LAPIC timer keeps its times, the PIT its period from the restore", () => {
  const ref = boot();
  const want = Array.from({ length: 40 }, () => next(ref.vcpu, ref.clock));
  assert.ok(want.some((w) => w.startsWith("P")) && want.some((w) => w.startsWith("L")), want.join(" "));

  const a = boot();
  const got = Array.from({ length: 12 }, () => next(a.vcpu, a.clock));
  // Finish the pending OUT as a VMM does before saving (KVM_RUN with immediate_exit).
  a.vcpu.kvmRun.immediateExit = 1;
  assert.throws(() => a.vcpu.run(), (e: unknown) => e instanceof KvmError && e.code === "EINTR");
  a.vcpu.kvmRun.immediateExit = 0;
  const regs = a.vcpu.getRegs();
  const sregs = a.vcpu.getSregs();
  const mp = a.vcpu.getMpState();
  const chips = [0, 1, 2].map((chipId) => a.vm.archIoctl(K.KVM_GET_IRQCHIP, { chipId }));
  const pit = a.vm.archIoctl(K.KVM_GET_PIT2, 0);
  const lapic = a.vcpu.archIoctl(K.KVM_GET_LAPIC, 0) as Uint8Array;
  const apicBase = { nmsrs: 1, entries: [{ index: 0x1b, reserved: 0, data: 0n }] };
  a.vcpu.getMsrs(apicBase);
  a.vm.release();

  // The same memory (the VMM keeps it), a new VM on the same host clock.
  const { vm, vcpu } = newVm(a.kvm, a.mem);
  vcpu.setSregs(sregs);
  vcpu.setRegs(regs);
  vcpu.setMsrs(apicBase);
  vcpu.archIoctl(K.KVM_SET_LAPIC, lapic);
  for (const c of chips) vm.archIoctl(K.KVM_SET_IRQCHIP, c as object);
  vm.archIoctl(K.KVM_SET_PIT2, pit as object);
  vcpu.setMpState(mp);
  const restoredAt = a.clock.nowNs();
  for (let i = 12; i < 30; i++) got.push(next(vcpu, a.clock));
  const only = (list: string[], k: string): string[] => list.filter((x) => x.startsWith(k));
  assert.deepEqual(only(got, "L"), only(want, "L").slice(0, only(got, "L").length), "LAPIC timer interrupts at the same times");
  assert.ok(only(got, "L").length >= 12);
  const periodNs = (PIT_COUNT * 1e9) / 1193182;
  const pitAfter = only(got.slice(12), "P").map((x) => Number(x.slice(2)));
  assert.ok(pitAfter.length >= 3, got.join(" "));
  pitAfter.forEach((t, k) => assert.ok(Math.abs(t - (restoredAt + (k + 1) * periodNs)) < 1, `PIT tick ${k} at ${t}`));
  assert.deepEqual(got.slice(0, 12), want.slice(0, 12));
});
