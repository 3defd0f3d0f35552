import { test } from "node:test";
import assert from "node:assert/strict";
import { IoBus, type IrqSink, type MachineControl } from "../../../src/vmm/io_bus.js";
import * as U from "../../../src/vmm/devices/serial8250.js";
import { CmosRtc, RTC_REG_B, REG_B_DM, RTC_HOURS, RTC_REG_C } from "../../../src/vmm/devices/rtc.js";
import { IsaDebugExit } from "../../../src/vmm/devices/isa_debug_exit.js";
import { PcTestdevIomem, PcTestdevIrqLine, PcTestdevLatch } from "../../../src/vmm/devices/pc_testdev.js";
import { AcpiPm, ACPI_PM1_CNT_OFF, I8042Reset, ResetControl } from "../../../src/vmm/devices/reset.js";
import { FwCfg, FW_CFG_FILE_DIR, FW_CFG_ID, FW_CFG_RAM_SIZE, FW_CFG_SIGNATURE } from "../../../src/vmm/devices/fw_cfg.js";
import { I440fxHostBridge, PciBus, PCI_CONFIG_ADDRESS, PCI_CONFIG_DATA } from "../../../src/vmm/devices/pci.js";
import { PciTestdev } from "../../../src/vmm/devices/pci_testdev.js";

class Irqs implements IrqSink {
  levels = new Map<number, boolean>();
  setIrq(line: number, level: boolean): void { this.levels.set(line, level); }
}
class Ctl implements MachineControl {
  events: string[] = [];
  requestExit(s: number) { this.events.push(`exit ${s}`); }
  requestReset(src: string) { this.events.push(`reset ${src}`); }
  requestPoweroff(src: string) { this.events.push(`off ${src}`); }
}

function outb(bus: IoBus, port: number, v: number, len = 1) {
  const d = new Uint8Array(8);
  for (let i = 0; i < len; i++) d[i] = (v >>> (8 * i)) & 0xff;
  bus.write(port, d, len);
}
function inb(bus: IoBus, port: number, len = 1): number {
  const d = new Uint8Array(8);
  bus.read(port, d, len);
  let v = 0;
  for (let i = len - 1; i >= 0; i--) v = v * 256 + d[i]!;
  return v;
}

test("io bus: sorted lookup, overlap refused, unclaimed reads float high", () => {
  const bus = new IoBus("pio");
  const dev = { name: "a", read: (_o: number, d: Uint8Array) => { d[0] = 1; }, write: () => {} };
  bus.register(0x10, 4, dev);
  bus.register(0x20, 4, { ...dev, name: "b" });
  assert.throws(() => bus.register(0x12, 4, { ...dev, name: "c" }), /overlaps a/);
  assert.throws(() => bus.register(0x1e, 4, { ...dev, name: "c" }), /overlaps b/);
  assert.equal(bus.find(0x13)?.dev.name, "a");
  assert.equal(bus.find(0x14), null);
  assert.equal(inb(bus, 0x50), 0xff);
  assert.equal(bus.unclaimedReads, 1);
  assert.ok(bus.unregister(0x10));
  assert.equal(bus.find(0x10), null);
});

test("16550A: transmit, DLAB, scratch, loopback, FIFO and interrupts", () => {
  const irqs = new Irqs();
  const out: number[] = [];
  const bus = new IoBus("pio");
  const uart = new U.Serial8250("ttyS0", irqs, 4, (b) => out.push(b));
  bus.register(0x3f8, 8, uart);
  outb(bus, 0x3f8, 0x41);
  assert.deepEqual(out, [0x41]);
  assert.equal(inb(bus, 0x3fd) & (U.UART_LSR_THRE | U.UART_LSR_TEMT), 0x60);
  // DLAB: divisor latch replaces RBR/IER
  outb(bus, 0x3fb, 0x83);
  outb(bus, 0x3f8, 0x01);
  outb(bus, 0x3f9, 0x00);
  assert.equal(inb(bus, 0x3f8), 0x01);
  outb(bus, 0x3fb, 0x03);
  assert.deepEqual(out, [0x41], "divisor writes do not transmit");
  outb(bus, 0x3ff, 0x5a);
  assert.equal(inb(bus, 0x3ff), 0x5a);
  // THRE interrupt: enabling it raises IRQ 4; reading IIR acknowledges it.
  outb(bus, 0x3f9, U.UART_IER_THRI);
  assert.equal(irqs.levels.get(4), true);
  assert.equal(inb(bus, 0x3fa) & 0x0f, U.UART_IIR_THRI);
  assert.equal(irqs.levels.get(4), false);
  assert.equal(inb(bus, 0x3fa) & 0x0f, U.UART_IIR_NO_INT);
  // Receive with RDI enabled, FIFO off: one byte holds, rest waits in the backlog.
  outb(bus, 0x3f9, U.UART_IER_RDI);
  uart.receive([0x61, 0x62]);
  assert.equal(irqs.levels.get(4), true);
  assert.equal(inb(bus, 0x3fa) & 0x0f, U.UART_IIR_RDI);
  assert.equal(inb(bus, 0x3f8), 0x61);
  assert.equal(inb(bus, 0x3f8), 0x62);
  assert.equal(inb(bus, 0x3fd) & U.UART_LSR_DR, 0);
  assert.equal(irqs.levels.get(4), false);
  // FIFO enabled: IIR reports FIFO bits; below trigger level it's a character timeout.
  outb(bus, 0x3fa, U.UART_FCR_ENABLE_FIFO | 0xc0);
  assert.equal(inb(bus, 0x3fa) & 0xc0, 0xc0);
  uart.receive([1, 2, 3]);
  assert.equal(inb(bus, 0x3fa) & 0x0f, U.UART_IIR_RX_TIMEOUT);
  outb(bus, 0x3fa, U.UART_FCR_ENABLE_FIFO | U.UART_FCR_CLEAR_RCVR);
  assert.equal(inb(bus, 0x3fd) & U.UART_LSR_DR, 0);
  // Loopback: TX comes back on RX, modem lines mirror MCR.
  outb(bus, 0x3fc, U.UART_MCR_LOOP | U.UART_MCR_RTS | U.UART_MCR_DTR);
  outb(bus, 0x3f8, 0x77);
  assert.deepEqual(out, [0x41]);
  assert.equal(inb(bus, 0x3f8), 0x77);
  const msr = inb(bus, 0x3fe);
  assert.equal(msr & 0xf0, U.UART_MSR_CTS | U.UART_MSR_DSR);
  assert.equal(inb(bus, 0x3fe) & 0x0f, 0, "delta bits clear on read");
  // Overrun in loopback: 17th byte without reading sets OE.
  for (let i = 0; i < 17; i++) outb(bus, 0x3f8, i);
  assert.equal(inb(bus, 0x3fd) & U.UART_LSR_OE, U.UART_LSR_OE);
  assert.equal(inb(bus, 0x3fd) & U.UART_LSR_OE, 0);
});

test("RTC: BCD/binary time, 12-hour, guest sets time, memory size bytes", () => {
  let now = Date.UTC(2024, 1, 29, 13, 45, 30);
  const rtc = new CmosRtc(() => now);
  const bus = new IoBus("pio");
  bus.register(0x70, 2, rtc);
  const rd = (r: number) => { outb(bus, 0x70, r); return inb(bus, 0x71); };
  const wr = (r: number, v: number) => { outb(bus, 0x70, r); outb(bus, 0x71, v); };
  assert.equal(rd(0), 0x30);
  assert.equal(rd(2), 0x45);
  assert.equal(rd(4), 0x13);
  assert.equal(rd(7), 0x29);
  assert.equal(rd(8), 0x02);
  assert.equal(rd(9), 0x24);
  assert.equal(rd(0x32), 0x20);
  assert.equal(rd(0x0d), 0x80);
  wr(RTC_REG_B, 0x02 | REG_B_DM);
  assert.equal(rd(0), 30);
  wr(RTC_REG_B, REG_B_DM); // 12-hour binary
  assert.equal(rd(RTC_HOURS), 0x80 | 1);
  wr(RTC_REG_B, 0x02);
  wr(RTC_HOURS, 0x08);
  assert.equal(rd(RTC_HOURS), 0x08);
  now += 3600_000;
  assert.equal(rd(RTC_HOURS), 0x09, "the clock keeps running from the guest's setting");
  assert.equal(rd(RTC_REG_C), 0);
  outb(bus, 0x70, 0x80 | 0x0a);
  assert.ok(rtc.nmiDisabled);
  rtc.setMemorySize(256 << 20, 1 << 30, 2);
  assert.equal(rd(0x15) | (rd(0x16) << 8), 640);
  assert.equal(rd(0x17) | (rd(0x18) << 8), 0xffff, "extended memory saturates at 64 MiB - 1 KiB");
  assert.equal(rd(0x34) | (rd(0x35) << 8), (240 << 20) / 65536);
  assert.equal(rd(0x5b) | (rd(0x5c) << 8) | (rd(0x5d) << 16), (1 << 30) / 65536);
  assert.equal(rd(0x5f), 1);
});

test("isa-debug-exit: status (value << 1) | 1", () => {
  const ctl = new Ctl();
  const bus = new IoBus("pio");
  bus.register(0xf4, 4, new IsaDebugExit(0xf4, 4, ctl));
  outb(bus, 0xf4, 0);
  outb(bus, 0xf4, 0x21, 4);
  assert.deepEqual(ctl.events, ["exit 1", "exit 67"]);
});

test("reset paths: 0xcf9, 8042 0xfe, ACPI S5; PM timer counts", () => {
  const ctl = new Ctl();
  const bus = new IoBus("pio");
  let ns = 0;
  bus.register(0xcf9, 1, new ResetControl(ctl));
  bus.register(0x64, 1, new I8042Reset(ctl));
  const pm = new AcpiPm(ctl, () => ns);
  bus.register(0x600, 12, pm);
  outb(bus, 0xcf9, 0x02);
  assert.equal(inb(bus, 0xcf9), 0x02);
  outb(bus, 0xcf9, 0x06);
  outb(bus, 0x64, 0xaa);
  outb(bus, 0x64, 0xfe);
  outb(bus, 0x600 + ACPI_PM1_CNT_OFF, (1 << 10) | (1 << 13), 2); // S1: not ours
  outb(bus, 0x600 + ACPI_PM1_CNT_OFF, (0 << 10) | (1 << 13), 2); // S5 is SLP_TYP 0, as on QEMU's pc
  assert.deepEqual(ctl.events, ["reset 0xcf9 hard reset", "reset 8042 pulse reset", "off ACPI S5"]);
  assert.equal(inb(bus, 0x608, 4), 0);
  ns = 1e9;
  assert.equal(inb(bus, 0x608, 4), 3579545 & 0xffffff);
  outb(bus, 0x602, 0x0121, 2);
  assert.equal(pm.pm1En, 0x0121);
});

test("pc-testdev: latch lanes, IRQ lines, iomem", () => {
  const latch = new PcTestdevLatch();
  const irqs = new Irqs();
  const bus = new IoBus("pio");
  bus.register(0xe0, 4, latch.port);
  bus.register(0xe8, 4, latch.portByte);
  bus.register(0x2000, 24, new PcTestdevIrqLine(irqs));
  outb(bus, 0xe0, 0x12345678, 4);
  assert.equal(inb(bus, 0xe0, 4), 0x12345678);
  assert.equal(inb(bus, 0xe2, 2), 0x1234);
  outb(bus, 0xe9, 0xab);
  assert.equal(inb(bus, 0xe8, 4), 0x1234ab78);
  outb(bus, 0x2000 + 10, 1);
  assert.equal(irqs.levels.get(10), true);
  outb(bus, 0x2000 + 10, 0);
  assert.equal(irqs.levels.get(10), false);
  const mem = new PcTestdevIomem();
  const mmio = new IoBus("mmio");
  mmio.register(0xff000000, 0x10000, mem);
  const d = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]);
  mmio.write(0xff000010, d, 8);
  const r = new Uint8Array(8);
  mmio.read(0xff000012, r, 4);
  assert.deepEqual([...r.subarray(0, 4)], [3, 4, 5, 6]);
});

test("fw_cfg: signature, id, items and the big-endian file directory", () => {
  const fw = new FwCfg();
  const bus = new IoBus("pio");
  bus.register(0x510, 2, fw);
  const select = (k: number) => outb(bus, 0x510, k, 2);
  const bytes = (n: number) => Array.from({ length: n }, () => inb(bus, 0x511));
  select(FW_CFG_SIGNATURE);
  assert.equal(String.fromCharCode(...bytes(4)), "QEMU");
  select(FW_CFG_ID);
  assert.deepEqual(bytes(4), [1, 0, 0, 0]);
  fw.setU64(FW_CFG_RAM_SIZE, 0x1_2000_0000);
  select(FW_CFG_RAM_SIZE);
  assert.deepEqual(bytes(9), [0, 0, 0, 0x20, 1, 0, 0, 0, 0]);
  fw.addFile("etc/e820", new Uint8Array(40));
  select(FW_CFG_FILE_DIR);
  const dir = bytes(4 + 64);
  assert.deepEqual(dir.slice(0, 4), [0, 0, 0, 1]);
  assert.deepEqual(dir.slice(4, 10), [0, 0, 0, 40, 0, 0x20]);
  assert.equal(String.fromCharCode(...dir.slice(12, 20)), "etc/e820");
});

test("PCI: host bridge config, absent slots, BAR sizing and remapping; pci-testdev counts", () => {
  const pio = new IoBus("pio");
  const mmio = new IoBus("mmio");
  const pci = new PciBus(pio, mmio);
  pio.register(PCI_CONFIG_ADDRESS, 1, pci.addressPort);
  pio.register(PCI_CONFIG_DATA, 4, pci.dataPort);
  pci.add(new I440fxHostBridge(), 0);
  const td = new PciTestdev();
  const slot = pci.add(td);
  pci.assignBars(0xc000, 0xfe000000);
  const cfg = (s: number, reg: number) => { outb(pio, 0xcf8, 0x80000000 | (s << 11) | reg, 4); return inb(pio, 0xcfc, 4); };
  assert.equal(cfg(0, 0), 0x12378086);
  assert.equal(cfg(0, 8) >>> 8, 0x060000);
  assert.equal(cfg(7, 0), 0xffffffff);
  assert.equal(cfg(slot, 0), 0x00051b36);
  assert.equal(cfg(slot, 0x10), 0xfe000000);
  assert.equal(cfg(slot, 0x14), 0xc001);
  // Size BAR0: write all ones, read back the size mask.
  outb(pio, 0xcf8, 0x80000000 | (slot << 11) | 0x10, 4);
  outb(pio, 0xcfc, 0xffffffff, 4);
  assert.equal(inb(pio, 0xcfc, 4), 0xfffff000);
  assert.equal(td.bars[0]!.mapped, null, "an all-ones BAR is not decoded");
  outb(pio, 0xcfc, 0xfd000000, 4);
  assert.equal(td.bars[0]!.mapped, 0xfd000000);
  assert.equal(mmio.find(0xfd000800)?.dev.name, "pci-testdev-mmio");
  // MMIO test 2 (datamatch): select, read the header, hit the offset with matching and other data.
  const w8 = (a: number, v: number) => mmio.write(a, new Uint8Array([v]), 1);
  w8(0xfd000000, 2);
  const hdr = new Uint8Array(8);
  mmio.read(0xfd000004, hdr, 1);
  const off = hdr[0]! | 0x800;
  assert.equal(off, 2048 + 2);
  w8(0xfd000000 + off, 0xfa);
  w8(0xfd000000 + off, 0x11);
  assert.equal(td.count(2), 1);
  // PIO test 1 (wildcard) on BAR1.
  outb(pio, 0xc000, 1);
  outb(pio, 0xc000 + 128 + 4, 0x99);
  assert.equal(td.count(4), 1);
  // Command register memory enable off unmaps BAR0.
  outb(pio, 0xcf8, 0x80000000 | (slot << 11) | 0x04, 4);
  outb(pio, 0xcfc, 0x1, 2);
  assert.equal(mmio.find(0xfd000800), null);
});
