import { test } from "node:test";
import assert from "node:assert/strict";
import * as K from "../../../src/uapi/kvm.js";
import { parseStatsFd, KVM_STATS_DESC_SIZE } from "../../../src/virt/kvm/binary_stats.js";
import { logHistUpdate } from "../../../src/virt/kvm/stats.js";
import { formatFtraceLine, formatTraceEvent, ftraceSubscriber, type TraceEvent } from "../../../src/virt/kvm/trace.js";
import { setup } from "./fake_arch.js";

test("binary stats: header, id, descriptors, live data", () => {
  const { dev, proc } = setup();
  const kvm = dev.createVm();
  const vcpu = kvm.createVcpu(3);
  const fd = vcpu.getStatsFd();
  const b0 = fd.bytes();
  const dv = new DataView(b0.buffer);
  const n = dev.vcpuStats.length;
  assert.deepEqual([dv.getUint32(0, true), dv.getUint32(4, true), dv.getUint32(8, true), dv.getUint32(12, true), dv.getUint32(16, true), dv.getUint32(20, true)], [0, 48, n, 24, 72, 72 + 64 * n]);
  assert.equal(KVM_STATS_DESC_SIZE, 64);
  vcpu.stat.exits += 5;
  vcpu.stat.halt_wakeup = 2;
  logHistUpdate(vcpu.stats.hist.halt_wait_hist, 1000); // fls64(1000) = 10
  const parsed = parseStatsFd(fd.bytes());
  assert.equal(parsed.id, `kvm-${proc.pid}/vcpu-3`);
  const byName = new Map(parsed.stats.map((s) => [s.name, s]));
  assert.equal(parsed.stats[0].name, "halt_successful_poll", "generic stats first");
  assert.deepEqual(byName.get("exits")!.values, [5n]);
  assert.deepEqual(byName.get("halt_wakeup")!.values, [2n]);
  const hist = byName.get("halt_wait_hist")!;
  assert.equal(hist.values.length, 32);
  assert.equal(hist.values[10], 1n);
  assert.equal(hist.flags, K.KVM_STATS_TYPE_LOG_HIST | K.KVM_STATS_UNIT_SECONDS | K.KVM_STATS_BASE_POW10);
  assert.equal(hist.exponent, -9);
  assert.equal(byName.get("blocking")!.flags, K.KVM_STATS_TYPE_INSTANT | K.KVM_STATS_UNIT_BOOLEAN);
  // Offsets are relative to the data block and 8-byte units.
  const descOff = 72 + 64 * parsed.stats.findIndex((s) => s.name === "exits");
  const dataOff = 72 + 64 * n + dv.getUint32(descOff + 8, true);
  assert.equal(new DataView(fd.bytes().buffer).getBigUint64(dataOff, true), 5n);
  assert.deepEqual(fd.read(0, 4), b0.subarray(0, 4));
  assert.equal(fd.read(fd.size + 10, 4).length, 0);
  const vmfd = kvm.getStatsFd();
  kvm.stat.remote_tlb_flush = 7;
  const vm = parseStatsFd(vmfd.bytes());
  assert.equal(vm.id, `kvm-${proc.pid}`);
  assert.deepEqual(vm.stats.map((s) => s.name), ["remote_tlb_flush", "remote_tlb_flush_requests"]);
  assert.deepEqual(vm.stats[0].values, [7n]);
});

test("arch stats registered on the device appear in new VMs", () => {
  const { dev } = setup();
  dev.registerArchStats([{ name: "pages_4k", flags: K.KVM_STATS_TYPE_INSTANT, exponent: 0, size: 1, bucketSize: 0 }], []);
  assert.equal(dev.createVm().stat.pages_4k, 0);
});

test("tracepoints: cheap flag, filters, TP_printk text, ftrace lines", () => {
  const { dev, clock } = setup();
  const kvm = dev.createVm();
  const vcpu = kvm.createVcpu(0);
  assert.equal(kvm.tracing, false);
  const lines: string[] = [];
  const events: TraceEvent[] = [];
  const off1 = dev.subscribeTrace(["kvm_exit", "kvm_p*"], ftraceSubscriber((l) => lines.push(l)));
  const off2 = dev.subscribeTrace(null, (e) => events.push(e));
  assert.equal(kvm.tracing, true);
  clock.set(1_234_567_000);
  kvm.trace("kvm_exit", { vcpu_id: 0, exit_reason: 30, guest_rip: 0x1000, info1: 0x3f80000n, info2: 0, intr_info: 0, error_code: 0 }, vcpu);
  kvm.trace("kvm_pio", { rw: 1, port: 0x3f8, size: 1, count: 1, val: 0x34 }, vcpu);
  kvm.trace("kvm_entry", { vcpu_id: 0, rip: 0x1001 }, vcpu);
  assert.equal(lines.length, 2);
  assert.equal(events.length, 3);
  assert.equal(lines[0], "        vmm-1000 [000] ....     1.234567: kvm_exit: vcpu 0 reason IO_INSTRUCTION rip 0x1000 info1 0x0000000003f80000 info2 0x0000000000000000 intr_info 0x00000000 error_code 0x00000000");
  assert.equal(lines[1].split(": ").slice(1).join(": "), "kvm_pio: pio_write at 0x3f8 size 1 count 1 val 0x34 ");
  off1();
  off2();
  assert.equal(kvm.tracing, false);
  assert.equal(formatTraceEvent("kvm_entry", { vcpu_id: 1, rip: -0x7f000000 }), "vcpu 1, rip 0xffffffff81000000");
  assert.equal(formatTraceEvent("kvm_userspace_exit", { reason: 2, errno: 0 }), "reason IO (2)");
  assert.equal(formatTraceEvent("kvm_userspace_exit", { reason: 10, errno: -4 }), "reason restart (4)");
  assert.equal(formatTraceEvent("kvm_mmio", { type: 2, len: 4, gpa: 0xfee000b0, val: 0 }), "mmio write len 4 gpa 0xfee000b0 val 0x0");
  assert.equal(formatTraceEvent("kvm_exit", { vcpu_id: 0, exit_reason: 0x80000021, guest_rip: 0 }).startsWith("vcpu 0 reason FAILED_VMENTRY INVALID_STATE rip 0x0"), true);
  assert.equal(formatTraceEvent("kvm_msr", { write: 1, ecx: 0xc0000080, data: 0xd01n, exception: true }), "msr_write c0000080 = 0xd01 (#GP)");
  assert.equal(formatTraceEvent("kvm_cpuid", { function: 0x40000000, index: 0, rax: 0x40000001, rbx: 0x4b4d564b, rcx: 0x564b4d56, rdx: 0x4d, found: true, used_max_basic: false }),
    "func 40000000 idx 0 rax 40000001 rbx 4b4d564b rcx 564b4d56 rdx 4d, cpuid entry found");
  assert.equal(formatTraceEvent("kvm_hypercall", { nr: 5, a0: 1, a1: 2, a2: 3, a3: 4 }), "nr 0x5 a0 0x1 a1 0x2 a2 0x3 a3 0x4");
  assert.equal(formatTraceEvent("kvm_page_fault", { vcpu_id: 0, guest_rip: 0x1000, fault_address: 0xb8000, error_code: 0x181 }), "vcpu 0 rip 0x1000 address 0x00000000000b8000 error_code 0x181");
  assert.equal(formatTraceEvent("kvm_set_irq", { gsi: 4, level: 1, irq_source_id: 0 }), "gsi 4 level 1 source 0");
  assert.equal(formatTraceEvent("kvm_inj_virq", { vector: 0x20, soft: false, reinjected: true }), "IRQ 0x20 [reinjected]");
  assert.equal(formatTraceEvent("my_event", { a: 16, s: "x" }), "a=0x10 s=x");
  assert.match(formatFtraceLine({ name: "kvm_fpu", fields: { load: 1 }, tsNs: 5_000_000_123, pid: 7, comm: "q", cpu: 0, vcpuId: 0 }), /^ {13}q-7 \[000\] \.\.\.\. {5}5\.000000: kvm_fpu: load$/);
});
