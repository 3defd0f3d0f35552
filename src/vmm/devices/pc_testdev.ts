/**
 * pc-testdev (QEMU hw/misc/pc-testdev.c's role), the test device kvm-unit-tests drives:
 *   0xe0-0xe3, 0xe8-0xeb  a 32-bit latch readable/writable at any byte lane
 *   0xe4                  write a guest-physical address: its host page is mprotect'ed to
 *                         PROT_NONE and back, which exercises KVM's mmu-notifier path
 *   0x2000-0x2017         writing byte N sets ISA IRQ line N to (value != 0); reads give 0
 *   0xff000000 (64 KiB)   MMIO that behaves like RAM
 */
import { leGet, lePut, type IoDevice, type IrqSink } from "../io_bus.js";

export const PC_TESTDEV_IOPORT = 0xe0;
export const PC_TESTDEV_FLUSH_PAGE = 0xe4;
export const PC_TESTDEV_IOPORT_BYTE = 0xe8;
export const PC_TESTDEV_IRQ_LINE = 0x2000;
export const PC_TESTDEV_IRQ_LINES = 24;
export const PC_TESTDEV_IOMEM = 0xff000000;
export const PC_TESTDEV_IOMEM_LEN = 0x10000;

/** The 32-bit latch at 0xe0 and its byte-lane alias at 0xe8 (one shared value). */
export class PcTestdevLatch {
  value = 0;

  readonly port: IoDevice;
  readonly portByte: IoDevice;

  constructor() {
    const make = (name: string): IoDevice => ({
      name,
      read: (offset, data, len) => lePut(data, len, this.readLanes(offset, Math.min(len, 4))),
      write: (offset, data, len) => this.writeLanes(offset, Math.min(len, 4), leGet(data, Math.min(len, 4))),
    });
    this.port = make("pc-testdev-ioport");
    this.portByte = make("pc-testdev-ioport-byte");
  }

  private laneMask(offset: number, len: number): [number, number] {
    const shift = (offset & 3) * 8;
    const bits = Math.min(len * 8, 32 - shift);
    const mask = bits >= 32 ? 0xffffffff : ((1 << bits) - 1) >>> 0;
    return [shift, mask];
  }

  readLanes(offset: number, len: number): number {
    const [shift, mask] = this.laneMask(offset, len);
    return ((this.value >>> shift) & mask) >>> 0;
  }

  writeLanes(offset: number, len: number, v: number): void {
    const [shift, mask] = this.laneMask(offset, len);
    this.value = ((this.value & ~(mask << shift)) | ((v & mask) << shift)) >>> 0;
  }
}

/** Port 0xe4: the flush-page trigger; `flushPage(gpa)` is the machine's mprotect round trip. */
export class PcTestdevFlushPage implements IoDevice {
  readonly name = "pc-testdev-flush-page";
  flushes = 0;

  constructor(private readonly flushPage: (gpa: number) => void) {}

  read(_offset: number, data: Uint8Array, len: number): void {
    data.fill(0, 0, len);
  }

  write(_offset: number, data: Uint8Array, len: number): void {
    this.flushes++;
    this.flushPage(leGet(data, Math.min(len, 4)) & ~0xfff);
  }
}

/** Ports 0x2000-0x2017: one byte per ISA interrupt line. */
export class PcTestdevIrqLine implements IoDevice {
  readonly name = "pc-testdev-irq-line";

  constructor(private readonly irq: IrqSink) {}

  read(_offset: number, data: Uint8Array, len: number): void {
    data.fill(0, 0, len);
  }

  write(offset: number, data: Uint8Array, len: number): void {
    // Each byte of a wider access addresses the next line, as the byte-only region splits it.
    for (let i = 0; i < len && offset + i < PC_TESTDEV_IRQ_LINES; i++) this.irq.setIrq(offset + i, data[i] !== 0);
  }
}

/** 0xff000000: 64 KiB of MMIO-backed storage. */
export class PcTestdevIomem implements IoDevice {
  readonly name = "pc-testdev-iomem";
  readonly buf = new Uint8Array(PC_TESTDEV_IOMEM_LEN);

  read(offset: number, data: Uint8Array, len: number): void {
    for (let i = 0; i < len; i++) data[i] = offset + i < this.buf.length ? this.buf[offset + i]! : 0;
  }

  write(offset: number, data: Uint8Array, len: number): void {
    for (let i = 0; i < len && offset + i < this.buf.length; i++) this.buf[offset + i] = data[i]!;
  }
}
