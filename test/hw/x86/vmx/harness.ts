/**
 * Test harness: a machine with one X86Cpu + VmxRoot, a VMXON region, one VMCS and an EPT that
 * maps guest-physical 0..2 MiB with 4 KiB pages to host-physical GUEST_HPA + gpa. The VMCS is
 * built by hand for a real-mode guest at 0x1000 with unrestricted guest + EPT (no KVM involved).
 */
import { PhysMem } from "../../../../src/hw/physmem.js";
import { X86Cpu } from "../../../../src/hw/x86/cpu.js";
import { VmxRoot, VMX_SUCCEED } from "../../../../src/hw/x86/vmx/vmx.js";
import * as F from "../../../../src/hw/x86/vmx/vmcs.js";
import { PIN_DEFAULT1, PROC_TRUE_DEFAULT1, EXIT_TRUE_DEFAULT1, ENTRY_TRUE_DEFAULT1 } from "../../../../src/hw/x86/vmx/caps.js";

export const VMXON_HPA = 0x1000;
export const VMCS_HPA = 0x2000;
export const EPT_PML4 = 0x10000, EPT_PDPT = 0x11000, EPT_PD = 0x12000, EPT_PT = 0x13000;
export const MSR_BITMAP_HPA = 0x14000;
export const IO_BITMAP_A_HPA = 0x15000, IO_BITMAP_B_HPA = 0x16000;
export const GUEST_HPA = 0x200000;
export const EPTP = EPT_PML4 | 6 | (3 << 3);

export class Machine {
  readonly pm = new PhysMem(8 << 20);
  readonly cpu: X86Cpu;
  readonly vmx: VmxRoot;
  /** Host clock in ns; `clockStep` is added on every read (0: time stands still). */
  now = 0;
  clockStep = 0;
  constructor(sliceInsns = 100000) {
    for (let c = 0; c < 3; c++) this.pm.populate(c * 512); // 0x600000-0x7fffff stays unpopulated
    this.cpu = new X86Cpu(this.pm, { clockNs: () => (this.now += this.clockStep) });
    this.vmx = new VmxRoot(this.cpu, { sliceInsns });
    this.pm.write32(VMXON_HPA, F.VMCS_REVISION_ID);
    this.pm.write32(VMCS_HPA, F.VMCS_REVISION_ID);
    this.set64(EPT_PML4, EPT_PDPT | 7, 0);
    this.set64(EPT_PDPT, EPT_PD | 7, 0);
    this.set64(EPT_PD, EPT_PT | 7, 0);
    for (let i = 0; i < 512; i++) this.set64(EPT_PT + i * 8, (GUEST_HPA + i * 4096) | 7 | (6 << 3), 0);
  }

  set64(hpa: number, lo: number, hi: number): void {
    this.pm.write32(hpa, lo);
    this.pm.write32(hpa + 4, hi);
  }

  /** Write guest bytes at guest-physical `gpa`. */
  poke(gpa: number, bytes: number[]): void {
    bytes.forEach((b, i) => this.pm.write8(GUEST_HPA + gpa + i, b));
  }

  /** Make guest page `gpa` (4 KiB) not present in EPT (or give it `rwx`). */
  eptPage(gpa: number, rwx: number): void {
    this.set64(EPT_PT + (gpa >>> 12) * 8, (GUEST_HPA + gpa) | rwx | (rwx ? 6 << 3 : 0), 0);
  }

  w(field: number, v: number): void {
    const r = this.vmx.vmwrite(field, v);
    if (r !== VMX_SUCCEED) throw new Error(`vmwrite 0x${field.toString(16)} failed: ${r}`);
  }

  r(field: number): number {
    return this.vmx.vmread(field);
  }

  /** VMXON + VMCLEAR + VMPTRLD + a complete real-mode guest at 0x1000 with unrestricted guest and EPT. */
  setup(opts: { proc?: number; proc2?: number; pin?: number; exit?: number; entry?: number } = {}): void {
    const vmx = this.vmx;
    if (vmx.vmxon(VMXON_HPA) !== VMX_SUCCEED) throw new Error("vmxon");
    if (vmx.vmclear(VMCS_HPA) !== VMX_SUCCEED) throw new Error("vmclear");
    if (vmx.vmptrld(VMCS_HPA) !== VMX_SUCCEED) throw new Error("vmptrld");
    this.w(F.PIN_BASED_VM_EXEC_CONTROL, PIN_DEFAULT1 | (opts.pin ?? 0));
    this.w(F.CPU_BASED_VM_EXEC_CONTROL, (PROC_TRUE_DEFAULT1 | F.CPU_BASED_HLT_EXITING | F.CPU_BASED_UNCOND_IO_EXITING |
      F.CPU_BASED_ACTIVATE_SECONDARY_CONTROLS | (opts.proc ?? 0)) >>> 0);
    this.w(F.SECONDARY_VM_EXEC_CONTROL, F.SECONDARY_EXEC_ENABLE_EPT | F.SECONDARY_EXEC_UNRESTRICTED_GUEST | (opts.proc2 ?? 0));
    this.w(F.VM_EXIT_CONTROLS, EXIT_TRUE_DEFAULT1 | F.VM_EXIT_HOST_ADDR_SPACE_SIZE | F.VM_EXIT_ACK_INTR_ON_EXIT | (opts.exit ?? 0));
    this.w(F.VM_ENTRY_CONTROLS, ENTRY_TRUE_DEFAULT1 | (opts.entry ?? 0));
    this.w(F.EPT_POINTER, EPTP);
    this.w(F.MSR_BITMAP, MSR_BITMAP_HPA);
    this.w(F.IO_BITMAP_A, IO_BITMAP_A_HPA);
    this.w(F.IO_BITMAP_B, IO_BITMAP_B_HPA);
    // Host state: 64-bit kernel.
    this.w(F.HOST_CR0, 0x80050033);
    this.w(F.HOST_CR3, 0x5000);
    this.w(F.HOST_CR4, 0x2020);
    this.w(F.HOST_CS_SELECTOR, 0x10);
    this.w(F.HOST_SS_SELECTOR, 0x18);
    this.w(F.HOST_DS_SELECTOR, 0x18);
    this.w(F.HOST_ES_SELECTOR, 0x18);
    this.w(F.HOST_TR_SELECTOR, 0x40);
    this.w(F.HOST_RIP, -0x7f000000);
    this.w(F.HOST_RSP, -0x7e000000);
    // Guest state: real mode, CS:IP = 0:1000.
    this.w(F.GUEST_CR0, 0x30);
    this.w(F.GUEST_CR4, 0x2000);
    this.w(F.CR0_READ_SHADOW, 0x10);
    this.w(F.CR4_READ_SHADOW, 0);
    for (let s = 0; s < 8; s++) {
      this.w(F.GUEST_SEG_SELECTOR_BASE + 2 * s, 0);
      this.w(F.GUEST_SEG_BASE_BASE + 2 * s, 0);
      this.w(F.GUEST_SEG_LIMIT_BASE + 2 * s, 0xffff);
      this.w(F.GUEST_SEG_AR_BASE + 2 * s, s === 1 ? 0x9b : s === 6 ? 0x82 : s === 7 ? 0x8b : 0x93);
    }
    this.w(F.GUEST_GDTR_LIMIT, 0xffff);
    this.w(F.GUEST_IDTR_LIMIT, 0x3ff);
    this.w(F.GUEST_RIP, 0x1000);
    this.w(F.GUEST_RSP, 0x7000);
    this.w(F.GUEST_RFLAGS, 2);
    this.w(F.VMCS_LINK_POINTER, -1);
  }

  /** Guest GPR (low 32 bits), as KVM reads them after an exit. */
  /**
   * Guest state for 32-bit protected mode with PAE paging at `cr3` (CR0 PE/NE/PG, CR4 PAE|VMXE)
   * and flat 4 GiB code (0x08) and data (0x10) segments.
   */
  flatPaeGuest(cr3: number): void {
    this.w(F.GUEST_CR0, 0x80000031);
    this.w(F.GUEST_CR3, cr3);
    this.w(F.GUEST_CR4, 0x2020);
    for (let s = 0; s < 6; s++) {
      this.w(F.GUEST_SEG_SELECTOR_BASE + 2 * s, s === 1 ? 8 : 0x10);
      this.w(F.GUEST_SEG_LIMIT_BASE + 2 * s, 0xffffffff);
      this.w(F.GUEST_SEG_AR_BASE + 2 * s, s === 1 ? 0xc09b : 0xc093);
    }
  }

  gpr(n: number): number {
    return this.cpu.state.gpr[2 * n] >>> 0;
  }

  setGpr(n: number, v: number): void {
    this.cpu.state.gpr[2 * n] = v;
    this.cpu.state.gpr[2 * n + 1] = 0;
  }

  /** Advance GUEST_RIP past the exiting instruction, as KVM's skip_emulated_instruction does. */
  skip(): void {
    this.w(F.GUEST_RIP, this.r(F.GUEST_RIP) + this.r(F.VM_EXIT_INSTRUCTION_LEN));
  }
}
