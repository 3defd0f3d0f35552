/** Test helper: record the hardware exit reasons (the kvm_exit tracepoint) of a guest's VM. */
import type { Guest } from "./guest_helpers.js";

/** Start recording; the returned array fills with the basic exit reason of every VM exit. */
export function recordExits(g: Guest): number[] {
  const reasons: number[] = [];
  g.kvm.subscribeTrace(["kvm_exit"], (e) => reasons.push(Number(e.fields.exit_reason) & 0xffff));
  return reasons;
}
