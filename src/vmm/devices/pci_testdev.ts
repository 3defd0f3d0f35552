/**
 * pci-testdev (QEMU hw/misc/pci-testdev.c's role; 1b36:0005), used by kvm-unit-tests to
 * measure and check MMIO and PIO exits. BAR 0 is 4 KiB of MMIO, BAR 1 256 bytes of I/O.
 * Six tests, three per space: "no-eventfd", "wildcard-eventfd", "datamatch-eventfd". Writing
 * test number N (0-2) at offset 0 of a BAR selects test N of that space; the region then reads
 * back the test's header {u8 test; u8 width; u16 pad; u32 offset; u8 data; u8 pad[3];
 * u32 count; char name[]} and every byte write at header.offset (for datamatch tests: only
 * of value header.data) increments count. Accesses are handled one byte at a time.
 *
 * The eventfd variants are counted here in userspace rather than by a KVM ioeventfd; what the
 * guest observes (the count) is the same.
 */
import type { IoDevice } from "../io_bus.js";
import { PciDevice } from "./pci.js";

export const PCI_VENDOR_ID_REDHAT = 0x1b36;
export const PCI_DEVICE_ID_REDHAT_TEST = 0x0005;
export const IOTEST_DATAMATCH = 0xfa;
export const IOTEST_NOMATCH = 0xce;
export const IOTEST_IOSIZE = 128;
export const IOTEST_MEMSIZE = 2048;
const TESTS = ["no-eventfd", "wildcard-eventfd", "datamatch-eventfd"];
const TYPES = ["mmio", "portio"];
const HDR_SIZE = 16;

interface IoTest {
  hdr: Uint8Array;
  offset: number;
  matchData: boolean;
  data: number;
}

export class PciTestdev extends PciDevice {
  private readonly tests: IoTest[] = [];
  private current = -1;

  constructor() {
    super("pci-testdev", PCI_VENDOR_ID_REDHAT, PCI_DEVICE_ID_REDHAT_TEST, 0x00ff00, 0);
    for (let i = 0; i < TESTS.length * TYPES.length; i++) {
      const test = TESTS[i % TESTS.length]!;
      const isMem = Math.floor(i / TESTS.length) === 0;
      const name = `${TYPES[Math.floor(i / TESTS.length)]}-${test}`;
      const hdr = new Uint8Array(HDR_SIZE + name.length + 1);
      const offset = (isMem ? IOTEST_MEMSIZE : IOTEST_IOSIZE) + i;
      const matchData = test !== "wildcard-eventfd";
      const data = matchData ? IOTEST_DATAMATCH : IOTEST_NOMATCH;
      const dv = new DataView(hdr.buffer);
      hdr[0] = i;
      hdr[1] = 1; // access width
      dv.setUint32(4, offset, true);
      hdr[8] = data;
      hdr.set(new TextEncoder().encode(name), HDR_SIZE);
      this.tests.push({ hdr, offset, matchData, data });
    }
    this.addBar(0, IOTEST_MEMSIZE * 2, false, this.region("pci-testdev-mmio", 0));
    this.addBar(1, IOTEST_IOSIZE * 2, true, this.region("pci-testdev-portio", 1));
  }

  /** The count of test `i` (for tests and the monitor). */
  count(i: number): number {
    return new DataView(this.tests[i]!.hdr.buffer).getUint32(12, true);
  }

  private region(name: string, type: number): IoDevice {
    return {
      name,
      read: (offset, data, len) => {
        for (let i = 0; i < len; i++) data[i] = this.readByte(offset + i);
      },
      write: (offset, data, len) => {
        for (let i = 0; i < len; i++) this.writeByte(offset + i, data[i]!, type);
      },
    };
  }

  private readByte(addr: number): number {
    if (this.current < 0) return 0;
    const hdr = this.tests[this.current]!.hdr;
    return addr + 1 >= hdr.length ? 0 : hdr[addr]!;
  }

  private writeByte(addr: number, v: number, type: number): void {
    if (addr === 0) {
      this.current = -1;
      if (v >= TESTS.length) return;
      this.current = type * TESTS.length + v;
      new DataView(this.tests[this.current]!.hdr.buffer).setUint32(12, 0, true); // starting a test zeroes its count
      return;
    }
    if (this.current < 0) return;
    const t = this.tests[this.current]!;
    if (addr !== t.offset) return;
    if (t.matchData && v !== t.data) return;
    const dv = new DataView(t.hdr.buffer);
    dv.setUint32(12, (dv.getUint32(12, true) + 1) >>> 0, true);
  }
}
