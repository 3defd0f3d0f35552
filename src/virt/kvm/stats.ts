/**
 * KVM statistics (kvm_host.h STATS_DESC_* and KVM_GENERIC_{VM,VCPU}_STATS): descriptors with
 * KVM's names and flags, and the per-VM / per-vCPU values as a plain object (`kvm.stat.x`,
 * `vcpu.stat.exits`) so hot paths increment a property. Histograms (halt_*_hist) keep their
 * buckets in `statHist`. binary_stats.ts renders them in the KVM_GET_STATS_FD format.
 */
import {
  KVM_STATS_BASE_POW10, KVM_STATS_TYPE_CUMULATIVE, KVM_STATS_TYPE_INSTANT, KVM_STATS_TYPE_LOG_HIST,
  KVM_STATS_TYPE_PEAK, KVM_STATS_UNIT_BOOLEAN, KVM_STATS_UNIT_BYTES, KVM_STATS_UNIT_NONE, KVM_STATS_UNIT_SECONDS,
} from "../../uapi/kvm.js";
import type { KvmStatDesc } from "./kvm_host.js";

export const KVM_STATS_NAME_SIZE = 48;
/** Buckets of a LOG_HIST statistic (HALT_POLL_HIST_COUNT). */
export const HALT_POLL_HIST_COUNT = 32;

const desc = (name: string, flags: number, exponent = 0, size = 1): KvmStatDesc => ({ name, flags, exponent, size, bucketSize: 0 });

/** STATS_DESC_COUNTER: cumulative count. */
export const statCounter = (name: string): KvmStatDesc => desc(name, KVM_STATS_TYPE_CUMULATIVE | KVM_STATS_UNIT_NONE | KVM_STATS_BASE_POW10);
/** STATS_DESC_ICOUNTER: instantaneous value. */
export const statICounter = (name: string): KvmStatDesc => desc(name, KVM_STATS_TYPE_INSTANT | KVM_STATS_UNIT_NONE | KVM_STATS_BASE_POW10);
/** STATS_DESC_PCOUNTER: peak value. */
export const statPCounter = (name: string): KvmStatDesc => desc(name, KVM_STATS_TYPE_PEAK | KVM_STATS_UNIT_NONE | KVM_STATS_BASE_POW10);
/** STATS_DESC_IBOOLEAN */
export const statIBoolean = (name: string): KvmStatDesc => desc(name, KVM_STATS_TYPE_INSTANT | KVM_STATS_UNIT_BOOLEAN | KVM_STATS_BASE_POW10);
/** STATS_DESC_TIME_NSEC: cumulative nanoseconds. */
export const statTimeNsec = (name: string): KvmStatDesc => desc(name, KVM_STATS_TYPE_CUMULATIVE | KVM_STATS_UNIT_SECONDS | KVM_STATS_BASE_POW10, -9);
/** STATS_DESC_LOGHIST_TIME_NSEC: log2 histogram of nanoseconds. */
export const statLogHistNsec = (name: string, n = HALT_POLL_HIST_COUNT): KvmStatDesc => desc(name, KVM_STATS_TYPE_LOG_HIST | KVM_STATS_UNIT_SECONDS | KVM_STATS_BASE_POW10, -9, n);
/** STATS_DESC_IBYTES */
export const statIBytes = (name: string): KvmStatDesc => desc(name, KVM_STATS_TYPE_INSTANT | KVM_STATS_UNIT_BYTES | KVM_STATS_BASE_POW10);

/** KVM_GENERIC_VM_STATS() */
export const KVM_GENERIC_VM_STATS: readonly KvmStatDesc[] = [
  statCounter("remote_tlb_flush"),
  statCounter("remote_tlb_flush_requests"),
];

/** KVM_GENERIC_VCPU_STATS() */
export const KVM_GENERIC_VCPU_STATS: readonly KvmStatDesc[] = [
  statCounter("halt_successful_poll"),
  statCounter("halt_attempted_poll"),
  statCounter("halt_poll_invalid"),
  statCounter("halt_wakeup"),
  statTimeNsec("halt_poll_success_ns"),
  statTimeNsec("halt_poll_fail_ns"),
  statTimeNsec("halt_wait_ns"),
  statLogHistNsec("halt_poll_success_hist"),
  statLogHistNsec("halt_poll_fail_hist"),
  statLogHistNsec("halt_wait_hist"),
  statIBoolean("blocking"),
];

/** A set of statistics: values by name (scalars) and histogram buckets by name. */
export class KvmStats {
  /** Scalar values by KVM name. Every described scalar exists, starting at 0. */
  readonly stat: Record<string, number>;
  /** Histogram buckets by KVM name (LOG_HIST / LINEAR_HIST descriptors). */
  readonly hist: Record<string, Float64Array>;

  constructor(readonly descs: readonly KvmStatDesc[]) {
    const names = new Set<string>();
    const stat: Record<string, number> = {};
    const hist: Record<string, Float64Array> = {};
    for (const d of descs) {
      if (names.has(d.name)) throw new Error(`duplicate statistic ${d.name}`);
      if (d.name.length >= KVM_STATS_NAME_SIZE) throw new Error(`statistic name too long: ${d.name}`);
      names.add(d.name);
      if (isHist(d)) hist[d.name] = new Float64Array(d.size);
      else stat[d.name] = 0;
    }
    this.stat = stat;
    this.hist = hist;
  }

  /** The u64 values of descriptor `d`, in descriptor order (what the data block holds). */
  values(d: KvmStatDesc): ArrayLike<number> {
    return isHist(d) ? this.hist[d.name] : [this.stat[d.name]];
  }
}

export function isHist(d: KvmStatDesc): boolean {
  const t = d.flags & 0xf;
  return t === KVM_STATS_TYPE_LOG_HIST || t === 0x3 /* LINEAR_HIST */;
}

/** KVM_STATS_LOG_HIST_UPDATE: bucket = fls64(value) clamped to the last bucket. */
export function logHistUpdate(buckets: Float64Array, value: number): void {
  let b = value <= 0 ? 0 : Math.floor(Math.log2(value)) + 1;
  if (b >= buckets.length) b = buckets.length - 1;
  buckets[b]++;
}
