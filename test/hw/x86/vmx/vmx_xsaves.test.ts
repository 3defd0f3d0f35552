// "Enable XSAVES/XRSTORS" (secondary control bit 20) and the XSS-exiting bitmap in VMX non-root
// operation (SDM Vol. 3C 25.6.2, 25.6.20, 26.1.3, 26.3).
import { test } from "node:test";
import assert from "node:assert/strict";
import * as F from "../../../../src/hw/x86/vmx/vmcs.js";
import { EXIT_REASON_EXCEPTION_NMI, EXIT_REASON_HLT } from "../../../../src/uapi/vmx.js";
import { MSR_IA32_VMX_PROCBASED_CTLS2, vmxCapabilityMsr } from "../../../../src/hw/x86/vmx/caps.js";
import { Machine, GUEST_HPA } from "./harness.js";

// Real-mode guest: xsaves [0x3000]; xrstors [0x3000]; hlt (EDX:EAX = 3).
const CODE = [0x0f, 0xc7, 0x2e, 0x00, 0x30, 0x0f, 0xc7, 0x1e, 0x00, 0x30, 0xf4];

function guest(proc2: number): Machine {
  const m = new Machine();
  m.poke(0x1000, CODE);
  m.setup({ proc2 });
  m.w(F.GUEST_CR4, 0x2000 | (1 << 18) | (1 << 9)); // VMXE, OSXSAVE, OSFXSR
  m.w(F.EXCEPTION_BITMAP, 1 << 6);
  m.cpu.state.xcr0 = 3;
  m.setGpr(0, 3);
  m.setGpr(2, 0);
  return m;
}

test("IA32_VMX_PROCBASED_CTLS2 allows enable XSAVES/XRSTORS (bit 20 of the allowed-1 half)", () => {
  const out = new Int32Array(2);
  assert.ok(vmxCapabilityMsr(MSR_IA32_VMX_PROCBASED_CTLS2, out));
  assert.equal((out[1]! >>> 20) & 1, 1);
  assert.equal(F.SECONDARY_EXEC_ENABLE_XSAVES, 1 << 20);
});

test("without enable XSAVES/XRSTORS, XSAVES is #UD in non-root operation", () => {
  const m = guest(0);
  m.vmx.vmlaunch();
  assert.equal(m.r(F.VM_EXIT_REASON), EXIT_REASON_EXCEPTION_NMI);
  assert.equal(m.r(F.VM_EXIT_INTR_INFO), 0x80000306);
  assert.equal(m.r(F.GUEST_RIP), 0x1000);
  assert.equal(m.pm.read32(GUEST_HPA + 0x320c), 0, "nothing written");
});

test("with the control, XSAVES/XRSTORS run; IA32_XSS = 0 so even an all-ones XSS-exiting bitmap causes no exit", () => {
  const m = guest(F.SECONDARY_EXEC_ENABLE_XSAVES);
  m.vmx.vmwrite64(F.XSS_EXIT_BITMAP, -1, -1);
  m.vmx.vmlaunch();
  assert.equal(m.r(F.VM_EXIT_REASON), EXIT_REASON_HLT);
  assert.equal(m.r(F.GUEST_RIP), 0x100a);
  assert.equal(m.pm.read32(GUEST_HPA + 0x3208), 3, "XCOMP_BV[62:0]");
  assert.equal(m.pm.read32(GUEST_HPA + 0x320c), 0x80000000, "XCOMP_BV[63]");
});
