import { test } from "node:test";
import assert from "node:assert/strict";
import { PhysMem } from "../../../../src/hw/physmem.js";
import { Ept, EPT_FAULT_MISCONFIG, EPT_FAULT_VIOLATION, eptpValid } from "../../../../src/hw/x86/vmx/ept.js";

const PML4 = 0x10000, PDPT = 0x11000, PD = 0x12000, PT = 0x13000;
const R = 1, W = 2, X = 4, WB = 6 << 3;

function setup(): { pm: PhysMem; ept: Ept; set: (a: number, lo: number, hi?: number) => void } {
  const pm = new PhysMem(4 << 20);
  pm.populate(0); pm.populate(512);
  const set = (a: number, lo: number, hi = 0) => { pm.write32(a, lo); pm.write32(a + 4, hi); };
  set(PML4, PDPT | 7);
  set(PDPT, PD | 7);
  set(PD, PT | 7);
  set(PT + 1 * 8, 0x200000 | R | W | X | WB); // gpa 0x1000 -> hpa 0x200000
  set(PT + 2 * 8, 0x201000 | R | WB);         // read-only
  set(PT + 3 * 8, 0x202000 | X | WB);         // execute-only
  const ept = new Ept(pm);
  ept.setEptp(PML4 | 6 | (3 << 3) | (1 << 6), 0);
  return { pm, ept, set };
}

test("EPTP validity follows the advertised memory types and walk length", () => {
  assert.ok(eptpValid(PML4 | 6 | (3 << 3), 0));
  assert.ok(!eptpValid(PML4 | 5 | (3 << 3), 0));
  assert.ok(!eptpValid(PML4 | 6 | (2 << 3), 0));
  assert.ok(!eptpValid(PML4 | 6 | (3 << 3) | 0x80, 0));
  assert.ok(!eptpValid(PML4 | 6 | (3 << 3), 0x4000));
});

test("4 KiB translation, permissions, A/D flags and violation qualification", () => {
  const { pm, ept } = setup();
  assert.equal(ept.translate(0x1234, 1, false, false), 0x200234);
  assert.equal(pm.read32(PML4) & 0x100, 0x100, "A set on PML4E");
  assert.equal(pm.read32(PT + 8) & 0x300, 0x100, "A but not D on a read");
  assert.equal(ept.translate(0x1234, 2, false, false), 0x200234);
  assert.equal(pm.read32(PT + 8) & 0x300, 0x300, "D on a write");
  // read-only page: write -> violation with R permission reported, GLA valid + translated
  assert.equal(ept.translate(0x2010, 2, true, false), -1);
  assert.equal(ept.fault, EPT_FAULT_VIOLATION);
  assert.equal(ept.qualification, 0x2 | (1 << 3) | (1 << 7) | (1 << 8));
  // guest paging-structure access with A/D on counts as a write; GLA valid but not translated
  assert.equal(ept.translate(0x2010, 1, true, true), -1);
  assert.equal(ept.qualification, 0x3 | (1 << 3) | (1 << 7));
  // execute-only
  assert.equal(ept.translate(0x3000, 4, false, false), 0x202000);
  assert.equal(ept.translate(0x3000, 1, false, false), -1);
  assert.equal(ept.qualification, 1 | (4 << 3));
  // not present
  assert.equal(ept.translate(0x5000, 4, false, false), -1);
  assert.equal(ept.qualification, 4);
});

test("cached translations survive until INVEPT/EPTP change", () => {
  const { ept, set } = setup();
  assert.equal(ept.translate(0x1000, 1, false, false), 0x200000);
  set(PT + 8, 0x203000 | 7 | WB);
  assert.equal(ept.translate(0x1000, 1, false, false), 0x200000, "stale until invalidated");
  ept.flush();
  assert.equal(ept.translate(0x1000, 1, false, false), 0x203000);
});

test("2 MiB and 1 GiB leaves and misconfigurations", () => {
  const { ept, set } = setup();
  set(PD + 8, 0x200000 | 0x80 | 7 | WB);           // gpa 0x200000 (2 MiB) -> hpa 0x200000
  assert.equal(ept.translate(0x2345f0, 1, false, false), 0x2345f0);
  set(PDPT + 8, 0x80 | 7 | WB);                      // gpa 1 GiB -> hpa 0
  assert.equal(ept.translate(0x40001234, 2, false, false), 0x1234);
  set(PD + 16, 0x201000 | 0x80 | 7 | WB); ept.flush(); // reserved bits in a 2 MiB leaf
  assert.equal(ept.translate(0x400000, 1, false, false), -1);
  assert.equal(ept.fault, EPT_FAULT_MISCONFIG);
  set(PT + 4 * 8, 0x200000 | W | WB);                // W without R
  assert.equal(ept.translate(0x4000, 1, false, false), -1);
  assert.equal(ept.fault, EPT_FAULT_MISCONFIG);
  set(PT + 5 * 8, 0x200000 | 7 | (2 << 3));          // reserved memory type
  assert.equal(ept.translate(0x5000, 1, false, false), -1);
  assert.equal(ept.fault, EPT_FAULT_MISCONFIG);
  set(PT + 6 * 8, 0x200000 | 7 | WB, 0x80000);       // address bit 51 (reserved above 46)
  assert.equal(ept.translate(0x6000, 1, false, false), -1);
  assert.equal(ept.fault, EPT_FAULT_MISCONFIG);
  set(PML4 + 8, 0x80 | 7);                           // PML4E bit 7 reserved
  assert.equal(ept.translate(0x8000000000, 1, false, false), -1);
  assert.equal(ept.fault, EPT_FAULT_MISCONFIG);
});
