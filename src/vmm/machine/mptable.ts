/**
 * The Intel MultiProcessor Specification 1.4 tables (Chapter 4): a floating pointer structure
 * in the BIOS area and the configuration table it points to, listing the processors, an ISA
 * bus, the I/O APIC and the routing of ISA IRQs 0-15 to its pins (IRQ 0 on pin 2, as on
 * every PC with an I/O APIC), plus ExtINT and NMI on the local APICs' LINT pins.
 */
import { ByteWriter, setChecksum, type GuestMemory } from "../guest_memory.js";
import { IOAPIC_BASE, LAPIC_BASE } from "./acpi.js";

const MP_PROCESSOR = 0, MP_BUS = 1, MP_IOAPIC = 2, MP_INTSRC = 3, MP_LINTSRC = 4;
const MP_INT = 0, MP_NMI = 1, MP_EXTINT = 3;

export function buildMpTable(nrCpus: number, tableAddr: number): { floating: Uint8Array; table: Uint8Array } {
  const entries: Uint8Array[] = [];
  for (let i = 0; i < nrCpus; i++) {
    const e = new ByteWriter(20);
    // CPU signature family 6 and FPU/APIC feature flags, as kvmtool reports them.
    e.u8(0, MP_PROCESSOR).u8(1, i).u8(2, 0x14).u8(3, 1 | (i === 0 ? 2 : 0)).u32(4, 0x600).u32(8, (1 << 0) | (1 << 9));
    entries.push(e.bytes);
  }
  const isaBus = 0;
  entries.push(new ByteWriter(8).u8(0, MP_BUS).u8(1, isaBus).str(2, "ISA", 6, 0x20).bytes);
  const ioapicId = nrCpus;
  entries.push(new ByteWriter(8).u8(0, MP_IOAPIC).u8(1, ioapicId).u8(2, 0x11).u8(3, 1).u32(4, IOAPIC_BASE).bytes);
  for (let irq = 0; irq < 16; irq++) {
    if (irq === 2) continue; // the cascade line has no device
    const pin = irq === 0 ? 2 : irq;
    entries.push(new ByteWriter(8).u8(0, MP_INTSRC).u8(1, MP_INT).u16(2, 0).u8(4, isaBus).u8(5, irq).u8(6, ioapicId).u8(7, pin).bytes);
  }
  entries.push(new ByteWriter(8).u8(0, MP_INTSRC).u8(1, MP_EXTINT).u16(2, 0).u8(4, isaBus).u8(5, 0).u8(6, ioapicId).u8(7, 0).bytes);
  entries.push(new ByteWriter(8).u8(0, MP_LINTSRC).u8(1, MP_EXTINT).u16(2, 0).u8(4, isaBus).u8(5, 0).u8(6, 0xff).u8(7, 0).bytes);
  entries.push(new ByteWriter(8).u8(0, MP_LINTSRC).u8(1, MP_NMI).u16(2, 0).u8(4, isaBus).u8(5, 0).u8(6, 0xff).u8(7, 1).bytes);

  const len = entries.reduce((n, e) => n + e.length, 44);
  const t = new ByteWriter(len);
  t.str(0, "PCMP").u16(4, len).u8(6, 4).str(8, "TSKVM", 8, 0x20).str(16, "PC", 12, 0x20)
    .u16(34, entries.length).u32(36, LAPIC_BASE);
  let at = 44;
  for (const e of entries) {
    t.bytes.set(e, at);
    at += e.length;
  }
  setChecksum(t.bytes, 7);

  const f = new ByteWriter(16);
  f.str(0, "_MP_").u32(4, tableAddr).u8(8, 1).u8(9, 4);
  setChecksum(f.bytes, 10);
  return { floating: f.bytes, table: t.bytes };
}

/** Write the floating pointer at `addr` (16-byte aligned) and the table right after it; returns the end. */
export function installMpTable(mem: GuestMemory, addr: number, nrCpus: number): number {
  const { floating, table } = buildMpTable(nrCpus, addr + 16);
  mem.write(addr, floating);
  mem.write(addr + 16, table);
  return addr + 16 + table.length;
}
