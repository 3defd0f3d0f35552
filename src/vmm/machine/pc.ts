/**
 * The PC machine, built through the KVM API the way kvmtool builds one (x86/kvm.c,
 * builtin-run.c): RAM in memslots around the PCI hole, the in-kernel irqchip and PIT when KVM
 * offers them, the legacy devices on the VMM's PIO/MMIO buses, firmware tables (e820 via the
 * boot protocols and fw_cfg, ACPI, MP table), the kernel or flat images loaded, and the vCPUs
 * created with the boot CPU at the loader's entry state.
 */
import type { HostProcess } from "../../host/process.js";
import {
  KVM_CAP_IRQCHIP, KVM_CAP_PIT2, KVM_CAP_SET_IDENTITY_MAP_ADDR, KVM_CAP_SET_TSS_ADDR, KVM_CREATE_IRQCHIP,
  KVM_CREATE_PIT2, KVM_IRQ_LINE, KVM_IRQ_ROUTING_IRQCHIP, KVM_SET_GSI_ROUTING, KVM_SET_IDENTITY_MAP_ADDR, KVM_SET_TSS_ADDR, KVM_TRANSLATE,
} from "../../uapi/kvm.js";
import { kvm_irq_level, kvm_pit_config, kvm_translation } from "../../uapi/kvm_structs.js";
import { encodeIrqRouting, KVM_IRQCHIP_IOAPIC, KVM_IRQCHIP_PIC_MASTER, KVM_IRQCHIP_PIC_SLAVE, type KvmIrqRoutingEntry } from "../../uapi/irqchip.js";
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from "../../uapi/mman.js";
import { FwCfg, FW_CFG_MAX_CPUS, FW_CFG_MAX_RAM, FW_CFG_NB_CPUS, FW_CFG_RAM_SIZE, FW_CFG_PORT_SEL, FW_CFG_E820_TABLE } from "../devices/fw_cfg.js";
import { IsaDebugExit } from "../devices/isa_debug_exit.js";
import {
  PcTestdevFlushPage, PcTestdevIomem, PcTestdevIrqLine, PcTestdevLatch, PC_TESTDEV_FLUSH_PAGE, PC_TESTDEV_IOMEM,
  PC_TESTDEV_IOMEM_LEN, PC_TESTDEV_IOPORT, PC_TESTDEV_IOPORT_BYTE, PC_TESTDEV_IRQ_LINE, PC_TESTDEV_IRQ_LINES,
} from "../devices/pc_testdev.js";
import { I440fxHostBridge, PciBus, PCI_CONFIG_ADDRESS, PCI_CONFIG_DATA } from "../devices/pci.js";
import { PciTestdev } from "../devices/pci_testdev.js";
import { AcpiPm, ACPI_PM_BASE, ACPI_PM_BLOCK_LEN, ACPI_PM1_CNT_SCI_EN, I8042Reset, I8042_COMMAND_PORT, ResetControl, RST_CNT_PORT } from "../devices/reset.js";
import { CmosRtc } from "../devices/rtc.js";
import { Serial8250 } from "../devices/serial8250.js";
import { VmmError } from "../error.js";
import { IoBus, type IrqSink, type MachineControl } from "../io_bus.js";
import type { KvmSystemApi, KvmVcpuApi, KvmVmApi } from "../kvm_api.js";
import { loadFlat, loadKernel, type KernelFormat } from "../loader/kernel.js";
import type { BootFile } from "../loader/options.js";
import type { BootState, CpuMode } from "../loader/boot_state.js";
import { installAcpiTables } from "./acpi.js";
import { applyBootState } from "./boot_regs.js";
import { cpuidForVcpu, supportedCpuid } from "./cpuid.js";
import { buildE820, encodeE820, splitRam, type E820Entry } from "./e820.js";
import { GuestRam } from "./guest_ram.js";
import { installMpTable } from "./mptable.js";

export const SERIAL_COM1 = 0x3f8;
export const SERIAL_COM1_IRQ = 4;
export const RTC_PORT = 0x70;
export const ACPI_TABLES_BASE = 0xe0000;
export const MPTABLE_BASE = 0xf0000;
/** kvmtool's placement of the VMX real-mode TSS and identity map (just below the BIOS ROM). */
export const KVM_TSS_ADDR = 0xfffbd000;
export const KVM_IDENTITY_MAP_ADDR = 0xfffbc000;
export const PCI_IO_START = 0xc000;
export const PCI_MMIO_START = 0xfe000000;

export interface PcConfig {
  ramBytes: number;
  nrCpus: number;
  kernel: BootFile | null;
  initrds: BootFile[];
  cmdline: string;
  flat: { file: BootFile; addr: number; mode: CpuMode }[];
  isaDebugExit: { iobase: number; iosize: number } | null;
  pcTestdev: boolean;
  pciTestdev: boolean;
}

/** Host services the machine needs (passed in: the core stays browser-safe). */
export interface PcHost {
  serialOut(byte: number): void;
  nowMs(): number;
  /** Diagnostics for the user (stderr in the CLI). */
  warn(msg: string): void;
}

export type MachineEndKind = "exit" | "poweroff" | "reset" | "halted" | "shutdown" | "error" | "quit";

export interface MachineEnd {
  kind: MachineEndKind;
  /** Exit status for the process. */
  status: number;
  message: string;
}

export class PcMachine implements MachineControl, IrqSink {
  readonly pio = new IoBus("ioport");
  readonly mmio = new IoBus("mmio");
  readonly vm: KvmVmApi;
  readonly ram: GuestRam;
  readonly vcpus: KvmVcpuApi[] = [];
  readonly e820: E820Entry[];
  readonly serial: Serial8250;
  readonly rtc: CmosRtc;
  readonly fwCfg = new FwCfg();
  readonly pci: PciBus;
  readonly pm: AcpiPm;
  readonly pciTestdev: PciTestdev | null = null;
  readonly irqchip: boolean;
  readonly bootFormat: KernelFormat | "flat";
  readonly bootState: BootState;
  /** Set by a device or an exit: how the machine wants to end (the run loop acts on it). */
  pendingEnd: MachineEnd | null = null;
  /** Lines the devices raised or lowered, for `info irq`. */
  readonly irqCounts = new Map<number, number>();
  private readonly scratch: number;
  private readonly warned = new Set<string>();

  constructor(
    readonly kvm: KvmSystemApi,
    readonly proc: HostProcess,
    readonly cfg: PcConfig,
    readonly host: PcHost,
  ) {
    if (cfg.nrCpus < 1) throw new VmmError("at least one vCPU is needed");
    this.vm = kvm.createVm(0);
    this.scratch = proc.mm.mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);

    // x86 VMX needs a TSS and identity map for real-mode emulation on hosts without unrestricted guest.
    if (this.vm.checkExtension(KVM_CAP_SET_TSS_ADDR)) this.vm.ioctl(KVM_SET_TSS_ADDR, KVM_TSS_ADDR);
    if (this.vm.checkExtension(KVM_CAP_SET_IDENTITY_MAP_ADDR)) {
      proc.mm.writeU64(this.scratch, KVM_IDENTITY_MAP_ADDR);
      this.vm.ioctl(KVM_SET_IDENTITY_MAP_ADDR, this.scratch);
    }
    this.irqchip = this.vm.checkExtension(KVM_CAP_IRQCHIP) > 0;
    if (this.irqchip) {
      this.vm.ioctl(KVM_CREATE_IRQCHIP, 0);
      proc.mm.copyToUser(this.scratch, encodeIrqRouting(pcIrqRouting()));
      this.vm.ioctl(KVM_SET_GSI_ROUTING, this.scratch);
      if (this.vm.checkExtension(KVM_CAP_PIT2)) {
        proc.mm.copyToUser(this.scratch, kvm_pit_config.encode({ flags: 0, pad: new Array<number>(15).fill(0) }));
        this.vm.ioctl(KVM_CREATE_PIT2, this.scratch);
      }
    } else if (cfg.nrCpus > 1) {
      throw new VmmError(`-smp ${cfg.nrCpus} needs an in-kernel irqchip to start the other CPUs, and this KVM has none (KVM_CAP_IRQCHIP)`);
    }

    this.ram = new GuestRam(proc.mm, cfg.ramBytes);
    this.ram.register(this.vm);
    this.e820 = buildE820(cfg.ramBytes);

    // Devices.
    this.serial = new Serial8250("serial0 (COM1)", this, SERIAL_COM1_IRQ, (b) => host.serialOut(b));
    this.pio.register(SERIAL_COM1, 8, this.serial);
    this.rtc = new CmosRtc(() => host.nowMs(), (what) => this.warnOnce(`guest enabled ${what}, which tskvm's RTC does not generate`));
    const { below4g, above4g } = splitRam(cfg.ramBytes);
    this.rtc.setMemorySize(below4g, above4g, cfg.nrCpus);
    this.pio.register(RTC_PORT, 2, this.rtc);
    this.pio.register(RST_CNT_PORT, 1, new ResetControl(this));
    this.pio.register(I8042_COMMAND_PORT, 1, new I8042Reset(this));
    this.pm = new AcpiPm(this, () => proc.clock.nowNs());
    this.pm.pm1Cnt = ACPI_PM1_CNT_SCI_EN; // no SMI_CMD: ACPI mode from power-on
    this.pio.register(ACPI_PM_BASE, ACPI_PM_BLOCK_LEN, this.pm);
    this.pci = new PciBus(this.pio, this.mmio);
    this.pio.register(PCI_CONFIG_ADDRESS, 1, this.pci.addressPort);
    this.pio.register(PCI_CONFIG_DATA, 4, this.pci.dataPort);
    this.pci.add(new I440fxHostBridge(), 0);
    if (cfg.pciTestdev) {
      this.pciTestdev = new PciTestdev();
      this.pci.add(this.pciTestdev);
    }
    this.pci.assignBars(PCI_IO_START, PCI_MMIO_START);
    for (const e of this.pci.mapErrors) host.warn(`pci: ${e}`);
    if (cfg.isaDebugExit) this.pio.register(cfg.isaDebugExit.iobase, cfg.isaDebugExit.iosize, new IsaDebugExit(cfg.isaDebugExit.iobase, cfg.isaDebugExit.iosize, this));
    if (cfg.pcTestdev) {
      const latch = new PcTestdevLatch();
      this.pio.register(PC_TESTDEV_IOPORT, 4, latch.port);
      this.pio.register(PC_TESTDEV_FLUSH_PAGE, 4, new PcTestdevFlushPage((gpa) => this.ram.flushPage(gpa)));
      this.pio.register(PC_TESTDEV_IOPORT_BYTE, 4, latch.portByte);
      this.pio.register(PC_TESTDEV_IRQ_LINE, PC_TESTDEV_IRQ_LINES, new PcTestdevIrqLine(this));
      this.mmio.register(PC_TESTDEV_IOMEM, PC_TESTDEV_IOMEM_LEN, new PcTestdevIomem());
    }
    this.fwCfg.setU64(FW_CFG_RAM_SIZE, cfg.ramBytes);
    this.fwCfg.setU64(FW_CFG_MAX_RAM, above4g ? 0x100000000 + above4g : below4g);
    this.fwCfg.setU16(FW_CFG_NB_CPUS, cfg.nrCpus);
    this.fwCfg.setU16(FW_CFG_MAX_CPUS, cfg.nrCpus);
    this.fwCfg.setItem(FW_CFG_E820_TABLE, e820Legacy(this.e820));
    this.fwCfg.addFile("etc/e820", encodeE820(this.e820));
    this.pio.register(FW_CFG_PORT_SEL, 2, this.fwCfg);

    // Firmware tables.
    const acpi = installAcpiTables(this.ram, { nrCpus: cfg.nrCpus, pmBase: ACPI_PM_BASE, base: ACPI_TABLES_BASE });
    if (acpi.end > MPTABLE_BASE) throw new VmmError("ACPI tables overflow into the MP table area");
    installMpTable(this.ram, MPTABLE_BASE, cfg.nrCpus);

    // Images.
    let boot: { format: KernelFormat | "flat"; state: BootState } | null = null;
    if (cfg.kernel) boot = loadKernel(this.ram, { kernel: cfg.kernel, cmdline: cfg.cmdline, initrds: cfg.initrds, e820: this.e820, rsdp: acpi.rsdp });
    for (const f of cfg.flat) {
      const state = loadFlat(this.ram, f.file, f.addr, f.mode);
      // As with QEMU's generic loader, a flat image's address becomes the entry when no kernel sets one.
      if (!boot) boot = { format: "flat", state };
    }
    if (!boot) throw new VmmError("nothing to boot");
    this.bootFormat = boot.format;
    this.bootState = boot.state;

    const cpuid = supportedCpuid(kvm);
    for (let id = 0; id < cfg.nrCpus; id++) {
      const vcpu = this.vm.createVcpu(id);
      vcpu.setCpuid2(cpuidForVcpu(cpuid, id));
      this.vcpus.push(vcpu);
    }
    applyBootState(this.vcpus[0]!, this.bootState);
  }

  // ---- IrqSink: device interrupt lines go to the in-kernel PIC/IOAPIC (KVM_IRQ_LINE).
  setIrq(line: number, level: boolean): void {
    this.irqCounts.set(line, (this.irqCounts.get(line) ?? 0) + 1);
    if (!this.irqchip) return; // no interrupt controller on this machine: the line goes nowhere
    this.proc.mm.copyToUser(this.scratch, kvm_irq_level.encode({ irq: line, level: level ? 1 : 0 }));
    this.vm.ioctl(KVM_IRQ_LINE, this.scratch);
  }

  // ---- MachineControl
  requestExit(status: number): void {
    this.pendingEnd = { kind: "exit", status, message: `guest wrote to isa-debug-exit (status ${status})` };
  }

  requestReset(source: string): void {
    this.pendingEnd = { kind: "reset", status: 0, message: `guest reset (${source})` };
  }

  requestPoweroff(source: string): void {
    this.pendingEnd = { kind: "poweroff", status: 0, message: `guest powered off (${source})` };
  }

  warnOnce(msg: string): void {
    if (this.warned.has(msg)) return;
    this.warned.add(msg);
    this.host.warn(msg);
  }

  /** KVM_TRANSLATE on vCPU `i`: guest-virtual to guest-physical, or null if unmapped. */
  translate(i: number, gva: number): number | null {
    const vcpu = this.vcpus[i];
    if (!vcpu) throw new VmmError(`no vCPU ${i}`);
    this.proc.mm.copyToUser(this.scratch, kvm_translation.encode({ linear_address: BigInt(gva) }));
    vcpu.ioctl(KVM_TRANSLATE, this.scratch);
    const t = kvm_translation.decode(this.proc.mm.copyFromUser(this.scratch, kvm_translation.size));
    return t.valid ? Number(t.physical_address) : null;
  }

  /** Close the VM (as closing its fd does), then release the guest's memory mappings. */
  destroy(): void {
    try {
      this.vm.destroy();
    } catch (e) {
      // The guest's outcome stands; a failing teardown is reported, not turned into its result.
      this.host.warn(`closing the VM failed: ${e instanceof Error ? e.message : String(e)}`);
    }
    this.ram.unmap();
    this.proc.mm.munmap(this.scratch, 4096);
  }
}

/** fw_cfg's legacy FW_CFG_E820_TABLE: u32 count then {u64 addr; u64 len; u32 type} entries (reserved ranges only in QEMU; we list all). */
function e820Legacy(map: readonly E820Entry[]): Uint8Array {
  const body = encodeE820(map);
  const out = new Uint8Array(4 + body.length);
  new DataView(out.buffer).setUint32(0, map.length, true);
  out.set(body, 4);
  return out;
}

/**
 * The PC's GSI routing, as QEMU sets it (kvm_pc_setup_irq_routing): ISA IRQs 0-15 to the PICs
 * (none for the cascade, IRQ 2), and every GSI to the I/O APIC pin of the same number except that
 * GSI 0, the PIT, goes to pin 2 and GSI 2 has no route. This is the wiring the MADT's interrupt
 * source override (ISA IRQ 0 -> GSI 2) describes to the guest; KVM's default routing would send
 * the PIT to pin 0.
 */
export function pcIrqRouting(): KvmIrqRoutingEntry[] {
  const e: KvmIrqRoutingEntry[] = [];
  const route = (gsi: number, irqchip: number, pin: number): void => {
    e.push({ gsi, type: KVM_IRQ_ROUTING_IRQCHIP, flags: 0, irqchip: { irqchip, pin } });
  };
  for (let i = 0; i < 8; i++) if (i !== 2) route(i, KVM_IRQCHIP_PIC_MASTER, i);
  for (let i = 8; i < 16; i++) route(i, KVM_IRQCHIP_PIC_SLAVE, i - 8);
  for (let i = 0; i < 24; i++) {
    if (i === 0) route(0, KVM_IRQCHIP_IOAPIC, 2);
    else if (i !== 2) route(i, KVM_IRQCHIP_IOAPIC, i);
  }
  return e;
}
