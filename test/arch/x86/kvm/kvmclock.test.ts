import { test } from "node:test";
import assert from "node:assert/strict";
import * as K from "../../../../src/uapi/kvm.js";
import { createHost } from "../../../../src/host/process.js";
import { VirtualClock } from "../../../../src/host/clock.js";
import { openKvm } from "../../../../src/kvm.js";
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from "../../../../src/uapi/mman.js";
import { KvmError } from "../../../../src/virt/kvm/kvm_error.js";
import { EINVAL } from "../../../../src/uapi/errno.js";
import type { KvmClockData } from "../../../../src/uapi/kvm_structs.js";
import { pvclockReadCycles, PVCLOCK_TSC_STABLE_BIT } from "../../../../src/arch/x86/kvm/pvclock.js";
import { KVM_CPUID_FEATURES } from "../../../../src/arch/x86/kvm/cpuid.js";
import { enterRealMode } from "./guest_helpers.js";

const b = (...x: number[]): Uint8Array => Uint8Array.from(x);
const le32 = (v: number): number[] => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
/** wrmsr(ecx = msr, edx:eax = hi:lo) in real mode */
const wrmsr = (msr: number, lo: number, hi = 0): number[] => [0x66, 0xb9, ...le32(msr), 0x66, 0xb8, ...le32(lo), 0x66, 0xba, ...le32(hi), 0x0f, 0x30];
/** loop: rdtsc; out 0x10, al; jmp loop -- every exit hands the host the guest's own TSC in EDX:EAX */
const SAMPLE_LOOP = [0x0f, 0x31, 0xe6, 0x10, 0xeb, 0xfa];
const PVTI_GPA = 0x2000;
const WALL_GPA = 0x3000;
const HOST_KHZ = 2_000_000;

function vm(code: number[], nvcpus = 1) {
  const clock = new VirtualClock(5_000_000_000);
  const proc = createHost({ memBytes: 256 << 20, clock }).createProcess("kvmclock");
  const kvm = openKvm(proc);
  const vm = kvm.createVm(0);
  const mem = proc.mm.mmap(0, 0x10000, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  proc.mm.copyToUser(mem + 0x1000, b(...code));
  vm.setUserMemoryRegion({ slot: 0, flags: 0, guest_phys_addr: 0n, memory_size: 0x10000n, userspace_addr: BigInt(mem) });
  const vcpus = Array.from({ length: nvcpus }, (_, i) => {
    const v = vm.createVcpu(i);
    enterRealMode(v, 0x1000);
    return v;
  });
  const created = clock.nowNs();
  const view = (gpa: number, len: number): DataView => {
    const bytes = proc.mm.copyFromUser(mem + gpa, len);
    return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  };
  /** Run to the next sample exit; the guest's TSC and the kvmclock time it derives from the pvclock record. */
  const sample = (i = 0) => {
    const v = vcpus[i];
    v.run();
    assert.equal(v.kvmRun.exitReason, K.KVM_EXIT_IO);
    const r = v.getRegs();
    const tsc = Number(((r.rdx & 0xffffffffn) << 32n) | (r.rax & 0xffffffffn));
    const p = view(PVTI_GPA, 32);
    const info = {
      version: p.getUint32(0, true),
      tscTimestamp: Number(p.getBigUint64(8, true)),
      systemTime: Number(p.getBigUint64(16, true)),
      tscToSystemMul: p.getUint32(24, true),
      tscShift: p.getInt8(28),
      flags: p.getUint8(29),
    };
    return { tsc, info, ns: pvclockReadCycles(info, tsc) };
  };
  return { clock, proc, kvm, vm, vcpus, created, view, sample };
}

test("kvmclock: a guest's own TSC read through its pvclock record tracks the host clock from 0 at VM creation", () => {
  const g = vm([...wrmsr(0x4b564d01, PVTI_GPA | 1), ...SAMPLE_LOOP]);
  const s1 = g.sample();
  assert.equal(s1.info.version % 2, 0, "an even version: the record is complete");
  assert.ok(s1.info.version >= 2);
  assert.equal(s1.info.flags & PVCLOCK_TSC_STABLE_BIT, PVCLOCK_TSC_STABLE_BIT, "one vCPU: the master clock is in use");
  assert.ok(Math.abs(s1.ns - (g.clock.nowNs() - g.created)) <= 1, `kvmclock ${s1.ns} vs ${g.clock.nowNs() - g.created} since creation`);
  for (const step of [10_000_000, 1, 3_333_333_333]) {
    const before = g.sample();
    g.clock.advance(step);
    const after = g.sample();
    assert.equal(after.tsc - before.tsc, (step * HOST_KHZ) / 1e6, "the guest TSC runs at the host rate");
    assert.ok(Math.abs(after.ns - before.ns - step) <= 1, `kvmclock advanced ${after.ns - before.ns} for ${step} ns`);
  }
  // The MSR reads back as written; the CPUID PV leaf advertises kvmclock with the stable bit.
  const m = { nmsrs: 1, entries: [{ index: 0x4b564d01, reserved: 0, data: 0n }] };
  g.vcpus[0].getMsrs(m);
  assert.equal(m.entries[0].data, BigInt(PVTI_GPA | 1));
});

test("kvmclock: KVM_SET_TSC_KHZ scales the guest TSC (VMCS TSC multiplier) and kvmclock stays continuous", () => {
  const g = vm([...wrmsr(0x4b564d01, PVTI_GPA | 1), ...SAMPLE_LOOP]);
  const v = g.vcpus[0];
  assert.equal(v.ioctl(K.KVM_GET_TSC_KHZ), HOST_KHZ);
  const s0 = g.sample();
  g.clock.advance(1_000_000);
  // As QEMU does: the rate, then the TSC value (a host write of IA32_TSC).
  assert.equal(v.ioctl(K.KVM_SET_TSC_KHZ, 1_000_000), 0);
  assert.equal(v.ioctl(K.KVM_GET_TSC_KHZ), 1_000_000);
  v.setMsrs({ nmsrs: 1, entries: [{ index: 0x10, reserved: 0, data: 0n }] });
  const s1 = g.sample();
  assert.equal(s1.tsc, 0);
  assert.ok(Math.abs(s1.ns - s0.ns - 1_000_000) <= 1, `kvmclock continuous across the rate change (${s1.ns - s0.ns})`);
  g.clock.advance(10_000_000);
  const s2 = g.sample();
  assert.ok(Math.abs(s2.tsc - s1.tsc - 10_000_000) <= 1, `1 GHz guest TSC: ${s2.tsc - s1.tsc} ticks in 10 ms`);
  assert.ok(Math.abs(s2.ns - s1.ns - 10_000_000) <= 1);
  // 3 GHz, then within 250 ppm of the host (unscaled), then impossible rates.
  v.ioctl(K.KVM_SET_TSC_KHZ, 3_000_000);
  const s3 = g.sample();
  g.clock.advance(1_000_000);
  const s4 = g.sample();
  assert.ok(Math.abs(s4.tsc - s3.tsc - 3_000_000) <= 1);
  assert.ok(Math.abs(s4.ns - s3.ns - 1_000_000) <= 1);
  v.ioctl(K.KVM_SET_TSC_KHZ, HOST_KHZ + 400);
  assert.equal(v.ioctl(K.KVM_GET_TSC_KHZ), HOST_KHZ + 400);
  assert.throws(() => v.ioctl(K.KVM_SET_TSC_KHZ, 0x7fffffff), (e: unknown) => e instanceof KvmError && e.errno === EINVAL);
  assert.equal(g.vm.checkExtension(K.KVM_CAP_TSC_CONTROL), 1);
  assert.equal(g.vm.checkExtension(K.KVM_CAP_GET_TSC_KHZ), 1);
});

test("IA32_TSC: a guest write moves the TSC and IA32_TSC_ADJUST by the same amount; a host write sets it", () => {
  // wrmsr IA32_TSC = 0x1_0000_0000, then sample.
  const g = vm([...wrmsr(0x10, 0, 1), ...SAMPLE_LOOP]);
  const s = g.sample();
  assert.equal(s.tsc, 0x100000000, "no time passed on the VM clock since the write");
  const m = { nmsrs: 2, entries: [{ index: 0x3b, reserved: 0, data: 0n }, { index: 0x10, reserved: 0, data: 0n }] };
  g.vcpus[0].getMsrs(m);
  const before = Math.floor(((g.clock.nowNs() - g.created) * HOST_KHZ) / 1e6);
  assert.equal(m.entries[0].data, BigInt(0x100000000 - before), "TSC_ADJUST moved by the write's delta");
  assert.equal(m.entries[1].data, 0x100000000n);
  // Host write (KVM_SET_MSRS): the guest reads that value, TSC_ADJUST unchanged.
  g.vcpus[0].setMsrs({ nmsrs: 1, entries: [{ index: 0x10, reserved: 0, data: 12345n }] });
  g.clock.advance(1000);
  assert.equal(g.sample().tsc, 12345 + 2000);
  g.vcpus[0].getMsrs(m);
  assert.equal(m.entries[0].data, BigInt(0x100000000 - before));
});

test("two vCPUs start on one TSC (kvm_synchronize_tsc at creation) and share the stable master clock", () => {
  const g = vm([...wrmsr(0x4b564d01, PVTI_GPA | 1), ...SAMPLE_LOOP], 2);
  // vCPU 1 runs the same code as a BSP would here: mark it runnable (no irqchip: all vCPUs run).
  const a = g.sample(0);
  const b1 = g.sample(1);
  assert.equal(a.tsc, b1.tsc, "same instant on the VM clock, same TSC");
  assert.equal(b1.info.flags & PVCLOCK_TSC_STABLE_BIT, PVCLOCK_TSC_STABLE_BIT);
  assert.equal(a.ns, b1.ns);
});

test("KVM_GET_CLOCK / KVM_SET_CLOCK: the VM's kvmclock, its flags, and a set moves the guest's clock", () => {
  const g = vm([...wrmsr(0x4b564d01, PVTI_GPA | 1), ...wrmsr(0x4b564d00, WALL_GPA), ...SAMPLE_LOOP]);
  g.sample();
  g.clock.advance(7_000_000);
  const c = g.vm.archIoctl(K.KVM_GET_CLOCK, 0) as KvmClockData;
  assert.equal(c.flags, K.KVM_CLOCK_TSC_STABLE | K.KVM_CLOCK_REALTIME | K.KVM_CLOCK_HOST_TSC);
  assert.ok(Math.abs(Number(c.clock) - (g.clock.nowNs() - g.created)) <= 1);
  assert.equal(g.vm.checkExtension(K.KVM_CAP_ADJUST_CLOCK), K.KVM_CLOCK_TSC_STABLE | K.KVM_CLOCK_REALTIME | K.KVM_CLOCK_HOST_TSC);
  // Wall clock: sec/nsec at which kvmclock read 0, version even.
  const w = g.view(WALL_GPA, 12);
  assert.equal(w.getUint32(0, true) % 2, 0);
  const wallNs = w.getUint32(4, true) * 1e9 + w.getUint32(8, true);
  assert.ok(Math.abs(wallNs + (g.clock.nowNs() - g.created) - Date.now() * 1e6) < 60e9, "the wall clock is close to the host's");
  g.vm.archIoctl(K.KVM_SET_CLOCK, { clock: 100_000_000_000n, flags: 0, pad0: 0, realtime: 0n, host_tsc: 0n, pad: [0, 0, 0, 0] });
  const c2 = g.vm.archIoctl(K.KVM_GET_CLOCK, 0) as KvmClockData;
  assert.ok(Math.abs(Number(c2.clock) - 100_000_000_000) <= 1);
  const s = g.sample();
  assert.ok(Math.abs(s.ns - 100_000_000_000) <= 1, `guest kvmclock ${s.ns} after KVM_SET_CLOCK`);
  assert.throws(() => g.vm.archIoctl(K.KVM_SET_CLOCK, { clock: 0n, flags: 1, pad0: 0, realtime: 0n, host_tsc: 0n, pad: [0, 0, 0, 0] }), (e: unknown) => e instanceof KvmError && e.errno === EINVAL);
});

test("CPUID: the KVM PV leaf advertises CLOCKSOURCE, CLOCKSOURCE2 and the stable bit", () => {
  const g = vm(SAMPLE_LOOP);
  const leaf = g.kvm.getSupportedCpuid(256).entries.find((e) => e.function === KVM_CPUID_FEATURES)!;
  assert.equal(leaf.eax & 0x0100000b, 0x0100000b);
});

test("KVM_VCPU_TSC_CTRL / KVM_VCPU_TSC_OFFSET: the offset read and written through a vCPU device attribute", () => {
  const g = vm(SAMPLE_LOOP, 2);
  const v = g.vcpus[0];
  const buf = g.proc.mm.mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  const attr = (a: number) => ({ flags: 0, group: 0, attr: BigInt(a), addr: BigInt(buf) });
  assert.equal(g.vm.checkExtension(K.KVM_CAP_VCPU_ATTRIBUTES), 1);
  assert.equal(v.archIoctl(K.KVM_HAS_DEVICE_ATTR, attr(0)), 0);
  assert.throws(() => v.archIoctl(K.KVM_HAS_DEVICE_ATTR, attr(1)), (e: unknown) => e instanceof KvmError && e.code === "ENXIO");
  v.archIoctl(K.KVM_GET_DEVICE_ATTR, attr(0));
  const off0 = new DataView(g.proc.mm.copyFromUser(buf, 8).buffer).getBigInt64(0, true);
  assert.equal(off0, BigInt(-Math.floor((g.created * HOST_KHZ) / 1e6)), "the creation-time offset makes the TSC start at 0");
  // Move vCPU 0 forward by 1e9 ticks; the guest's RDTSC follows.
  const w = new DataView(new ArrayBuffer(8));
  w.setBigInt64(0, off0 + 1_000_000_000n, true);
  g.proc.mm.copyToUser(buf, new Uint8Array(w.buffer));
  v.archIoctl(K.KVM_SET_DEVICE_ATTR, attr(0));
  const a = g.sample(0);
  const b1 = g.sample(1);
  assert.equal(a.tsc - b1.tsc, 1_000_000_000);
  assert.throws(() => v.archIoctl(K.KVM_GET_DEVICE_ATTR, { flags: 0, group: 0, attr: 0n, addr: 0x10n }), (e: unknown) => e instanceof KvmError && e.code === "EFAULT");
  // The byte-level ioctl with a struct kvm_device_attr in the caller's memory.
  const s = new DataView(new ArrayBuffer(24));
  s.setBigUint64(16, BigInt(buf), true);
  g.proc.mm.copyToUser(buf + 64, new Uint8Array(s.buffer));
  assert.equal(v.ioctl(K.KVM_GET_DEVICE_ATTR, buf + 64), 0);
  assert.equal(new DataView(g.proc.mm.copyFromUser(buf, 8).buffer).getBigInt64(0, true), off0 + 1_000_000_000n);
  s.setBigUint64(8, 1n, true);
  g.proc.mm.copyToUser(buf + 64, new Uint8Array(s.buffer));
  assert.throws(() => v.ioctl(K.KVM_HAS_DEVICE_ATTR, buf + 64), (e: unknown) => e instanceof KvmError && e.code === "ENXIO");
});
