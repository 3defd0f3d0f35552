/**
 * EXIT_REASON_INVPCID (handle_invpcid): with INVLPG exiting on (as with shadow paging), INVPCID
 * exits; KVM decodes the type register and the memory descriptor and flushes, or injects #GP.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as K from "../../../../src/uapi/kvm.js";
import * as V from "../../../../src/hw/x86/vmx/vmcs.js";
import { execControlsSetbit } from "../../../../src/arch/x86/kvm/vmx/vmx.js";
import type { X86Vcpu } from "../../../../src/arch/x86/kvm/kvm_host.js";
import { realModeGuest, type Guest } from "./guest_helpers.js";
import { recordExits } from "./exit_helpers.js";

const EXIT_REASON_INVPCID = 58;

const b = (...x: number[]): Uint8Array => Uint8Array.from(x);
const HLT = 0xf4;

/** invpcid eax, [0x2000]; hlt      #GP handler (IVT 13) at 0x1100: hlt */
function invpcidGuest(type: bigint, pcid: number): Guest {
  const g = realModeGuest({ code: b(0x66, 0x0f, 0x38, 0x82, 0x06, 0x00, 0x20, HLT), regs: { rax: type } });
  g.vcpu.setCpuid2(g.kvm.getSupportedCpuid(256));
  g.poke(0x2000, b(pcid & 0xff, pcid >> 8, 0, 0, 0, 0, 0, 0, 0x00, 0x30, 0, 0, 0, 0, 0, 0));
  g.poke(0x1100, b(HLT));
  g.poke(13 * 4, b(0x00, 0x11, 0x00, 0x00));
  execControlsSetbit(g.vcpu as unknown as X86Vcpu, V.CPU_BASED_INVLPG_EXITING);
  return g;
}

test("INVPCID all-context type: the exit is handled and the guest continues after it", () => {
  const g = invpcidGuest(2n, 0);
  const exits = recordExits(g);
  g.vcpu.run();
  assert.ok(exits.includes(EXIT_REASON_INVPCID), `exits: ${exits.join(",")}`);
  assert.equal(g.run.exitReason, K.KVM_EXIT_HLT);
  assert.equal(g.vcpu.getRegs().rip, 0x1008n);
});

test("INVPCID individual-address type with PCID 0: handled", () => {
  const g = invpcidGuest(0n, 0);
  g.vcpu.run();
  assert.equal(g.run.exitReason, K.KVM_EXIT_HLT);
  assert.equal(g.vcpu.getRegs().rip, 0x1008n);
});

test("INVPCID with an invalid type, or a PCID without CR4.PCIDE: #GP(0)", () => {
  for (const [type, pcid] of [[4n, 0], [1n, 5]] as const) {
    const g = invpcidGuest(type, pcid);
    g.vcpu.run();
    assert.equal(g.run.exitReason, K.KVM_EXIT_HLT);
    assert.equal(g.vcpu.getRegs().rip, 0x1101n, `type ${type} pcid ${pcid}`);
  }
});
