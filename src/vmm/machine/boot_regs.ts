/**
 * Hand a loader's BootState to a vCPU: KVM_GET_SREGS for the reset values, overlay the
 * segments, descriptor tables and control registers the entry mode needs, KVM_SET_SREGS,
 * then KVM_SET_REGS (kvmtool's kvm_cpu__setup_sregs / setup_regs roles).
 */
import type { KvmRegs, KvmSegment, KvmSregs } from "../../uapi/kvm_structs.js";
import type { KvmVcpuApi } from "../kvm_api.js";
import type { BootSegment, BootState } from "../loader/boot_state.js";

function seg(s: BootSegment): KvmSegment {
  return {
    base: BigInt(s.base), limit: s.limit >>> 0, selector: s.selector, type: s.type, present: s.present, dpl: s.dpl,
    db: s.db, s: s.s, l: s.l, g: s.g, avl: 0, unusable: 0, padding: 0,
  };
}

export function bootSregs(cur: KvmSregs, st: BootState): KvmSregs {
  const out: KvmSregs = { ...cur };
  out.cs = seg(st.cs);
  if (st.mode === "real") {
    // Keep KVM's reset data segments (base 0, limit 64 KiB) and control registers.
    return out;
  }
  const ds = seg(st.ds);
  out.ds = ds;
  out.es = { ...ds };
  out.fs = { ...ds };
  out.gs = { ...ds };
  out.ss = { ...ds };
  // A 32-bit busy TSS and no LDT: what VM entry checks for TR/LDTR in protected mode (SDM Vol 3C §27.3.1.2).
  out.tr = { base: 0n, limit: 0x67, selector: 0, type: 11, present: 1, dpl: 0, db: 0, s: 0, l: 0, g: 0, avl: 0, unusable: 0, padding: 0 };
  out.ldt = { base: 0n, limit: 0xffff, selector: 0, type: 2, present: 0, dpl: 0, db: 0, s: 0, l: 0, g: 0, avl: 0, unusable: 1, padding: 0 };
  if (st.gdt) out.gdt = { base: BigInt(st.gdt.base), limit: st.gdt.limit, padding: [0, 0, 0] };
  out.idt = { base: 0n, limit: 0, padding: [0, 0, 0] };
  out.cr0 = BigInt(st.cr0 >>> 0);
  out.cr3 = BigInt(st.cr3);
  out.cr4 = BigInt(st.cr4);
  out.efer = BigInt(st.efer);
  return out;
}

export function bootRegs(st: BootState): KvmRegs {
  const r: KvmRegs = {
    rax: 0n, rbx: 0n, rcx: 0n, rdx: 0n, rsi: 0n, rdi: 0n, rsp: 0n, rbp: 0n, r8: 0n, r9: 0n, r10: 0n, r11: 0n,
    r12: 0n, r13: 0n, r14: 0n, r15: 0n, rip: BigInt(st.rip), rflags: BigInt(st.rflags),
  };
  r.rsp = BigInt(st.rsp);
  for (const [k, v] of Object.entries(st.gprs)) r[k as keyof KvmRegs] = BigInt(v >>> 0);
  return r;
}

export function applyBootState(vcpu: KvmVcpuApi, st: BootState): void {
  vcpu.setSregs(bootSregs(vcpu.getSregs(), st));
  vcpu.setRegs(bootRegs(st));
}
