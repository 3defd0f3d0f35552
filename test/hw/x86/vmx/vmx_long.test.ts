import { test } from "node:test";
import assert from "node:assert/strict";
import * as F from "../../../../src/hw/x86/vmx/vmcs.js";
import { VMX_SUCCEED } from "../../../../src/hw/x86/vmx/vmx.js";
import { EXIT_REASON_EXCEPTION_NMI, EXIT_REASON_TRIPLE_FAULT, EXIT_REASON_CPUID } from "../../../../src/uapi/vmx.js";
import { Machine } from "./harness.js";

/** A 64-bit guest: 4-level paging (one 2 MiB page at 0) in guest memory, itself behind EPT. */
function longModeGuest(m: Machine, code: number[]): void {
  m.setup({ entry: F.VM_ENTRY_IA32E_MODE | F.VM_ENTRY_LOAD_IA32_EFER, exit: F.VM_EXIT_SAVE_IA32_EFER });
  m.poke(0x3000, [0x03, 0x40, 0, 0, 0, 0, 0, 0]); // PML4[0] -> 0x4000
  m.poke(0x4000, [0x03, 0x50, 0, 0, 0, 0, 0, 0]); // PDPT[0] -> 0x5000
  m.poke(0x5000, [0x83, 0x00, 0, 0, 0, 0, 0, 0]); // PD[0]: 2 MiB page at 0
  m.poke(0x1000, code);
  m.w(F.GUEST_CR0, 0x80000031);
  m.w(F.GUEST_CR3, 0x3000);
  m.w(F.GUEST_CR4, 0x2020);
  m.w(F.GUEST_IA32_EFER, 0x500);
  for (let s = 0; s < 6; s++) {
    m.w(F.GUEST_SEG_SELECTOR_BASE + 2 * s, s === 1 ? 8 : 0x10);
    m.w(F.GUEST_SEG_LIMIT_BASE + 2 * s, 0xffffffff);
    m.w(F.GUEST_SEG_AR_BASE + 2 * s, s === 1 ? 0xa09b : 0xc093);
  }
  m.w(F.GUEST_LDTR_AR_BYTES, 0x10000);
  m.w(F.GUEST_TR_SELECTOR, 0x18);
  m.w(F.GUEST_TR_LIMIT, 0x67);
  m.w(F.GUEST_TR_AR_BYTES, 0x8b);
  m.w(F.GUEST_IDTR_LIMIT, 0);
}

test("64-bit guest: #PF exits per exception bitmap with CR2-to-be in the qualification; mask/match", () => {
  const m = new Machine();
  // mov 0x400000,%eax (unmapped in the guest page tables)
  longModeGuest(m, [0x8b, 0x04, 0x25, 0x00, 0x00, 0x40, 0x00]);
  m.w(F.EXCEPTION_BITMAP, 1 << 14);
  assert.equal(m.vmx.vmlaunch(), VMX_SUCCEED);
  assert.equal(m.r(F.VM_EXIT_REASON), EXIT_REASON_EXCEPTION_NMI);
  assert.equal(m.r(F.VM_EXIT_INTR_INFO), 0x80000b0e);
  assert.equal(m.r(F.VM_EXIT_INTR_ERROR_CODE), 0);
  assert.equal(m.r(F.EXIT_QUALIFICATION), 0x400000);
  assert.equal(m.r(F.GUEST_RIP), 0x1000);
  assert.equal(m.r(F.GUEST_IA32_EFER), 0x500);
  assert.equal(m.r(F.VM_ENTRY_CONTROLS) & F.VM_ENTRY_IA32E_MODE, F.VM_ENTRY_IA32E_MODE);
  assert.notEqual(m.cpu.state.cr2, 0x400000, "CR2 is not written on an exception exit");
  // Only protection faults (P=1) exit now: the not-present #PF goes to the guest, whose empty
  // IDT turns it into #GP, #DF and a triple fault, which always exits.
  m.w(F.PAGE_FAULT_ERROR_CODE_MASK, 1);
  m.w(F.PAGE_FAULT_ERROR_CODE_MATCH, 1);
  m.vmx.vmresume();
  assert.equal(m.r(F.VM_EXIT_REASON), EXIT_REASON_TRIPLE_FAULT);
});

test("64-bit guest: RIP and RFLAGS round-trip; CPUID exit at a 64-bit RIP", () => {
  const m = new Machine();
  longModeGuest(m, [0x90, 0x0f, 0xa2]);
  m.w(F.GUEST_RFLAGS, 0x246);
  m.vmx.vmlaunch();
  assert.equal(m.r(F.VM_EXIT_REASON), EXIT_REASON_CPUID);
  assert.equal(m.r(F.GUEST_RIP), 0x1001);
  assert.equal(m.r(F.GUEST_RFLAGS), 0x246);
  assert.equal(m.r(F.GUEST_CS_AR_BYTES), 0xa09b);
});

test("PAE guest with EPT: the PDPTE registers loaded from the VMCS are saved on exit", () => {
  const m = new Machine();
  m.setup();
  m.poke(0x3000, [0x01, 0x40, 0, 0, 0, 0, 0, 0, 0x01, 0x50, 0, 0, 0, 0, 0, 0]); // PDPTE0 -> 0x4000, PDPTE1 -> 0x5000
  m.poke(0x4000, [0x83, 0, 0, 0, 0, 0, 0, 0]);                                 // PDE0: 2 MiB at 0
  m.poke(0x1000, [0x0f, 0xa2]);
  m.flatPaeGuest(0x3000);
  // With EPT, VM entry takes the PDPTEs from the VMCS, not from the table at CR3 (SDM 26.3.2.4).
  m.w(F.GUEST_PDPTR0, 0x4001);
  m.w(F.GUEST_PDPTR1, 0x5001);
  m.vmx.vmlaunch();
  assert.equal(m.r(F.VM_EXIT_REASON), EXIT_REASON_CPUID);
  assert.equal(m.r(F.GUEST_PDPTR0), 0x4001);
  assert.equal(m.r(F.GUEST_PDPTR1), 0x5001);
  assert.equal(m.r(F.GUEST_PDPTR2), 0);
  // A reserved bit in a present PDPTE field fails the next entry (qualification ENTRY_FAIL_PDPTE).
  m.vmx.vmwrite64(F.GUEST_PDPTR2, 0x6003, 0);
  m.vmx.vmresume();
  assert.equal(m.r(F.VM_EXIT_REASON), (33 | 0x80000000) >>> 0);
  assert.equal(m.r(F.EXIT_QUALIFICATION), F.ENTRY_FAIL_PDPTE);
});
