/**
 * Instruction emulation helpers of arch/x86/kvm/x86.c that the vendor exit handlers call for
 * instructions with a fully described exit (no decoding needed): CPUID (kvm_emulate_cpuid),
 * MOV to/from CR and CLTS/LMSW (kvm_set_cr0/cr3/cr4/cr8 and handle_cr's decode of the exit
 * qualification, SDM Table 28-3), MOV DR (kvm_set_dr / kvm_get_dr, Table 28-4), XSETBV
 * (kvm_emulate_xsetbv) and VMCALL (kvm_emulate_hypercall).
 */

import * as K from "../../../uapi/kvm.js";
import { ExitResult } from "./kvm_x86_ops.js";
import {
  DB_VECTOR, EFER_LMA, EFER_LME, UD_VECTOR, X86_CR0_CD, X86_CR0_NW, X86_CR0_PE, X86_CR0_PG, X86_CR0_TS,
  X86_CR4_DE, X86_CR4_LA57, X86_CR4_PAE, X86_CR4_PCIDE, X86_CR4_PGE, X86_CR4_PSE, X86_CR4_SMEP, kvmRegisterWrite, type X86Vcpu,
} from "./kvm_host.js";
import { readGpa32 } from "./mmu/paging_tmpl.js";
import { kvmCpuid, guestCpuidHas, findEntry } from "./cpuid.js";
import { kvmInjectGp, kvmQueueException, kvmQueueExceptionP, kvmSkipEmulatedInstruction } from "./x86.js";
import { vcpuLapic } from "./x86_irqchip.js";

const TWO32 = 4294967296;

/** is_64_bit_mode(): EFER.LMA and CS.L. */
const csBits = new Int32Array(2);

export function is64BitMode(vcpu: X86Vcpu): boolean {
  if ((vcpu.arch.efer & EFER_LMA) === 0) return false;
  vcpu.arch.ops.getCsDbLBits(vcpu, csBits);
  return csBits[1] === 1;
}

/** kvm_register_read() with the operand size of the current mode (32 bits outside 64-bit mode). */
export function gprRead(vcpu: X86Vcpu, reg: number, mode64: boolean): number {
  if (reg === 4 && (vcpu.arch.regsAvail & (1 << 4)) === 0) vcpu.arch.ops.cacheReg(vcpu, 4);
  const r = vcpu.arch.regs;
  return mode64 ? r[reg * 2 + 1] * TWO32 + (r[reg * 2] >>> 0) : r[reg * 2] >>> 0;
}

/** kvm_register_write() with the mode's operand size: outside 64-bit mode the upper half is cleared. */
export function gprWrite(vcpu: X86Vcpu, reg: number, v: number, mode64: boolean): void {
  const hi = mode64 ? Math.floor(v / TWO32) : 0;
  kvmRegisterWrite(vcpu, reg, (mode64 ? v - hi * TWO32 : v) | 0, hi | 0);
}

const cpuidOut = new Float64Array(4);

/** kvm_emulate_cpuid(): EAX/ECX select the leaf; results zero-extend into RAX, RBX, RCX, RDX. */
export function kvmEmulateCpuid(vcpu: X86Vcpu): ExitResult {
  const r = vcpu.arch.regs;
  const fn = r[0] >>> 0;
  const index = r[2] >>> 0;
  const found = kvmCpuid(vcpu, fn, index, cpuidOut);
  for (let i = 0; i < 4; i++) {
    const reg = [0, 3, 1, 2][i];
    r[reg * 2] = cpuidOut[i] | 0;
    r[reg * 2 + 1] = 0;
  }
  if (vcpu.kvm.tracing) {
    vcpu.kvm.trace("kvm_cpuid", {
      function: fn, index, rax: cpuidOut[0], rbx: cpuidOut[1], rcx: cpuidOut[2], rdx: cpuidOut[3],
      found: (found & 1) !== 0, used_max_basic: (found & 2) !== 0,
    }, vcpu);
  }
  return kvmSkipEmulatedInstruction(vcpu);
}

/** X86_CR0_PDPTR_BITS / X86_CR4_PDPTR_BITS: changing one while PAE paging stays on reloads the PDPTEs (SDM 4.4.1). */
const CR0_PDPTR_BITS = (X86_CR0_CD | X86_CR0_NW | X86_CR0_PG) >>> 0;
const CR4_PDPTR_BITS = X86_CR4_PGE | X86_CR4_PSE | X86_CR4_PAE | X86_CR4_SMEP;

const pdptrTmp = new Int32Array(8);

/**
 * load_pdptrs(): read the four PAE PDPTEs of the table `cr3` names (bits 31:5) from guest memory
 * into the vCPU's PDPTRs (ops.setPdptr; with EPT the VMCS fields the next VM entry loads).
 * Returns false, with nothing changed, if the table is not in guest RAM or a present PDPTE sets
 * a reserved bit (2:1, 8:5, 63:MAXPHYADDR of the guest's CPUID): the MOV to CR that asked is #GP.
 */
export function kvmLoadPdptrs(vcpu: X86Vcpu, cr3: number): boolean {
  const a = vcpu.arch;
  const base = (cr3 & ~0x1f) >>> 0;
  const hiRsvd = -1 << (a.maxphyaddr - 32);
  for (let i = 0; i < 8; i += 2) {
    const lo = readGpa32(vcpu, base + 4 * i), hi = readGpa32(vcpu, base + 4 * i + 4);
    if (Number.isNaN(lo) || Number.isNaN(hi)) return false;
    if ((lo & 1) && ((lo & 0x1e6) !== 0 || (hi & hiRsvd) !== 0)) return false;
    pdptrTmp[i] = lo;
    pdptrTmp[i + 1] = hi;
  }
  for (let i = 0; i < 4; i++) a.ops.setPdptr?.(vcpu, i, pdptrTmp[2 * i], pdptrTmp[2 * i + 1]);
  return true;
}

/** CR0 bits that exist (CR0_RESERVED_BITS is the complement). */
const CR0_DEFINED = (X86_CR0_PE | 0x2 | 0x4 | X86_CR0_TS | 0x10 | 0x20 | 0x10000 | 0x40000 | X86_CR0_NW | X86_CR0_CD | X86_CR0_PG) >>> 0;

/** kvm_set_cr0(): returns false when the value must raise #GP. */
export function kvmSetCr0(vcpu: X86Vcpu, cr0: number): boolean {
  const a = vcpu.arch;
  if (cr0 >= TWO32 || cr0 < 0) return false;
  cr0 = ((cr0 | 0x10) & CR0_DEFINED) >>> 0;
  if ((cr0 & X86_CR0_NW) !== 0 && (cr0 & X86_CR0_CD) === 0) return false;
  if ((cr0 & X86_CR0_PG) !== 0 && (cr0 & X86_CR0_PE) === 0) return false;
  if ((a.cr0 & X86_CR0_PG) === 0 && (cr0 & X86_CR0_PG) !== 0 && (a.efer & EFER_LME) !== 0) {
    // Activating long mode needs PAE and a CS that is not already 64-bit (SDM 9.8.5).
    if ((a.cr4 & X86_CR4_PAE) === 0) return false;
    a.ops.getCsDbLBits(vcpu, csBits);
    if (csBits[1] === 1) return false;
  }
  if ((cr0 & X86_CR0_PG) === 0 && (a.cr4 & X86_CR4_PCIDE) !== 0) return false;
  if (!a.ops.isValidCr0(vcpu, cr0)) return false;
  if ((a.efer & EFER_LME) === 0 && (cr0 & X86_CR0_PG) !== 0 && (a.cr4 & X86_CR4_PAE) !== 0 &&
    ((cr0 ^ a.cr0) & CR0_PDPTR_BITS) !== 0 && !kvmLoadPdptrs(vcpu, a.cr3)) return false;
  a.ops.setCr0(vcpu, cr0);
  return true;
}

/** kvm_set_cr4() */
export function kvmSetCr4(vcpu: X86Vcpu, cr4: number): boolean {
  const a = vcpu.arch;
  if (cr4 >= TWO32 || cr4 < 0) return false;
  if (!a.ops.isValidCr4(vcpu, cr4)) return false;
  const long = (a.efer & EFER_LMA) !== 0;
  if (long && (cr4 & X86_CR4_PAE) === 0) return false;
  if (long && ((cr4 ^ a.cr4) & X86_CR4_LA57) !== 0) return false;
  if ((cr4 & X86_CR4_PCIDE) !== 0 && (a.cr4 & X86_CR4_PCIDE) === 0) {
    if (!guestCpuidHas(vcpu, 1, 0, "ecx", 17) || (a.cr3 & 0xfff) !== 0 || !long) return false;
  }
  if (!long && (a.cr0 & X86_CR0_PG) !== 0 && (cr4 & X86_CR4_PAE) !== 0 && ((cr4 ^ a.cr4) & CR4_PDPTR_BITS) !== 0 &&
    !kvmLoadPdptrs(vcpu, a.cr3)) return false;
  a.ops.setCr4(vcpu, cr4);
  return true;
}

/** kvm_set_cr3() */
export function kvmSetCr3(vcpu: X86Vcpu, cr3: number): boolean {
  const a = vcpu.arch;
  // The caller has taken PCIDE's "no flush" bit 63 off (kvmHandleCrAccess); anything at or above
  // MAXPHYADDR is reserved in long mode.
  if (cr3 >= 2 ** a.maxphyaddr && (a.efer & EFER_LMA) !== 0) return false;
  if ((a.efer & EFER_LMA) === 0 && (a.cr0 & X86_CR0_PG) !== 0 && (a.cr4 & X86_CR4_PAE) !== 0 && !kvmLoadPdptrs(vcpu, cr3)) return false;
  a.cr3 = cr3;
  a.ops.postSetCr3?.(vcpu, cr3);
  return true;
}

/** kvm_set_cr8(): the TPR; without an in-kernel LAPIC KVM just keeps the value. */
export function kvmSetCr8(vcpu: X86Vcpu, cr8: number): boolean {
  if (cr8 < 0 || cr8 > 15) return false;
  vcpu.arch.cr8 = cr8;
  vcpuLapic(vcpu)?.setCr8(cr8);
  return true;
}

/** kvm_get_cr8(): the TPR from the LAPIC when it is in the kernel. */
export function kvmGetCr8(vcpu: X86Vcpu): number {
  const lapic = vcpuLapic(vcpu);
  return lapic !== null ? lapic.getCr8() : vcpu.arch.cr8;
}

/** kvm_complete_insn_gp(): #GP(0) on failure, otherwise skip the instruction. */
function completeInsnGp(vcpu: X86Vcpu, ok: boolean): ExitResult {
  if (!ok) {
    kvmInjectGp(vcpu, 0);
    return ExitResult.Resume;
  }
  return kvmSkipEmulatedInstruction(vcpu);
}

/** handle_cr(): decode the CR-access exit qualification (SDM Table 28-3). */
export function kvmHandleCrAccess(vcpu: X86Vcpu, q: number): ExitResult {
  const a = vcpu.arch;
  const cr = q & 15;
  const type = (q >>> 4) & 3;
  const reg = (q >>> 8) & 15;
  const m64 = is64BitMode(vcpu);
  a.ops.cacheReg(vcpu, 18);
  switch (type) {
    case 0: {
      const val = gprRead(vcpu, reg, m64);
      switch (cr) {
        case 0: return completeInsnGp(vcpu, kvmSetCr0(vcpu, val));
        case 3: {
          // kvm_set_cr3(): with CR4.PCIDE, bit 63 of the source is "no flush" (SDM 4.10.4.1), not
          // part of CR3. Taken from the register halves: the number gprRead made is not exact there.
          const hiHalf = m64 ? a.regs[reg * 2 + 1] : 0;
          const h = (a.cr4 & X86_CR4_PCIDE) !== 0 ? hiHalf & 0x7fffffff : hiHalf;
          return completeInsnGp(vcpu, kvmSetCr3(vcpu, (h >>> 0) * TWO32 + (a.regs[reg * 2] >>> 0)));
        }
        case 4: return completeInsnGp(vcpu, kvmSetCr4(vcpu, val));
        case 8: {
          const prev = a.cr8;
          const ok = kvmSetCr8(vcpu, val);
          const r = completeInsnGp(vcpu, ok);
          // Userspace that owns the APIC learns of a lowered TPR (KVM_EXIT_SET_TPR).
          if (ok && vcpu.kvm.arch.irqchip === null && val < prev && r === ExitResult.Resume) {
            a.run.exitReason = K.KVM_EXIT_SET_TPR;
            return ExitResult.ToUserspace;
          }
          return r;
        }
      }
      break;
    }
    case 1:
      if (cr === 3) {
        gprWrite(vcpu, reg, a.cr3, m64);
        return kvmSkipEmulatedInstruction(vcpu);
      }
      if (cr === 8) {
        gprWrite(vcpu, reg, kvmGetCr8(vcpu), m64);
        return kvmSkipEmulatedInstruction(vcpu);
      }
      break;
    case 2:
      // CLTS
      return completeInsnGp(vcpu, kvmSetCr0(vcpu, a.cr0 & ~X86_CR0_TS));
    case 3: {
      // LMSW: loads PE, MP, EM, TS; it can set PE but never clear it.
      const msw = (q >>> 16) & 0xffff;
      const cr0 = ((a.cr0 & ~0xe) | (msw & 0xf)) >>> 0;
      return completeInsnGp(vcpu, kvmSetCr0(vcpu, cr0));
    }
  }
  // Any other combination is not architecturally possible (SDM 28.2.1).
  kvmQueueException(vcpu, UD_VECTOR);
  return ExitResult.Resume;
}

const DR6_FIXED_1 = 0xfffe0ff0;
const DR7_FIXED_1 = 0x400;
const DR7_GD = 1 << 13;

/** handle_dr(): MOV to/from a debug register (SDM Table 28-4). */
export function kvmHandleDrAccess(vcpu: X86Vcpu, q: number): ExitResult {
  const a = vcpu.arch;
  let dr = q & 7;
  const toGpr = (q & 0x10) !== 0;
  const reg = (q >>> 8) & 15;
  // DR4/DR5 alias DR6/DR7 unless CR4.DE, where they are #UD (kvm_require_dr).
  if (dr === 4 || dr === 5) {
    if ((a.cr4 & X86_CR4_DE) !== 0) {
      kvmQueueException(vcpu, UD_VECTOR);
      return ExitResult.Resume;
    }
    dr += 2;
  }
  if (a.ops.getCpl(vcpu) > 0) {
    kvmInjectGp(vcpu, 0);
    return ExitResult.Resume;
  }
  // DR7.GD: the access itself raises #DB with DR6.BD (SDM 17.2.4).
  if ((a.dr7 & DR7_GD) !== 0) {
    a.dr7 &= ~DR7_GD;
    a.ops.setDr7(vcpu, a.dr7);
    kvmQueueExceptionP(vcpu, DB_VECTOR, 0x2000);
    return ExitResult.Resume;
  }
  const m64 = is64BitMode(vcpu);
  if (toGpr) {
    const v = dr < 4 ? a.db[dr] : dr === 6 ? a.dr6 : a.dr7;
    gprWrite(vcpu, reg, v < 0 ? v + 2 ** 64 : v, m64);
    return kvmSkipEmulatedInstruction(vcpu);
  }
  const val = gprRead(vcpu, reg, m64);
  if (dr < 4) {
    a.db[dr] = val >= 2 ** 63 ? val - 2 ** 64 : val;
  } else {
    if (val >= TWO32) {
      kvmInjectGp(vcpu, 0);
      return ExitResult.Resume;
    }
    if (dr === 6) a.dr6 = (val | DR6_FIXED_1) >>> 0;
    else {
      a.dr7 = (val | DR7_FIXED_1) >>> 0;
      if ((a.guestDebug & K.KVM_GUESTDBG_USE_HW_BP) === 0) a.ops.setDr7(vcpu, a.dr7);
    }
  }
  return kvmSkipEmulatedInstruction(vcpu);
}

/** XCR0 bits: x87 (0), SSE (1), AVX (2). */
const XFEATURE_MASK_FP = 1;
const XFEATURE_MASK_SSE = 2;
const XFEATURE_MASK_YMM = 4;

/** kvm_emulate_xsetbv() / __kvm_set_xcr(): only XCR0, only features the guest's CPUID.0xD offers. */
export function kvmEmulateXsetbv(vcpu: X86Vcpu): ExitResult {
  const a = vcpu.arch;
  const r = a.regs;
  const index = r[2] >>> 0;
  const lo = r[0] >>> 0;
  const hi = r[4] >>> 0;
  const leaf = findEntry(a.cpuidEntries, 0xd, 0);
  const supportedLo = leaf ? leaf.eax : XFEATURE_MASK_FP;
  const supportedHi = leaf ? leaf.edx : 0;
  const ok = a.ops.getCpl(vcpu) === 0 && index === 0 && (lo & XFEATURE_MASK_FP) !== 0 &&
    !((lo & XFEATURE_MASK_YMM) !== 0 && (lo & XFEATURE_MASK_SSE) === 0) &&
    (lo & ~supportedLo) === 0 && (hi & ~supportedHi) === 0;
  if (!ok) {
    kvmInjectGp(vcpu, 0);
    return ExitResult.Resume;
  }
  a.xcr0 = lo;
  return kvmSkipEmulatedInstruction(vcpu);
}

/** Hypercall numbers (include/uapi/linux/kvm_para.h) and KVM's error values. */
export const KVM_HC_VAPIC_POLL_IRQ = 1;
export const KVM_HC_FEATURES = 3;
export const KVM_HC_KICK_CPU = 5;
export const KVM_ENOSYS = 1000;
export const KVM_EPERM = 1;

/**
 * kvm_emulate_hypercall(): number in RAX, arguments in RBX, RCX, RDX, RSI (32-bit outside
 * 64-bit mode), result in RAX. Only CPL 0 may call (-KVM_EPERM otherwise); unknown numbers get
 * -KVM_ENOSYS.
 */
export function kvmEmulateHypercall(vcpu: X86Vcpu): ExitResult {
  const a = vcpu.arch;
  const m64 = is64BitMode(vcpu);
  const nr = gprRead(vcpu, 0, m64);
  vcpu.stat.hypercalls = vcpu.stat.hypercalls + 1;
  if (vcpu.kvm.tracing) {
    vcpu.kvm.trace("kvm_hypercall", { nr, a0: gprRead(vcpu, 3, m64), a1: gprRead(vcpu, 1, m64), a2: gprRead(vcpu, 2, m64), a3: gprRead(vcpu, 6, m64) }, vcpu);
  }
  let ret: number;
  if (a.ops.getCpl(vcpu) !== 0) ret = -KVM_EPERM;
  else if (nr === KVM_HC_VAPIC_POLL_IRQ) ret = 0;
  else ret = -KVM_ENOSYS;
  if (m64) kvmRegisterWrite(vcpu, 0, ret | 0, ret < 0 ? -1 : 0);
  else kvmRegisterWrite(vcpu, 0, ret | 0, 0);
  return kvmSkipEmulatedInstruction(vcpu);
}


