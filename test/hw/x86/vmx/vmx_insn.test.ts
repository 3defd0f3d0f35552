import { test } from "node:test";
import assert from "node:assert/strict";
import * as F from "../../../../src/hw/x86/vmx/vmcs.js";
import { VMX_SUCCEED, VMX_FAIL_INVALID, VMX_FAIL_VALID, VmxUsageError, VmxAbortError } from "../../../../src/hw/x86/vmx/vmx.js";
import { vmxCapabilityMsr, MSR_IA32_VMX_BASIC, MSR_IA32_VMX_PROCBASED_CTLS2, MSR_IA32_VMX_VMFUNC } from "../../../../src/hw/x86/vmx/caps.js";
import { EXIT_REASON_INVALID_STATE, EXIT_REASON_MSR_LOAD_FAIL, EXIT_REASON_CPUID } from "../../../../src/uapi/vmx.js";
import { Machine, VMXON_HPA, VMCS_HPA } from "./harness.js";

test("capability MSRs: revision, VMCS size, TRUE controls; unknown VMX MSR is refused", () => {
  const out = new Int32Array(2);
  assert.ok(vmxCapabilityMsr(MSR_IA32_VMX_BASIC, out));
  assert.equal(out[0], F.VMCS_REVISION_ID);
  assert.equal(out[1] & 0x1fff, 4096);
  assert.equal((out[1] >>> 23) & 1, 1);
  assert.ok(vmxCapabilityMsr(MSR_IA32_VMX_PROCBASED_CTLS2, out));
  assert.equal(out[1] & F.SECONDARY_EXEC_ENABLE_EPT, F.SECONDARY_EXEC_ENABLE_EPT);
  assert.equal(out[1] & F.SECONDARY_EXEC_VIRTUALIZE_APIC_ACCESSES, 0, "not implemented, not advertised");
  assert.equal(vmxCapabilityMsr(MSR_IA32_VMX_VMFUNC, out), false);
});

test("VMXON/VMPTRLD/VMCLEAR status and VM-instruction errors", () => {
  const m = new Machine();
  const vmx = m.vmx;
  assert.throws(() => vmx.vmread(F.GUEST_RIP), VmxUsageError);
  m.pm.write32(0x3000, 0x1234);
  assert.equal(vmx.vmxon(0x3000), VMX_FAIL_INVALID, "wrong revision");
  assert.equal(vmx.vmxon(0x1008), VMX_FAIL_INVALID, "misaligned");
  assert.equal(vmx.vmxon(VMXON_HPA), VMX_SUCCEED);
  assert.equal(vmx.vmxon(VMXON_HPA), VMX_FAIL_INVALID, "VMXON in root without a current VMCS");
  assert.equal(vmx.vmptrst(), -1);
  assert.equal(vmx.vmread(F.GUEST_RIP), 0);
  assert.equal(vmx.status, VMX_FAIL_INVALID);
  assert.equal(vmx.vmptrld(VMCS_HPA), VMX_SUCCEED);
  assert.equal(vmx.vmptrst(), VMCS_HPA);
  assert.equal(vmx.vmptrld(0x3000), VMX_FAIL_VALID);
  assert.equal(vmx.vmread(F.VM_INSTRUCTION_ERROR), F.VMXERR_VMPTRLD_INCORRECT_VMCS_REVISION_ID);
  assert.equal(vmx.vmptrld(VMXON_HPA), VMX_FAIL_VALID);
  assert.equal(vmx.vmread(F.VM_INSTRUCTION_ERROR), F.VMXERR_VMPTRLD_VMXON_POINTER);
  assert.equal(vmx.vmclear(VMXON_HPA), VMX_FAIL_VALID);
  assert.equal(vmx.vmread(F.VM_INSTRUCTION_ERROR), F.VMXERR_VMCLEAR_VMXON_POINTER);
  assert.equal(vmx.vmxon(VMXON_HPA), VMX_FAIL_VALID);
  assert.equal(vmx.vmread(F.VM_INSTRUCTION_ERROR), F.VMXERR_VMXON_IN_VMX_ROOT_OPERATION);
  // VMREAD/VMWRITE rules
  assert.equal(vmx.vmwrite(F.VM_EXIT_REASON, 1), VMX_FAIL_VALID);
  assert.equal(vmx.vmread(F.VM_INSTRUCTION_ERROR), F.VMXERR_VMWRITE_READ_ONLY_VMCS_COMPONENT);
  assert.equal(vmx.vmwrite(0x2030, 1), VMX_FAIL_VALID);
  assert.equal(vmx.vmread(F.VM_INSTRUCTION_ERROR), F.VMXERR_UNSUPPORTED_VMCS_COMPONENT);
  assert.equal(vmx.vmwrite(F.GUEST_RIP | 1, 1), VMX_FAIL_VALID, "no high access to natural-width fields");
  assert.equal(vmx.vmwrite(F.GUEST_ES_SELECTOR, 0x12345), VMX_SUCCEED);
  assert.equal(vmx.vmread(F.GUEST_ES_SELECTOR), 0x2345, "16-bit field truncates");
  assert.equal(vmx.vmwrite64(F.TSC_OFFSET, 0x89abcdef, 0xfedcba98), VMX_SUCCEED);
  const out = new Int32Array(2);
  vmx.vmread64(F.TSC_OFFSET, out);
  assert.deepEqual([out[0] >>> 0, out[1] >>> 0], [0x89abcdef, 0xfedcba98]);
  assert.equal(vmx.vmread(F.TSC_OFFSET_HIGH), 0xfedcba98);
  vmx.vmwrite(F.TSC_OFFSET_HIGH, 7);
  vmx.vmread64(F.TSC_OFFSET, out);
  assert.deepEqual([out[0] >>> 0, out[1]], [0x89abcdef, 7]);
  vmx.vmwrite(F.GUEST_RIP, -0x7effff00);
  assert.equal(vmx.vmread(F.GUEST_RIP), -0x7effff00);
  // The VMCS data survives VMCLEAR + VMPTRLD (written back to the region).
  assert.equal(vmx.vmclear(VMCS_HPA), VMX_SUCCEED);
  assert.equal(vmx.vmptrst(), -1);
  assert.equal(vmx.vmptrld(VMCS_HPA), VMX_SUCCEED);
  assert.equal(vmx.vmread(F.GUEST_RIP), -0x7effff00);
  assert.equal(vmx.invept(3, 0), VMX_FAIL_VALID);
  assert.equal(vmx.vmread(F.VM_INSTRUCTION_ERROR), F.VMXERR_INVALID_OPERAND_TO_INVEPT_INVVPID);
  assert.equal(vmx.invvpid(F.VMX_VPID_EXTENT_SINGLE_CONTEXT, 0, 0), VMX_FAIL_VALID);
  assert.equal(vmx.invvpid(F.VMX_VPID_EXTENT_ALL_CONTEXT, 0, 0), VMX_SUCCEED);
  assert.equal(vmx.vmxoff(), VMX_SUCCEED);
});

test("VMLAUNCH/VMRESUME launch-state errors and control/host-state checks", () => {
  const m = new Machine();
  m.poke(0x1000, [0x0f, 0xa2]);
  m.setup();
  const vmx = m.vmx;
  assert.equal(vmx.vmresume(), VMX_FAIL_VALID);
  assert.equal(m.r(F.VM_INSTRUCTION_ERROR), F.VMXERR_VMRESUME_NONLAUNCHED_VMCS);
  // unsupported control bit (TPR shadow is not implemented)
  m.w(F.CPU_BASED_VM_EXEC_CONTROL, m.r(F.CPU_BASED_VM_EXEC_CONTROL) | F.CPU_BASED_TPR_SHADOW);
  assert.equal(vmx.vmlaunch(), VMX_FAIL_VALID);
  assert.equal(m.r(F.VM_INSTRUCTION_ERROR), F.VMXERR_ENTRY_INVALID_CONTROL_FIELD);
  m.w(F.CPU_BASED_VM_EXEC_CONTROL, m.r(F.CPU_BASED_VM_EXEC_CONTROL) & ~F.CPU_BASED_TPR_SHADOW);
  // unrestricted guest without EPT
  m.w(F.SECONDARY_VM_EXEC_CONTROL, F.SECONDARY_EXEC_UNRESTRICTED_GUEST);
  assert.equal(vmx.vmlaunch(), VMX_FAIL_VALID);
  assert.equal(m.r(F.VM_INSTRUCTION_ERROR), F.VMXERR_ENTRY_INVALID_CONTROL_FIELD);
  m.w(F.SECONDARY_VM_EXEC_CONTROL, F.SECONDARY_EXEC_UNRESTRICTED_GUEST | F.SECONDARY_EXEC_ENABLE_EPT);
  // injection of a #GP with an error code into a real-mode (unrestricted) guest
  m.w(F.VM_ENTRY_INTR_INFO_FIELD, 0x80000b0d);
  assert.equal(vmx.vmlaunch(), VMX_FAIL_VALID);
  assert.equal(m.r(F.VM_INSTRUCTION_ERROR), F.VMXERR_ENTRY_INVALID_CONTROL_FIELD);
  m.w(F.VM_ENTRY_INTR_INFO_FIELD, 0);
  // host CS selector with RPL != 0
  m.w(F.HOST_CS_SELECTOR, 0x13);
  assert.equal(vmx.vmlaunch(), VMX_FAIL_VALID);
  assert.equal(m.r(F.VM_INSTRUCTION_ERROR), F.VMXERR_ENTRY_INVALID_HOST_STATE_FIELD);
  m.w(F.HOST_CS_SELECTOR, 0x10);
  assert.equal(vmx.vmlaunch(), VMX_SUCCEED);
  assert.equal(m.r(F.VM_EXIT_REASON), EXIT_REASON_CPUID);
  assert.equal(vmx.vmlaunch(), VMX_FAIL_VALID);
  assert.equal(m.r(F.VM_INSTRUCTION_ERROR), F.VMXERR_VMLAUNCH_NONCLEAR_VMCS);
});

test("invalid guest state is a VM-entry failure with reason 33 | bit 31", () => {
  const m = new Machine();
  m.setup();
  m.w(F.GUEST_RFLAGS, 0); // bit 1 must be 1
  assert.equal(m.vmx.vmlaunch(), VMX_SUCCEED);
  assert.equal(m.r(F.VM_EXIT_REASON), (EXIT_REASON_INVALID_STATE | 0x80000000) >>> 0);
  assert.equal(m.r(F.EXIT_QUALIFICATION), F.ENTRY_FAIL_DEFAULT);
  assert.equal(m.vmx.vmresume(), VMX_FAIL_VALID, "a failed VMLAUNCH leaves the VMCS clear");
  m.w(F.GUEST_RFLAGS, 2);
  m.w(F.VMCS_LINK_POINTER, 0x3000);
  m.vmx.vmlaunch();
  assert.equal(m.r(F.VM_EXIT_REASON), (EXIT_REASON_INVALID_STATE | 0x80000000) >>> 0);
  assert.equal(m.r(F.EXIT_QUALIFICATION), F.ENTRY_FAIL_VMCS_LINK_PTR);
  m.w(F.VMCS_LINK_POINTER, -1);
  // CR0.PG without PE
  m.w(F.GUEST_CR0, 0x80000030);
  m.vmx.vmlaunch();
  assert.equal(m.r(F.VM_EXIT_REASON), (EXIT_REASON_INVALID_STATE | 0x80000000) >>> 0);
  m.w(F.GUEST_CR0, 0x30);
  // CS unusable
  m.w(F.GUEST_CS_AR_BYTES, F.INTR_INFO_VALID_MASK >>> 15);
  m.vmx.vmlaunch();
  assert.equal(m.r(F.VM_EXIT_REASON), (EXIT_REASON_INVALID_STATE | 0x80000000) >>> 0);
});

test("VM-entry MSR-load area: a bad entry fails the entry with reason 34 and its index", () => {
  const m = new Machine();
  m.poke(0x1000, [0x0f, 0xa2]);
  m.setup();
  const area = 0x17000;
  m.set64(area, 0x277, 0); m.set64(area + 8, 0x00070106, 0x00070406); // IA32_PAT
  m.set64(area + 16, 0xdead, 0); m.set64(area + 24, 0, 0);           // no such MSR
  m.w(F.VM_ENTRY_MSR_LOAD_ADDR, area);
  m.w(F.VM_ENTRY_MSR_LOAD_COUNT, 2);
  m.vmx.vmlaunch();
  assert.equal(m.r(F.VM_EXIT_REASON), (EXIT_REASON_MSR_LOAD_FAIL | 0x80000000) >>> 0);
  assert.equal(m.r(F.EXIT_QUALIFICATION), 2);
  m.w(F.VM_ENTRY_MSR_LOAD_COUNT, 1);
  const store = 0x18000;
  m.set64(store, 0x277, 0);
  m.w(F.VM_EXIT_MSR_STORE_ADDR, store);
  m.w(F.VM_EXIT_MSR_STORE_COUNT, 1);
  m.vmx.vmlaunch();
  assert.equal(m.r(F.VM_EXIT_REASON), EXIT_REASON_CPUID);
  assert.equal(m.pm.read32(store + 8), 0x00070106, "guest PAT loaded on entry and stored on exit");
});

test("bitmaps in nonexistent memory read as all ones; a failing exit MSR-store area is a VMX abort", () => {
  const m = new Machine();
  m.poke(0x1000, [0x0f, 0x32]); // rdmsr
  m.setup({ proc: F.CPU_BASED_USE_MSR_BITMAPS });
  m.w(F.MSR_BITMAP, 0x700000);
  m.setGpr(1, 0x10);
  assert.equal(m.vmx.vmlaunch(), VMX_SUCCEED);
  assert.equal(m.r(F.VM_EXIT_REASON), 31);
  m.w(F.VM_EXIT_MSR_STORE_ADDR, 0x700000);
  m.w(F.VM_EXIT_MSR_STORE_COUNT, 1);
  assert.throws(() => m.vmx.vmresume(), VmxAbortError);
  assert.equal(m.cpu.vmx, null);
  assert.equal(m.pm.read32(VMCS_HPA + 4), 1, "abort indicator: saving guest MSRs failed");
});
