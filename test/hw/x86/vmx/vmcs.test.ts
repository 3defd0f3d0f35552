import { test } from "node:test";
import assert from "node:assert/strict";
import { PhysMem } from "../../../../src/hw/physmem.js";
import {
  VmcsCache, vmcsSlot, vmcsFieldWidth, vmcsFieldType, VMCS_SUPPORTED_FIELDS, GUEST_RIP, EPT_POINTER,
  EPT_POINTER_HIGH, VM_EXIT_REASON, GUEST_ES_SELECTOR, HOST_RIP, VMCS_FIELD_WIDTH_NATURAL_WIDTH,
  VMCS_FIELD_TYPE_EXIT_INFO, VMCS_FIELD_WIDTH_U64, validRegionPointer, CPU_BASED_VM_EXEC_CONTROL,
} from "../../../../src/hw/x86/vmx/vmcs.js";

test("field encodings decode to the SDM width/type and are unique", () => {
  assert.equal(vmcsFieldWidth(GUEST_RIP), VMCS_FIELD_WIDTH_NATURAL_WIDTH);
  assert.equal(vmcsFieldType(VM_EXIT_REASON), VMCS_FIELD_TYPE_EXIT_INFO);
  assert.equal(vmcsFieldWidth(EPT_POINTER), VMCS_FIELD_WIDTH_U64);
  assert.equal(new Set(VMCS_SUPPORTED_FIELDS).size, VMCS_SUPPORTED_FIELDS.length);
  for (const f of VMCS_SUPPORTED_FIELDS) assert.equal(f & 1, 0, `0x${f.toString(16)} is a full-access encoding`);
  assert.equal(vmcsSlot(EPT_POINTER_HIGH), -1);
  assert.equal(vmcsSlot(0x2030), -1);
  assert.ok(vmcsSlot(GUEST_ES_SELECTOR) >= 0);
});

test("cache round-trips through the region; canonical numbers are exact", () => {
  const pm = new PhysMem(2 << 20);
  pm.populate(0);
  assert.ok(validRegionPointer(pm, 0x3000));
  assert.ok(!validRegionPointer(pm, 0x3008));
  assert.ok(!validRegionPointer(pm, 4 << 20));
  const c = new VmcsCache();
  c.load(pm, 0x3000);
  c.wNum(GUEST_RIP, -0x7f000000);
  c.wNum(HOST_RIP, 0x123456789000);
  c.w32(CPU_BASED_VM_EXEC_CONTROL, 0x80000000);
  c.launched = true;
  c.store(pm);
  const d = new VmcsCache();
  d.load(pm, 0x3000);
  assert.equal(d.rNum(GUEST_RIP), -0x7f000000);
  assert.equal(d.rHi(GUEST_RIP), 0xffffffff);
  assert.equal(d.rNum(HOST_RIP), 0x123456789000);
  assert.equal(d.r32(CPU_BASED_VM_EXEC_CONTROL), 0x80000000);
  assert.equal(d.launched, true);
});
