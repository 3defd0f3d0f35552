import { test } from "node:test";
import assert from "node:assert/strict";
import { FlatMemory } from "../helpers.js";
import { buildE820, encodeE820, splitRam, E820_RAM, E820_RESERVED } from "../../../src/vmm/machine/e820.js";
import { installAcpiTables } from "../../../src/vmm/machine/acpi.js";
import { installMpTable } from "../../../src/vmm/machine/mptable.js";
import { byteSum } from "../../../src/vmm/guest_memory.js";

const MB = 1 << 20;

test("e820: low RAM, EBDA and BIOS reserved, hole below 4 GiB, RAM above", () => {
  assert.deepEqual(buildE820(128 * MB), [
    { addr: 0, size: 0x9fc00, type: E820_RAM },
    { addr: 0x9fc00, size: 0x400, type: E820_RESERVED },
    { addr: 0xe0000, size: 0x20000, type: E820_RESERVED },
    { addr: 0x100000, size: 127 * MB, type: E820_RAM },
  ]);
  const big = buildE820(4096 * MB);
  assert.deepEqual(splitRam(4096 * MB), { below4g: 0xc0000000, above4g: 0x40000000 });
  assert.deepEqual(big.at(-1), { addr: 0x100000000, size: 0x40000000, type: E820_RAM });
  const enc = encodeE820(big);
  assert.equal(enc.length, 20 * big.length);
  assert.equal(new DataView(enc.buffer).getBigUint64(20 * 4, true), 0x100000000n);
});

test("ACPI: RSDP in the BIOS area, every table checksums to zero, pointers chain", () => {
  const mem = new FlatMemory(16 * MB);
  const l = installAcpiTables(mem, { nrCpus: 2, pmBase: 0x600, base: 0xe0000 });
  assert.equal(l.rsdp, 0xe0000);
  const rsdp = mem.read(l.rsdp, 36);
  assert.equal(new TextDecoder().decode(rsdp.subarray(0, 8)), "RSD PTR ");
  assert.equal(byteSum(rsdp, 0, 20), 0);
  assert.equal(byteSum(rsdp), 0);
  assert.equal(mem.u32(l.rsdp + 16), l.rsdt);
  assert.equal(mem.u64(l.rsdp + 24), l.xsdt);
  for (const [at, sig] of [[l.rsdt, "RSDT"], [l.xsdt, "XSDT"], [l.fadt, "FACP"], [l.madt, "APIC"], [l.dsdt, "DSDT"]] as const) {
    const len = mem.u32(at + 4);
    const t = mem.read(at, len);
    assert.equal(new TextDecoder().decode(t.subarray(0, 4)), sig);
    assert.equal(byteSum(t), 0, `${sig} checksum`);
  }
  assert.equal(mem.u32(l.rsdt + 36), l.fadt);
  assert.equal(mem.u64(l.xsdt + 44), l.madt);
  assert.equal(mem.u32(l.fadt + 36), l.facs);
  assert.equal(l.facs % 64, 0);
  assert.equal(mem.u32(l.fadt + 76), 0x608, "PM timer block");
  assert.equal(mem.u32(l.fadt + 64), 0x604, "PM1a control block");
  assert.equal(mem.u64(l.fadt + 116 + 4), 0xcf9, "reset register");
  // MADT: two enabled local APICs then the I/O APIC.
  assert.deepEqual([...mem.read(l.madt + 44, 16)], [0, 8, 0, 0, 1, 0, 0, 0, 0, 8, 1, 1, 1, 0, 0, 0]);
  assert.equal(mem.bytes[l.madt + 60], 1);
  assert.ok(l.end < 0x100000);
});

test("MP table: floating pointer and configuration table checksums, entries", () => {
  const mem = new FlatMemory(2 * MB);
  const end = installMpTable(mem, 0xf0000, 4);
  const fp = mem.read(0xf0000, 16);
  assert.equal(new TextDecoder().decode(fp.subarray(0, 4)), "_MP_");
  assert.equal(byteSum(fp), 0);
  assert.equal(mem.u32(0xf0004), 0xf0010);
  const len = mem.u32(0xf0010 + 4) & 0xffff;
  const t = mem.read(0xf0010, len);
  assert.equal(new TextDecoder().decode(t.subarray(0, 4)), "PCMP");
  assert.equal(byteSum(t), 0);
  assert.equal(end, 0xf0010 + len);
  assert.equal(t[44], 0);
  assert.equal(t[44 + 3], 3, "CPU 0 is enabled and the BSP");
  assert.equal(t[64 + 3], 1, "CPU 1 enabled, not BSP");
});
