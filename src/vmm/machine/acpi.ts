/**
 * ACPI tables placed where firmware places them (ACPI 6.5 §5.2): the RSDP on a 16-byte
 * boundary in the BIOS area 0xE0000-0xFFFFF, then RSDT, XSDT, FADT (with the PM timer,
 * PM1 blocks and the 0xcf9 reset register), FACS, a DSDT declaring \_S5, and the MADT
 * (one local APIC per vCPU, the I/O APIC, ISA overrides). Every table is checksummed.
 */
import { ByteWriter, setChecksum, type GuestMemory } from "../guest_memory.js";
import {
  ACPI_PM1_CNT_LEN, ACPI_PM1_CNT_OFF, ACPI_PM1_EVT_LEN, ACPI_PM1_EVT_OFF, ACPI_PM_TMR_LEN,
  ACPI_PM_TMR_OFF, ACPI_S5_SLP_TYP, RST_CNT_PORT, RST_CNT_RST_CPU, RST_CNT_SYS_RST,
} from "../devices/reset.js";

export const ACPI_OEM_ID = "TSKVM ";
export const ACPI_OEM_TABLE_ID = "TSKVMPC ";
export const LAPIC_BASE = 0xfee00000;
export const IOAPIC_BASE = 0xfec00000;
export const ACPI_SCI_IRQ = 9;

export interface AcpiConfig {
  nrCpus: number;
  pmBase: number;
  /** Where to put the tables: a 16-byte aligned address in 0xE0000-0xFFFFF. */
  base: number;
}

export interface AcpiLayout {
  rsdp: number;
  rsdt: number;
  xsdt: number;
  fadt: number;
  facs: number;
  dsdt: number;
  madt: number;
  end: number;
}

const HDR = 36;

/** The common 36-byte description header (ACPI 6.5 §5.2.6). */
function header(w: ByteWriter, sig: string, revision: number): void {
  w.str(0, sig).u32(4, w.bytes.length).u8(8, revision).str(10, ACPI_OEM_ID, 6).str(16, ACPI_OEM_TABLE_ID, 8)
    .u32(24, 1).str(28, "TSKV").u32(32, 1);
}

function finish(w: ByteWriter): Uint8Array {
  setChecksum(w.bytes, 9);
  return w.bytes;
}

/** Generic Address Structure (ACPI 6.5 §5.2.3.2), system I/O space. */
function gasIo(w: ByteWriter, at: number, port: number, bits: number, accessSize: number): void {
  w.u8(at, 1).u8(at + 1, bits).u8(at + 2, 0).u8(at + 3, accessSize).u64(at + 4, port);
}

export function buildDsdt(): Uint8Array {
  // Name (_S5, Package (4) { SLP_TYP, SLP_TYP, 0, 0 })
  const aml = [0x08, 0x5f, 0x53, 0x35, 0x5f, 0x12, 0x08, 0x04, 0x0a, ACPI_S5_SLP_TYP, 0x0a, ACPI_S5_SLP_TYP, 0x00, 0x00];
  const w = new ByteWriter(HDR + aml.length);
  header(w, "DSDT", 2);
  w.bytes.set(aml, HDR);
  return finish(w);
}

export function buildFacs(): Uint8Array {
  const w = new ByteWriter(64);
  w.str(0, "FACS").u32(4, 64).u8(32, 1); // version 1 (ACPI 2.0+ layout)
  return w.bytes;
}

export function buildFadt(cfg: AcpiConfig, facs: number, dsdt: number): Uint8Array {
  const w = new ByteWriter(244);
  header(w, "FACP", 3);
  const pm1Evt = cfg.pmBase + ACPI_PM1_EVT_OFF, pm1Cnt = cfg.pmBase + ACPI_PM1_CNT_OFF, pmTmr = cfg.pmBase + ACPI_PM_TMR_OFF;
  w.u32(36, facs).u32(40, dsdt);
  w.u16(46, ACPI_SCI_IRQ);
  w.u32(48, 0); // SMI_CMD 0: the platform is always in ACPI mode (SCI_EN reads 1)
  w.u32(56, pm1Evt).u32(64, pm1Cnt).u32(76, pmTmr);
  w.u8(88, ACPI_PM1_EVT_LEN).u8(89, ACPI_PM1_CNT_LEN).u8(91, ACPI_PM_TMR_LEN);
  w.u16(96, 101).u16(98, 1001); // no C2/C3 states
  w.u8(108, 0x32); // CMOS century register
  w.u16(109, 0x0001); // IAPC_BOOT_ARCH: LEGACY_DEVICES; no 8042 keyboard controller
  // Flags: WBINVD(0) | PROC_C1(2) | PWR_BUTTON(4) | SLP_BUTTON(5) | RESET_REG_SUP(10)
  w.u32(112, (1 << 0) | (1 << 2) | (1 << 4) | (1 << 5) | (1 << 10));
  gasIo(w, 116, RST_CNT_PORT, 8, 1);
  w.u8(128, RST_CNT_SYS_RST | RST_CNT_RST_CPU);
  w.u64(132, facs).u64(140, dsdt);
  gasIo(w, 148, pm1Evt, ACPI_PM1_EVT_LEN * 8, 2);
  gasIo(w, 172, pm1Cnt, ACPI_PM1_CNT_LEN * 8, 2);
  gasIo(w, 208, pmTmr, ACPI_PM_TMR_LEN * 8, 3);
  return finish(w);
}

export function buildMadt(cfg: AcpiConfig): Uint8Array {
  const entries: number[][] = [];
  for (let i = 0; i < cfg.nrCpus; i++) entries.push([0, 8, i, i, 1, 0, 0, 0]); // Processor Local APIC, enabled
  const ioapicId = cfg.nrCpus;
  entries.push([1, 12, ioapicId, 0, ...le32(IOAPIC_BASE), ...le32(0)]); // I/O APIC, GSI base 0
  entries.push([2, 10, 0, 0, ...le32(2), 0, 0]); // ISA IRQ 0 -> GSI 2, bus-conforming
  entries.push([2, 10, 0, ACPI_SCI_IRQ, ...le32(ACPI_SCI_IRQ), 0x0d, 0x00]); // SCI: level, active high
  entries.push([4, 6, 0xff, 0, 0, 1]); // Local APIC NMI on LINT1 for all processors
  const len = entries.reduce((n, e) => n + e.length, HDR + 8);
  const w = new ByteWriter(len);
  header(w, "APIC", 3);
  w.u32(36, LAPIC_BASE).u32(40, 1); // PCAT_COMPAT: dual 8259s present
  let at = HDR + 8;
  for (const e of entries) {
    w.bytes.set(e, at);
    at += e.length;
  }
  return finish(w);
}

function buildSdt(sig: string, ptrs: number[], wide: boolean): Uint8Array {
  const size = wide ? 8 : 4;
  const w = new ByteWriter(HDR + ptrs.length * size);
  header(w, sig, 1);
  ptrs.forEach((p, i) => (wide ? w.u64(HDR + i * 8, p) : w.u32(HDR + i * 4, p)));
  return finish(w);
}

export function buildRsdp(rsdt: number, xsdt: number): Uint8Array {
  const w = new ByteWriter(36);
  w.str(0, "RSD PTR ").str(9, ACPI_OEM_ID, 6).u8(15, 2).u32(16, rsdt).u32(20, 36).u64(24, xsdt);
  setChecksum(w.bytes, 8, 0, 20); // ACPI 1.0 checksum over the first 20 bytes
  setChecksum(w.bytes, 32, 0, 36); // extended checksum over the whole structure
  return w.bytes;
}

/** Build every table and copy them into guest memory; returns where each went. */
export function installAcpiTables(mem: GuestMemory, cfg: AcpiConfig): AcpiLayout {
  let at = cfg.base;
  const place = (bytes: Uint8Array, align: number): number => {
    at = Math.ceil(at / align) * align;
    const where = at;
    mem.write(where, bytes);
    at += bytes.length;
    return where;
  };
  const rsdpAt = place(new Uint8Array(36), 16); // reserve; filled last
  const facs = place(buildFacs(), 64);
  const dsdt = place(buildDsdt(), 16);
  const fadt = place(buildFadt(cfg, facs, dsdt), 16);
  const madt = place(buildMadt(cfg), 16);
  const rsdt = place(buildSdt("RSDT", [fadt, madt], false), 16);
  const xsdt = place(buildSdt("XSDT", [fadt, madt], true), 16);
  mem.write(rsdpAt, buildRsdp(rsdt, xsdt));
  return { rsdp: rsdpAt, rsdt, xsdt, fadt, facs, dsdt, madt, end: at };
}

function le32(v: number): number[] {
  return [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
}
