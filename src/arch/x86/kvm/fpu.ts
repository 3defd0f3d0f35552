/**
 * The guest FPU ioctls of arch/x86/kvm/x86.c: KVM_GET/SET_FPU, KVM_GET/SET_XSAVE, KVM_GET_XSAVE2,
 * KVM_GET/SET_XCRS, and the guest FPU's initial state (fpu_alloc_guest_fpstate / fpstate_init).
 *
 * Where the state lives: vcpu.arch.guestFpu (the vcpu->arch.guest_fpu role) is the register file
 * of the processor that runs the vCPU. That processor is dedicated to the vCPU and KVM itself
 * never executes FPU/SSE instructions, so the guest's state can stay loaded in it for the vCPU's
 * lifetime: kvm_load_guest_fpu / kvm_put_guest_fpu have nothing to swap, and these ioctls (which
 * KVM only serves outside KVM_RUN) read and write that register file directly. The vendor module
 * sets guestFpu at vcpu_create.
 *
 * XCR0 is vcpu.arch.xcr0 (loaded into the processor at each VM entry by the vendor's vcpu_run).
 * The uABI XSAVE layout is the standard (non-compacted) format of the processor's components,
 * x87 and SSE, in 4096 bytes (Documentation/virt/kvm/api.rst KVM_GET_XSAVE / KVM_GET_XSAVE2).
 */
import { EINVAL } from "../../../uapi/errno.js";
import * as K from "../../../uapi/kvm.js";
import type { KvmFpu } from "../../../uapi/kvm_structs.js";
import { KvmError } from "../../../virt/kvm/kvm_error.js";
import type { X86State } from "../../../hw/x86/state.js";
import { FXSAVE_64 } from "../../../hw/x86/fp/x87_state.js";
import {
  MXCSR_MASK, XSAVE_AREA_SIZE, XSAVE_HDR, XFEATURE_MASK_FP, XFEATURE_MASK_SSE, XFEATURE_MASK_YMM, XCR0_SUPPORTED, fxImage, loadX87Image,
  loadXmmImage, xinuse, xrstorImage,
} from "../../../hw/x86/ops/xsave.js";
import type { X86Vcpu } from "./kvm_host.js";
import { findEntry } from "./cpuid.js";

/** sizeof(struct kvm_xsave), also what KVM_CHECK_EXTENSION(KVM_CAP_XSAVE2) returns (never less). */
export const KVM_XSAVE_SIZE = 4096;
/** KVM_MAX_XCRS and XCR_XFEATURE_ENABLED_MASK (XCR0's index). */
export const KVM_MAX_XCRS = 16;
export const XCR_XFEATURE_ENABLED_MASK = 0;
/** sizeof(struct kvm_xcrs): nr_xcrs, flags, xcrs[16] { xcr, reserved, value }, padding[16]. */
const KVM_XCRS_SIZE = 392;

const FXBUF = new Uint8Array(512);

function fpuOf(vcpu: X86Vcpu, ioctl: string): X86State {
  const s = vcpu.arch.guestFpu;
  if (s === null) throw new KvmError(EINVAL, ioctl, "the vendor module gave this vCPU no FPU");
  return s;
}

/** fpstate_init_fx() / fpu_alloc_guest_fpstate(): FCW 037FH, MXCSR 1F80H, everything else zero and empty. */
export function kvmFpuInitGuest(vcpu: X86Vcpu): void {
  const st = vcpu.arch.guestFpu;
  if (st === null) return;
  st.fpu.init();
  st.fpu.regs.fill(0);
  st.xmm.fill(0);
  st.mxcsr = 0x1f80;
}

/** The guest's supported XCR0 (guest_supported_xcr0): CPUID.(EAX=0DH,ECX=0):EAX of the guest's table, within what the processor supports. */
export function guestSupportedXcr0(vcpu: X86Vcpu): number {
  const e = findEntry(vcpu.arch.cpuidEntries, 0xd, 0);
  return e === undefined ? 0 : e.eax & XCR0_SUPPORTED;
}

/**
 * __kvm_set_xcr(): only XCR0; x87 must stay enabled, AVX needs SSE, and nothing beyond the guest's
 * supported XCR0 (x87 always allowed). Returns false where KVM returns 1 (#GP / EINVAL).
 */
export function kvmSetXcr(vcpu: X86Vcpu, index: number, lo: number, hi: number): boolean {
  if (index !== XCR_XFEATURE_ENABLED_MASK) return false;
  const valid = guestSupportedXcr0(vcpu) | XFEATURE_MASK_FP;
  lo >>>= 0;
  if ((lo & XFEATURE_MASK_FP) === 0) return false;
  if ((lo & XFEATURE_MASK_YMM) !== 0 && (lo & XFEATURE_MASK_SSE) === 0) return false;
  if ((lo & ~valid) !== 0 || hi !== 0) return false;
  vcpu.arch.xcr0 = lo;
  return true;
}

const u8 = (b: Uint8Array, o: number, n: number): number[] => Array.from(b.subarray(o, o + n));
const rd32 = (b: Uint8Array, o: number): number => (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
const rd64 = (b: Uint8Array, o: number): bigint => (BigInt(rd32(b, o + 4)) << 32n) | BigInt(rd32(b, o));

/** kvm_arch_vcpu_ioctl_get_fpu(): the fxsave fields of the guest FPU. */
export function kvmGetFpu(vcpu: X86Vcpu): KvmFpu {
  const st = fpuOf(vcpu, "KVM_GET_FPU");
  fxImage(st, FXBUF, 0, 16, FXSAVE_64);
  return {
    fpr: u8(FXBUF, 32, 128), fcw: FXBUF[0]! | (FXBUF[1]! << 8), fsw: FXBUF[2]! | (FXBUF[3]! << 8), ftwx: FXBUF[4]!, pad1: 0,
    last_opcode: FXBUF[6]! | (FXBUF[7]! << 8), last_ip: rd64(FXBUF, 8), last_dp: rd64(FXBUF, 16),
    xmm: u8(FXBUF, 160, 256), mxcsr: st.mxcsr >>> 0, pad2: 0,
  };
}

/** kvm_arch_vcpu_ioctl_set_fpu(): KVM copies the fields unchecked; MXCSR bits the processor cannot hold are dropped. */
export function kvmSetFpu(vcpu: X86Vcpu, f: KvmFpu): void {
  const st = fpuOf(vcpu, "KVM_SET_FPU");
  const b = FXBUF;
  b.fill(0);
  const w16 = (o: number, v: number): void => { b[o] = v; b[o + 1] = v >>> 8; };
  const w64 = (o: number, v: bigint): void => { const u = BigInt.asUintN(64, v); for (let k = 0; k < 8; k++) b[o + k] = Number((u >> BigInt(8 * k)) & 0xffn); };
  w16(0, f.fcw);
  w16(2, f.fsw);
  b[4] = f.ftwx;
  w16(6, f.last_opcode);
  w64(8, f.last_ip);
  w64(16, f.last_dp);
  for (let i = 0; i < 128; i++) b[32 + i] = f.fpr[i] ?? 0;
  for (let i = 0; i < 256; i++) b[160 + i] = f.xmm[i] ?? 0;
  loadX87Image(st, b, 0, FXSAVE_64);
  loadXmmImage(st, b, 0, 16);
  st.mxcsr = (f.mxcsr & MXCSR_MASK) >>> 0;
}

/** FP_XSTATE_MAGIC1 and the size of FP_XSTATE_MAGIC2 (arch/x86/include/uapi/asm/sigcontext.h). */
const FP_XSTATE_MAGIC1 = 0x46505853;
const FP_XSTATE_MAGIC2_SIZE = 4;

/**
 * kvm_vcpu_ioctl_x86_get_xsave() / KVM_GET_XSAVE2 (copy_xstate_to_uabi_buf): the standard-format
 * XSAVE image. XSTATE_BV holds the components in use; a component not in use is shown in its
 * initial configuration; bytes 464-511 carry the kernel's fx_sw_reserved descriptor (magic1,
 * extended size, features, XSAVE size), as Linux writes them.
 */
export function kvmGetXsave(vcpu: X86Vcpu, out: Uint8Array): Uint8Array {
  const st = fpuOf(vcpu, "KVM_GET_XSAVE");
  const inuse = xinuse(st) & XCR0_SUPPORTED;
  out.fill(0, 0, KVM_XSAVE_SIZE);
  fxImage(st, out, 0, 16, FXSAVE_64);
  if ((inuse & XFEATURE_MASK_FP) === 0) out.fill(0, 32, 160);
  const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  out.fill(0, 416, 512);
  dv.setUint32(464, FP_XSTATE_MAGIC1, true);
  dv.setUint32(468, XSAVE_AREA_SIZE + FP_XSTATE_MAGIC2_SIZE, true);
  dv.setUint32(472, XCR0_SUPPORTED, true);
  dv.setUint32(480, XSAVE_AREA_SIZE, true);
  out[XSAVE_HDR] = inuse;
  return out;
}

/**
 * kvm_vcpu_ioctl_x86_set_xsave() (copy_uabi_to_xstate): EINVAL for header bits beyond the
 * supported components, a compacted image, non-zero reserved header bytes, or reserved MXCSR
 * bits. Components whose XSTATE_BV bit is clear take their initial configuration; MXCSR is
 * loaded only with the SSE component.
 */
export function kvmSetXsave(vcpu: X86Vcpu, img: Uint8Array): void {
  const st = fpuOf(vcpu, "KVM_SET_XSAVE");
  if (img.byteLength < 576) throw new KvmError(EINVAL, "KVM_SET_XSAVE", "short buffer");
  for (let k = 8; k < 64; k++) if (img[XSAVE_HDR + k] !== 0) throw new KvmError(EINVAL, "KVM_SET_XSAVE", "XCOMP_BV or reserved header bytes set");
  const mx = rd32(img, 24);
  if ((mx & ~MXCSR_MASK) !== 0) throw new KvmError(EINVAL, "KVM_SET_XSAVE", `MXCSR 0x${mx.toString(16)}`);
  const bv = rd32(img, XSAVE_HDR);
  const keepMx = st.mxcsr;
  if (!xrstorImage(st, img, 0, XCR0_SUPPORTED, XCR0_SUPPORTED, 16, FXSAVE_64, false)) throw new KvmError(EINVAL, "KVM_SET_XSAVE", `XSTATE_BV 0x${bv.toString(16)}`);
  if ((bv & XFEATURE_MASK_SSE) === 0) st.mxcsr = keepMx;
}

/** kvm_vcpu_ioctl_x86_get_xcrs(): one register, XCR0. */
export function kvmGetXcrs(vcpu: X86Vcpu): Uint8Array {
  const b = new Uint8Array(KVM_XCRS_SIZE);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, 1, true);
  dv.setUint32(8, XCR_XFEATURE_ENABLED_MASK, true);
  dv.setUint32(16, vcpu.arch.xcr0 >>> 0, true);
  return b;
}

/** kvm_vcpu_ioctl_x86_set_xcrs(): EINVAL for nr_xcrs > 16, non-zero flags, or an XCR0 __kvm_set_xcr refuses; other indexes are ignored. */
export function kvmSetXcrs(vcpu: X86Vcpu, b: Uint8Array): void {
  if (b.byteLength < KVM_XCRS_SIZE) throw new KvmError(EINVAL, "KVM_SET_XCRS", "short buffer");
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const n = dv.getUint32(0, true), flags = dv.getUint32(4, true);
  if (n > KVM_MAX_XCRS || flags !== 0) throw new KvmError(EINVAL, "KVM_SET_XCRS", `nr_xcrs ${n} flags ${flags}`);
  for (let i = 0; i < n; i++) {
    const o = 8 + i * 16;
    if (dv.getUint32(o, true) !== XCR_XFEATURE_ENABLED_MASK) continue;
    if (!kvmSetXcr(vcpu, XCR_XFEATURE_ENABLED_MASK, dv.getUint32(o + 8, true), dv.getUint32(o + 12, true))) {
      throw new KvmError(EINVAL, "KVM_SET_XCRS", "XCR0 value");
    }
  }
}

function bytesArg(arg: number | object, ioctl: string): Uint8Array {
  if (arg instanceof Uint8Array) return arg;
  throw new KvmError(EINVAL, ioctl, "argument must be the struct's bytes");
}

/** The FPU part of kvm_arch_vcpu_ioctl(); undefined for other requests. */
export function kvmFpuVcpuIoctl(vcpu: X86Vcpu, nr: number, arg: number | object): number | object | undefined {
  switch (nr) {
    case K.KVM_GET_FPU:
      return kvmGetFpu(vcpu);
    case K.KVM_SET_FPU:
      kvmSetFpu(vcpu, arg as KvmFpu);
      return 0;
    case K.KVM_GET_XSAVE:
    case K.KVM_GET_XSAVE2:
      return kvmGetXsave(vcpu, arg instanceof Uint8Array && arg.byteLength >= KVM_XSAVE_SIZE ? arg : new Uint8Array(KVM_XSAVE_SIZE));
    case K.KVM_SET_XSAVE:
      kvmSetXsave(vcpu, bytesArg(arg, "KVM_SET_XSAVE"));
      return 0;
    case K.KVM_GET_XCRS:
      return kvmGetXcrs(vcpu);
    case K.KVM_SET_XCRS:
      kvmSetXcrs(vcpu, bytesArg(arg, "KVM_SET_XCRS"));
      return 0;
    default:
      return undefined;
  }
}
