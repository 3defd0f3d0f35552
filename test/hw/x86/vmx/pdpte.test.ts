// PAE PDPTE registers across VMX transitions: VM entry loads them from the VMCS with EPT
// (SDM 26.3.2.4) or from the table at the guest CR3 without (26.3.1.6 checks it), VM exit with
// EPT saves them (28.3.4), and MOV to CR3 in non-root operation reloads them through EPT.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as F from "../../../../src/hw/x86/vmx/vmcs.js";
import { EXIT_REASON_CPUID, EXIT_REASON_EPT_VIOLATION, EXIT_REASON_EXCEPTION_NMI, EXIT_REASON_INVALID_STATE } from "../../../../src/uapi/vmx.js";
import { Machine } from "./harness.js";

const le32 = (v: number): number[] => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
const le64 = (v: number): number[] => [...le32(v), 0, 0, 0, 0];
const EAX = 0, ECX = 1, EBX = 3;
const load = (reg: number, addr: number): number[] => [0x8b, 0x05 | (reg << 3), ...le32(addr)];
const movEax = (imm: number): number[] => [0xb8, ...le32(imm)];
const MOV_EAX_CR3 = [0x0f, 0x20, 0xd8], MOV_CR3_EAX = [0x0f, 0x22, 0xd8], CPUID = [0x0f, 0xa2];
const PROBE = 0x40000010;
const VIA_A = 0x1111, VIA_B = 0x2222;

/**
 * Flat 32-bit protected-mode guest with PAE paging (guest-physical, behind the harness EPT): PDPT
 * at 0x3000 whose PDPTE0 maps 0-2 MiB identically (PD 0x4000) and whose PDPTE1 in memory points
 * to PD_B (linear 0x40000000 -> gpa 0x9000); the VMCS PDPTE1 field points to PD_A (-> gpa 0x8000).
 */
function paeGuest(m: Machine, code: number[]): void {
  m.setup();
  m.poke(0x1000, code);
  m.poke(0x3000, [...le64(0x4001), ...le64(0x6001)]);
  m.poke(0x4000, le64(0x83));
  m.poke(0x5000, le64(0xa001)); // PD_A -> PT_A
  m.poke(0x6000, le64(0xb001)); // PD_B -> PT_B
  m.poke(0xa000, le64(0x8003));
  m.poke(0xb000, le64(0x9003));
  m.poke(0x8010, le32(VIA_A));
  m.poke(0x9010, le32(VIA_B));
  m.flatPaeGuest(0x3000);
  m.w(F.GUEST_PDPTR0, 0x4001);
  m.w(F.GUEST_PDPTR1, 0x5001);
}

test("VM entry with EPT takes the PDPTEs from the VMCS; a guest MOV to CR3 reloads them from memory; the exit saves them", () => {
  const m = new Machine();
  paeGuest(m, [...load(EBX, PROBE), ...MOV_EAX_CR3, ...MOV_CR3_EAX, ...load(ECX, PROBE), ...CPUID]);
  m.vmx.vmlaunch();
  assert.equal(m.r(F.VM_EXIT_REASON), EXIT_REASON_CPUID);
  assert.equal(m.gpr(EBX), VIA_A, "the walk used the VMCS PDPTE1, not the one at CR3");
  assert.equal(m.gpr(ECX), VIA_B, "MOV to CR3 loaded PDPTE1 from guest memory");
  assert.equal(m.r(F.GUEST_PDPTR0), 0x4001);
  assert.equal(m.r(F.GUEST_PDPTR1), 0x6001, "the exit stored the registers");
  assert.equal(m.r(F.GUEST_PDPTR2), 0);
  assert.equal(m.r(F.GUEST_PDPTR3), 0);
});

test("an exit saves the PDPTE registers even after the table in memory changed", () => {
  const m = new Machine();
  // The guest rewrites PDPTE1 in memory (through its identity mapping) and exits without reloading.
  paeGuest(m, [0xc7, 0x05, ...le32(0x3008), ...le32(0x7001), ...CPUID]);
  m.vmx.vmlaunch();
  assert.equal(m.r(F.VM_EXIT_REASON), EXIT_REASON_CPUID);
  assert.equal(m.r(F.GUEST_PDPTR1), 0x5001);
});

test("MOV to CR3 in non-root operation: the PDPTE load through EPT can cause an EPT violation on the instruction", () => {
  const m = new Machine();
  paeGuest(m, [...movEax(0xc000), ...MOV_CR3_EAX, ...CPUID]);
  m.eptPage(0xc000, 0);
  m.vmx.vmlaunch();
  assert.equal(m.r(F.VM_EXIT_REASON), EXIT_REASON_EPT_VIOLATION);
  assert.equal(m.r(F.GUEST_PHYSICAL_ADDRESS), 0xc000);
  const q = m.r(F.EXIT_QUALIFICATION);
  assert.equal(q & 7, 1, "a data read");
  assert.equal(q & 0x80, 0, "guest linear address not valid for a PDPTE load");
  assert.equal(m.r(F.GUEST_RIP), 0x1005, "RIP of the MOV");
  assert.equal(m.r(F.GUEST_CR3), 0x3000, "CR3 unchanged");
});

test("MOV to CR3 in non-root operation with a reserved bit in a present PDPTE is #GP(0) in the guest", () => {
  const m = new Machine();
  paeGuest(m, [...movEax(0xc000), ...MOV_CR3_EAX, ...CPUID]);
  m.poke(0xc000, [...le64(0x4001), ...le64(0x5101)]); // bit 8 is reserved
  m.w(F.EXCEPTION_BITMAP, 1 << 13);
  m.vmx.vmlaunch();
  assert.equal(m.r(F.VM_EXIT_REASON), EXIT_REASON_EXCEPTION_NMI);
  assert.equal(m.r(F.VM_EXIT_INTR_INFO) & 0xff, 13);
  assert.equal(m.r(F.VM_EXIT_INTR_ERROR_CODE), 0);
  assert.equal(m.r(F.GUEST_RIP), 0x1005);
  assert.equal(m.r(F.GUEST_CR3), 0x3000);
  assert.equal(m.r(F.GUEST_PDPTR1), 0x5001, "the registers kept the VMCS values");
  assert.equal(m.gpr(EAX), 0xc000);
});

test("VM entry without EPT loads the PDPTEs from the table at the guest CR3, leaves the VMCS fields alone and checks them", () => {
  const m = new Machine();
  m.setup();
  m.w(F.SECONDARY_VM_EXEC_CONTROL, 0);
  // Guest-physical is host-physical now: PDPT at 0x300000, code at 0x301000.
  const pm = m.pm;
  const code = [...load(EBX, PROBE), ...CPUID];
  code.forEach((b, i) => pm.write8(0x301000 + i, b));
  m.set64(0x300000, 0x302001, 0);
  m.set64(0x300008, 0x303001, 0);
  m.set64(0x302000, 0x83, 0);
  m.set64(0x302008, 0x200083, 0);
  m.set64(0x303000, 0x400083, 0); // PDPTE1 in memory: linear 0x40000000 -> 0x400000
  m.set64(0x304000, 0x200083, 0); // what the VMCS field would give: -> 0x200000
  pm.write32(0x400010, VIA_A);
  pm.write32(0x200010, VIA_B);
  m.flatPaeGuest(0x300000);
  m.w(F.GUEST_RIP, 0x301000);
  m.w(F.GUEST_PDPTR1, 0x304001);
  m.vmx.vmlaunch();
  assert.equal(m.r(F.VM_EXIT_REASON), EXIT_REASON_CPUID);
  assert.equal(m.gpr(EBX), VIA_A, "PDPTE1 came from memory");
  assert.equal(m.r(F.GUEST_PDPTR1), 0x304001, "no EPT: the exit does not store the PDPTEs");
  m.skip();
  m.set64(0x300010, 0x6003, 0); // PDPTE2: bit 1 is reserved
  m.vmx.vmresume();
  assert.equal(m.r(F.VM_EXIT_REASON), (EXIT_REASON_INVALID_STATE | 0x80000000) >>> 0);
  assert.equal(m.r(F.EXIT_QUALIFICATION), F.ENTRY_FAIL_PDPTE);
});
