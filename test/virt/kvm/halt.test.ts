import { test } from "node:test";
import assert from "node:assert/strict";
import { createHost } from "../../../src/host/process.js";
import { MonotonicClock } from "../../../src/host/clock.js";
import { HaltResult, kvmVcpuHalt } from "../../../src/virt/kvm/kvm_vcpu_halt.js";
import { kvmInit } from "../../../src/virt/kvm/kvm_main.js";
import { SIGUSR1 } from "../../../src/uapi/signal.js";
import { EINVAL } from "../../../src/uapi/errno.js";
import * as K from "../../../src/uapi/kvm.js";
import { KvmError } from "../../../src/virt/kvm/kvm_error.js";
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

test("halt ends as Interrupted on a signal, or when nothing can wake the vCPU", () => {
  const { dev, proc } = setup();
  const vcpu = dev.createVm().createVcpu(0);
  const never = { runnable: () => false, nextDeadlineNs: () => Infinity };
  assert.equal(kvmVcpuHalt(vcpu, never), HaltResult.Interrupted);
  proc.task.kill(SIGUSR1);
  assert.equal(kvmVcpuHalt(vcpu, { runnable: () => false, nextDeadlineNs: () => proc.clock.nowNs() + 1e9 }), HaltResult.Interrupted);
  proc.task.dequeueSignal();
  assert.equal(vcpu.stat.halt_wakeup, 0);
});

test("a kick makes a halted vCPU look again but does not end the halt while it is not runnable", () => {
  const { dev, clock } = setup();
  const vcpu = dev.createVm().createVcpu(0);
  const deadline = clock.nowNs() + 1e6;
  let fired = false;
  let looks = 0;
  vcpu.kicked = true; // e.g. an interrupt the guest has masked
  const r = kvmVcpuHalt(vcpu, {
    runnable: () => { looks++; return fired; },
    nextDeadlineNs: () => (fired ? Infinity : deadline),
    runTimers: (now) => { if (now >= deadline) fired = true; },
  });
  assert.equal(r, HaltResult.Woken, "the halt went on to the timer");
  assert.equal(clock.nowNs(), deadline);
  assert.ok(looks >= 2);
  assert.equal(vcpu.kicked, false);
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

/** Hooks for a device whose single timer fires `delay` ns after the halt starts. */
function timerIn(clock: { nowNs(): number }, delay: number) {
  const deadline = clock.nowNs() + delay;
  let fired = false;
  return {
    runnable: () => fired,
    nextDeadlineNs: () => (fired ? Infinity : deadline),
    runTimers: (now: number) => { if (now >= deadline) fired = true; },
  };
}

test("halt polling: the window starts at 0, grows after short halts, catches a timer inside it, fails past it", () => {
  const { dev, clock } = setup();
  const vcpu = dev.createVm().createVcpu(0);
  const polls: string[] = [];
  dev.subscribeTrace(["kvm_halt_poll_ns"], (e) => polls.push(`${e.fields.grow ? "grow" : "shrink"} ${e.fields.old}->${e.fields.new}`));
  const st = vcpu.stat;
  assert.equal(vcpu.haltPollNs, 0);
  // 1: no poll (window 0); a 5 us halt is short -> grow to halt_poll_ns_grow_start.
  assert.equal(kvmVcpuHalt(vcpu, timerIn(clock, 5000)), HaltResult.Woken);
  assert.equal(st.halt_attempted_poll, 0);
  assert.equal(vcpu.haltPollNs, 10_000);
  // 2: the timer falls due 3 us into the 10 us window: a successful poll, no sleep.
  const wait0 = st.halt_wait_ns;
  assert.equal(kvmVcpuHalt(vcpu, timerIn(clock, 3000)), HaltResult.Woken);
  assert.equal(st.halt_attempted_poll, 1);
  assert.equal(st.halt_successful_poll, 1);
  assert.equal(st.halt_poll_success_ns, 3000);
  assert.equal(vcpu.stats.hist.halt_poll_success_hist[12], 1, "3000 ns lands in the 2^11..2^12 bucket");
  assert.equal(st.halt_wait_ns, wait0, "no time blocked");
  assert.equal(vcpu.haltPollNs, 10_000, "a halt inside the window keeps it");
  // 3: a 50 us halt: the poll spends its whole 10 us window, then the vCPU blocks 40 us; the window doubles.
  const t = clock.nowNs();
  assert.equal(kvmVcpuHalt(vcpu, timerIn(clock, 50_000)), HaltResult.Woken);
  assert.equal(clock.nowNs() - t, 50_000);
  assert.equal(st.halt_attempted_poll, 2);
  assert.equal(st.halt_successful_poll, 1);
  assert.equal(st.halt_poll_fail_ns, 10_000);
  assert.equal(st.halt_wait_ns - wait0, 40_000);
  assert.equal(st.halt_wakeup, 2, "woken from sleep twice (halts 1 and 3)");
  assert.equal(vcpu.haltPollNs, 20_000);
  // 4, 5: halts longer than halt_poll_ns (200 us) shrink the window, to 0 below grow_start.
  kvmVcpuHalt(vcpu, timerIn(clock, 1e6));
  assert.equal(vcpu.haltPollNs, 10_000);
  kvmVcpuHalt(vcpu, timerIn(clock, 1e6));
  assert.equal(vcpu.haltPollNs, 0);
  assert.equal(st.halt_poll_invalid, 0);
  assert.deepEqual(polls, ["grow 0->10000", "grow 10000->20000", "shrink 20000->10000", "shrink 10000->0"]);
});

test("halt polling: a pending event ends the poll at once; growth stops at the maximum", () => {
  const { dev, clock } = setup();
  const vcpu = dev.createVm().createVcpu(0);
  vcpu.haltPollNs = 160_000;
  const t = clock.nowNs();
  assert.equal(kvmVcpuHalt(vcpu, { runnable: () => true, nextDeadlineNs: () => Infinity }), HaltResult.Woken);
  assert.equal(clock.nowNs(), t);
  assert.equal(vcpu.stat.halt_successful_poll, 1);
  assert.equal(vcpu.stat.halt_wakeup, 0, "the vCPU never slept");
  kvmVcpuHalt(vcpu, timerIn(clock, 170_000));
  assert.equal(vcpu.haltPollNs, 200_000, "doubling is capped at halt_poll_ns");
});

test("KVM_CAP_HALT_POLL sets the VM's maximum window (0 disables polling)", () => {
  const { dev, clock } = setup();
  const vm = dev.createVm();
  assert.equal(vm.checkExtension(K.KVM_CAP_HALT_POLL), 1);
  const vcpu = vm.createVcpu(0);
  assert.equal(vm.enableCap({ cap: K.KVM_CAP_HALT_POLL, args: [0n] }), 0);
  kvmVcpuHalt(vcpu, timerIn(clock, 5000));
  assert.equal(vcpu.haltPollNs, 0);
  vm.enableCap({ cap: K.KVM_CAP_HALT_POLL, args: [15_000n] });
  for (let i = 0; i < 3; i++) kvmVcpuHalt(vcpu, timerIn(clock, 12_000));
  assert.equal(vcpu.haltPollNs, 15_000);
  assert.throws(() => vm.enableCap({ cap: K.KVM_CAP_HALT_POLL, args: [1n << 32n] }), (e: unknown) => e instanceof KvmError && e.errno === EINVAL);
  assert.throws(() => vm.enableCap({ cap: K.KVM_CAP_HALT_POLL, flags: 1, args: [1n] }), (e: unknown) => e instanceof KvmError && e.errno === EINVAL);
});

test("halt polling on the monotonic clock spins until a timer inside the window is due", () => {
  const host = createHost({ memBytes: 2 << 20, clock: new MonotonicClock() });
  const proc = host.createProcess();
  const vcpu = kvmInit(fakeArch(), proc).createVm().createVcpu(0);
  vcpu.haltPollNs = 200_000;
  const r = kvmVcpuHalt(vcpu, timerIn(proc.clock, 50_000));
  assert.equal(r, HaltResult.Woken);
  assert.equal(vcpu.stat.halt_attempted_poll, 1);
  assert.equal(vcpu.stat.halt_successful_poll, 1);
  assert.equal(vcpu.stat.halt_wait_ns, 0);
});
