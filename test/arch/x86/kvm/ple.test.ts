/**
 * PAUSE-loop exiting (kvm_intel.ple_gap, openKvm({ pleGap })): handle_pause grows the vCPU's
 * PLE window (kvm_ple_window_update) and, when another vCPU of the VM can run, yields the host
 * CPU (kvm_vcpu_on_spin): on this single-threaded host that ends the slice, so KVM_RUN returns
 * -EINTR as at the end of any slice. Off by default (see vmx.ts VmxModuleEnv.pleGap).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as K from "../../../../src/uapi/kvm.js";
import { EINTR } from "../../../../src/uapi/errno.js";
import { KvmError } from "../../../../src/virt/kvm/kvm_error.js";
import { realModeGuest, enterRealMode } from "./guest_helpers.js";

// mov cx, 20000 ; 1: pause ; loop 1b ; hlt      (real mode: CPL 0, where PLE applies)
// The gap is in TSC ticks of host time: an emulated PAUSE loop iteration takes far longer than
// the 128 ticks a hardware one does, so the tests use a gap of ~0.5 ms.
const PLE_GAP = 1 << 20;
const SPIN = Uint8Array.from([0xb9, 0x20, 0x4e, 0xf3, 0x90, 0xe2, 0xfc, 0xf4]);

function windows(g: ReturnType<typeof realModeGuest>): string[] {
  const w: string[] = [];
  g.kvm.subscribeTrace(["kvm_ple_window_update"], (e) => w.push(`${e.fields.old}->${e.fields.new}`));
  return w;
}

test("PLE: a lone spinning vCPU grows its window but has nobody to yield to: the loop runs to HLT", () => {
  const g = realModeGuest({ code: SPIN, pleGap: PLE_GAP });
  const w = windows(g);
  g.proc.task.alarmAt(g.proc.clock.nowNs() + 3600e9);
  g.vcpu.run();
  assert.equal(g.run.exitReason, K.KVM_EXIT_HLT);
  assert.ok(w.length > 0 && w[0] === "4096->8192", `window updates: ${w.slice(0, 3).join(", ")}`);
});

test("PLE: with another runnable vCPU the spinning one yields: KVM_RUN returns EINTR before the loop ends", () => {
  const g = realModeGuest({ code: SPIN, pleGap: PLE_GAP });
  const other = g.vm.createVcpu(1);
  enterRealMode(other, 0x1000);
  assert.equal(other.getMpState().mp_state, K.KVM_MP_STATE_RUNNABLE);
  g.proc.task.alarmAt(g.proc.clock.nowNs() + 3600e9);
  assert.throws(() => g.vcpu.run(), (e: unknown) => e instanceof KvmError && e.errno === EINTR);
  assert.ok((g.vcpu.getRegs().rcx & 0xffffn) > 0n, "still spinning when it yielded");
  // The next KVM_RUN is the vCPU being scheduled in again: its window is back at ple_window.
  const w = windows(g);
  g.proc.task.dequeueSignal();
  g.proc.task.alarmAt(g.proc.clock.nowNs() + 3600e9);
  assert.throws(() => g.vcpu.run(), (e: unknown) => e instanceof KvmError && e.errno === EINTR);
  assert.ok(w.includes("8192->4096"), `window updates: ${w.join(", ")}`);
});

test("PLE is off by default: the same two-vCPU spin runs to HLT", () => {
  const g = realModeGuest({ code: SPIN });
  enterRealMode(g.vm.createVcpu(1), 0x1000);
  g.proc.task.alarmAt(g.proc.clock.nowNs() + 3600e9);
  g.vcpu.run();
  assert.equal(g.run.exitReason, K.KVM_EXIT_HLT);
});
