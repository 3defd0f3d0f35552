import { test } from "node:test";
import assert from "node:assert/strict";
import { createHost } from "../../../src/host/process.js";
import { MonotonicClock } from "../../../src/host/clock.js";
import { HaltResult, kvmVcpuHalt } from "../../../src/virt/kvm/kvm_vcpu_halt.js";
import { kvmInit } from "../../../src/virt/kvm/kvm_main.js";
import { SIGUSR1 } from "../../../src/uapi/signal.js";
import { fakeArch, setup } from "./fake_arch.js";

test("halt with a virtual clock jumps to the device deadline and wakes", () => {
  const { dev, clock } = setup();
  const kvm = dev.createVm();
  const vcpu = kvm.createVcpu(0);
  const t0 = clock.nowNs();
  const deadline = t0 + 5000;
  let fired = false;
  const events: string[] = [];
  dev.subscribeTrace(["kvm_vcpu_wakeup"], (e) => events.push(`${e.fields.ns} ${e.fields.valid}`));
  const r = kvmVcpuHalt(vcpu, {
    runnable: () => fired,
    nextDeadlineNs: () => (fired ? Infinity : deadline),
    runTimers: (now) => { if (now >= deadline) fired = true; },
  });
  assert.equal(r, HaltResult.Woken);
  assert.equal(clock.nowNs(), deadline);
  assert.equal(vcpu.stat.halt_wait_ns, 5000);
  assert.equal(vcpu.stat.halt_wakeup, 1);
  assert.equal(vcpu.stat.blocking, 0);
  assert.deepEqual(events, ["5000 true"]);
});

test("halt ends as Interrupted on a signal, a kick, or when nothing can wake the vCPU", () => {
  const { dev, proc } = setup();
  const vcpu = dev.createVm().createVcpu(0);
  const never = { runnable: () => false, nextDeadlineNs: () => Infinity };
  assert.equal(kvmVcpuHalt(vcpu, never), HaltResult.Interrupted);
  proc.task.kill(SIGUSR1);
  assert.equal(kvmVcpuHalt(vcpu, { runnable: () => false, nextDeadlineNs: () => proc.clock.nowNs() + 1e9 }), HaltResult.Interrupted);
  proc.task.dequeueSignal();
  vcpu.kicked = true;
  assert.equal(kvmVcpuHalt(vcpu, { runnable: () => false, nextDeadlineNs: () => proc.clock.nowNs() + 1e9 }), HaltResult.Interrupted);
  assert.equal(vcpu.stat.halt_wakeup, 0);
});

test("halt with the monotonic clock sleeps until the deadline", () => {
  const host = createHost({ memBytes: 2 << 20, clock: new MonotonicClock() });
  const proc = host.createProcess();
  const vcpu = kvmInit(fakeArch(), proc).createVm().createVcpu(0);
  const deadline = proc.clock.nowNs() + 2e6;
  const r = kvmVcpuHalt(vcpu, { runnable: () => proc.clock.nowNs() >= deadline, nextDeadlineNs: () => deadline });
  assert.equal(r, HaltResult.Woken);
  assert.ok(proc.clock.nowNs() >= deadline);
});
