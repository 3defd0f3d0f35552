/**
 * process_nmi(): NMIs raised while the vCPU is out of the guest are counted; at most two are
 * pending while NMIs are unblocked (one injected, one latched), one while they are blocked.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as K from "../../../../src/uapi/kvm.js";
import { realModeGuest } from "./guest_helpers.js";

const b = (...x: number[]): Uint8Array => Uint8Array.from(x);
const HLT = 0xf4;

/** main: cli; hlt.  NMI handler at 0x1100: inc byte [0x2000]; (optionally out 0x10, al); iret. */
function nmiGuest(exitInHandler: boolean): ReturnType<typeof realModeGuest> {
  const g = realModeGuest({ code: b(0xfa, HLT, HLT) });
  g.poke(0x1100, exitInHandler ? b(0xfe, 0x06, 0x00, 0x20, 0xe6, 0x10, 0xcf) : b(0xfe, 0x06, 0x00, 0x20, 0xcf));
  g.poke(2 * 4, b(0x00, 0x11, 0x00, 0x00));
  return g;
}

test("three KVM_NMIs while NMIs are unblocked: two are delivered (one injected, one through the NMI window)", () => {
  const g = nmiGuest(false);
  g.vcpu.nmi();
  g.vcpu.nmi();
  g.vcpu.nmi();
  g.vcpu.run();
  assert.equal(g.run.exitReason, K.KVM_EXIT_HLT);
  assert.equal(g.peek(0x2000, 1)[0], 2);
  assert.equal(g.vcpu.stat.nmi_injections, 2);
});

test("NMIs raised while one is in service collapse to a single pending NMI", () => {
  const g = nmiGuest(true);
  g.vcpu.nmi();
  g.vcpu.run();
  assert.equal(g.run.exitReason, K.KVM_EXIT_IO, "in the handler, NMIs blocked");
  assert.equal(g.vcpu.getVcpuEvents().nmi.masked, 1);
  g.vcpu.nmi();
  g.vcpu.nmi();
  g.vcpu.nmi();
  g.vcpu.run();
  assert.equal(g.run.exitReason, K.KVM_EXIT_IO, "the latched NMI runs the handler again after IRET");
  g.vcpu.run();
  assert.equal(g.run.exitReason, K.KVM_EXIT_HLT);
  assert.equal(g.peek(0x2000, 1)[0], 2);
  assert.equal(g.vcpu.stat.nmi_injections, 2);
});

test("KVM_GET_VCPU_EVENTS reports an NMI queued by KVM_NMI before the next KVM_RUN; SET restores it", () => {
  const g = nmiGuest(false);
  g.vcpu.nmi();
  const ev = g.vcpu.getVcpuEvents();
  assert.equal(ev.nmi.pending, 1);
  const h = nmiGuest(false);
  h.vcpu.setVcpuEvents(ev);
  h.vcpu.run();
  assert.equal(h.run.exitReason, K.KVM_EXIT_HLT);
  assert.equal(h.peek(0x2000, 1)[0], 1, "the restored NMI is delivered once");
});
