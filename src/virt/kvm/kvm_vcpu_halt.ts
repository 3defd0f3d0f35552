/**
 * kvm_vcpu_halt() / kvm_vcpu_block() (kvm_main.c): a halted vCPU with an in-kernel irqchip
 * waits in the kernel until something makes it runnable (an interrupt, a timer) or a signal is
 * pending. A kick (kvm_vcpu_kick, e.g. a device raising an interrupt the guest has masked) only
 * makes it look again, as kvm_vcpu_wake_up does: a vCPU that is still not runnable keeps
 * waiting. The arch supplies the runnable check and the earliest device deadline.
 *
 * Halt polling. KVM first polls for up to vcpu->halt_poll_ns before it blocks, so a wake-up
 * that comes soon costs no sleep/wake-up latency, and adapts that window per vCPU
 * (grow_halt_poll_ns / shrink_halt_poll_ns, bounded by the halt_poll_ns module parameter or the
 * VM's KVM_CAP_HALT_POLL value). Here the vCPU runs on a single JS thread, so during the poll
 * nothing on this thread can produce an event; what can end a poll is exactly:
 *   - a device timer of this VM falling due inside the window (the arch's nextDeadlineNs /
 *     runTimers), the task's own alarm,
 *   - a signal or kick raised by another thread (the task's shared signal word),
 *   - an event already pending (an irqfd written before the halt, an IPI from another vCPU).
 * On a real clock the poll really spins on those checks for the window (it costs host CPU
 * time, as polling does on Linux); on a VirtualClock, time only moves by decision, so the poll
 * advances the clock to the first due timer inside the window or to the window's end.
 *
 * Blocking then depends on the host:
 *   - a VirtualClock jumps straight to the deadline (deterministic runs and tests),
 *   - otherwise the thread sleeps with Atomics.wait on the task's signal word (so a signal
 *     raised from another thread ends the sleep at once), until the deadline,
 *   - where Atomics.wait is not allowed (a browser's main thread) or no deadline exists and no
 *     other thread could wake us, the wait ends as Interrupted so the VMM's loop regains control
 *     (the arch then returns KVM_EXIT_INTR / EINTR, exactly as for a signal).
 *
 * Accounting follows KVM: halt_attempted_poll / halt_successful_poll, halt_poll_success_ns /
 * halt_poll_fail_ns and their histograms, halt_wait_ns / halt_wait_hist (time blocked after the
 * poll), halt_wakeup, blocking, and the kvm_vcpu_wakeup / kvm_halt_poll_ns tracepoints.
 * halt_poll_invalid stays 0: x86 has no invalid wake-ups (only s390 defines them).
 */
import { VirtualClock, type HostClock } from "../../host/clock.js";
import type { KvmVcpu } from "./kvm_main.js";
import { logHistUpdate } from "./stats.js";

export interface KvmHaltHooks {
  /** kvm_arch_vcpu_runnable(): an event that ends the halt is pending. */
  runnable(): boolean;
  /** The earliest time (host clock ns) at which a device may make the vCPU runnable; Infinity if none. */
  nextDeadlineNs(): number;
  /** Bring device timers up to `nowNs` (fire the expired ones) before `runnable()` is asked again. */
  runTimers?(nowNs: number): void;
}

export const enum HaltResult {
  /** The vCPU became runnable. */
  Woken = 0,
  /** A signal, or nothing left to wait for: return to userspace with KVM_EXIT_INTR. */
  Interrupted = 1,
}

/**
 * The kvm module parameters that steer halt polling (/sys/module/kvm/parameters/halt_poll_ns*),
 * with x86's defaults (KVM_HALT_POLL_NS_DEFAULT 200000, grow 2, grow_start 10000, shrink 2).
 */
export const haltPollParams = {
  haltPollNs: 200_000,
  grow: 2,
  growStart: 10_000,
  shrink: 2,
};

/** Longest single sleep when no deadline is known and another thread might still signal us. */
const MAX_IDLE_SLEEP_MS = 50;
/** kvm_vcpu_check_block() result: keep halting. */
const KEEP_HALTING = -1;

function canAtomicsWait(): boolean {
  try {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 1, 0);
    return true;
  } catch {
    return false;
  }
}
let atomicsWaitOk: boolean | undefined;

/** kvm_vcpu_max_halt_poll_ns(): the VM's KVM_CAP_HALT_POLL value if set, else the module parameter. */
export function kvmVcpuMaxHaltPollNs(vcpu: KvmVcpu): number {
  return vcpu.kvm.overrideHaltPollNs ? vcpu.kvm.maxHaltPollNs : haltPollParams.haltPollNs;
}

/** kvm_vcpu_check_block(): Woken / Interrupted when the halt must end, else KEEP_HALTING. */
function checkBlock(vcpu: KvmVcpu, hooks: KvmHaltHooks, now: number): number {
  hooks.runTimers?.(now);
  if (hooks.runnable()) return HaltResult.Woken;
  if (vcpu.task.signalPending()) return HaltResult.Interrupted;
  return KEEP_HALTING;
}

/** The poll loop of kvm_vcpu_halt(): up to `stop` on the host clock. */
function poll(vcpu: KvmVcpu, hooks: KvmHaltHooks, clock: HostClock, stop: number): number {
  if (clock instanceof VirtualClock) {
    for (;;) {
      const now = clock.nowNs();
      const r = checkBlock(vcpu, hooks, now);
      if (r !== KEEP_HALTING || now >= stop) return r;
      const due = Math.min(hooks.nextDeadlineNs(), vcpu.task.alarmExpiry);
      // A due time at or before now that did not wake us cannot end the poll: go to the window's end.
      clock.set(due > now && due < stop ? due : stop);
    }
  }
  for (;;) {
    const now = clock.nowNs();
    const r = checkBlock(vcpu, hooks, now);
    if (r !== KEEP_HALTING || now >= stop) return r;
  }
}

/** kvm_vcpu_block(): sleep until the halt must end. */
function block(vcpu: KvmVcpu, hooks: KvmHaltHooks, clock: HostClock): HaltResult {
  const task = vcpu.task;
  for (;;) {
    const now = clock.nowNs();
    const r = checkBlock(vcpu, hooks, now);
    if (r !== KEEP_HALTING) return r;
    const deadline = Math.min(hooks.nextDeadlineNs(), task.alarmExpiry);
    if (clock instanceof VirtualClock) {
      if (deadline === Infinity) return HaltResult.Interrupted;
      clock.set(Math.max(now, deadline));
      continue;
    }
    atomicsWaitOk ??= canAtomicsWait();
    if (!atomicsWaitOk) return HaltResult.Interrupted;
    const word = task.pendingWord;
    const seen = Atomics.load(word, 0);
    if (seen & ~task.blocked) continue;
    if (deadline === Infinity) {
      // Only another thread could wake us; give it a bounded chance, then hand control back.
      Atomics.wait(word, 0, seen, MAX_IDLE_SLEEP_MS);
      if (!hooks.runnable() && !task.signalPending()) return HaltResult.Interrupted;
      continue;
    }
    const ms = (deadline - now) / 1e6;
    if (ms > 0) Atomics.wait(word, 0, seen, ms);
  }
}

/** grow_halt_poll_ns(): double the window (at least halt_poll_ns_grow_start), not beyond the maximum. */
function growHaltPollNs(vcpu: KvmVcpu, max: number): void {
  const old = vcpu.haltPollNs;
  let val = old;
  if (haltPollParams.grow > 0) {
    val = Math.max(old * haltPollParams.grow, haltPollParams.growStart);
    val = Math.min(val, max);
  }
  vcpu.haltPollNs = val;
  if (vcpu.kvm.tracing) vcpu.kvm.trace("kvm_halt_poll_ns", { grow: true, vcpu_id: vcpu.vcpuId, new: val, old }, vcpu);
}

/** shrink_halt_poll_ns(): divide the window (0 below halt_poll_ns_grow_start, or when shrink is 0). */
function shrinkHaltPollNs(vcpu: KvmVcpu): void {
  const old = vcpu.haltPollNs;
  const shrink = haltPollParams.shrink;
  let val = shrink === 0 ? 0 : Math.floor(old / shrink);
  if (val < haltPollParams.growStart) val = 0;
  vcpu.haltPollNs = val;
  if (vcpu.kvm.tracing) vcpu.kvm.trace("kvm_halt_poll_ns", { grow: false, vcpu_id: vcpu.vcpuId, new: val, old }, vcpu);
}

/** update_halt_poll_stats() */
function updateHaltPollStats(vcpu: KvmVcpu, pollNs: number, success: boolean): void {
  const st = vcpu.stat;
  st.halt_attempted_poll++;
  if (success) {
    st.halt_successful_poll++;
    st.halt_poll_success_ns += pollNs;
    logHistUpdate(vcpu.stats.hist.halt_poll_success_hist, pollNs);
  } else {
    st.halt_poll_fail_ns += pollNs;
    logHistUpdate(vcpu.stats.hist.halt_poll_fail_hist, pollNs);
  }
}

/** kvm_vcpu_halt(): poll, then block until runnable or signalled; adapt the poll window. */
export function kvmVcpuHalt(vcpu: KvmVcpu, hooks: KvmHaltHooks): HaltResult {
  const clock = vcpu.kvm.proc.clock;
  const start = clock.nowNs();
  const doPoll = vcpu.haltPollNs > 0;
  vcpu.stat.blocking = 1;
  let r = doPoll ? poll(vcpu, hooks, clock, start + vcpu.haltPollNs) : checkBlock(vcpu, hooks, start);
  const pollEnd = clock.nowNs();
  const waited = r === KEEP_HALTING;
  if (waited) r = block(vcpu, hooks, clock);
  const cur = clock.nowNs();
  vcpu.kicked = false;
  vcpu.stat.blocking = 0;
  if (waited) {
    vcpu.stat.halt_wait_ns += cur - pollEnd;
    logHistUpdate(vcpu.stats.hist.halt_wait_hist, cur - pollEnd);
  }
  if (doPoll) updateHaltPollStats(vcpu, pollEnd - start, !waited);
  // The window adapts to the whole halt, polling included.
  const haltNs = cur - start;
  const max = kvmVcpuMaxHaltPollNs(vcpu);
  if (max === 0) vcpu.haltPollNs = 0;
  else if (haltNs <= vcpu.haltPollNs) {
    // The poll window covered this halt: keep it.
  } else if (vcpu.haltPollNs > 0 && haltNs > max) shrinkHaltPollNs(vcpu);
  else if (vcpu.haltPollNs < max && haltNs < max) growHaltPollNs(vcpu, max);
  // halt_wakeup counts wake-ups of a vCPU that went to sleep (kvm_vcpu_wake_up).
  if (waited && r === HaltResult.Woken) vcpu.stat.halt_wakeup++;
  if (vcpu.kvm.tracing) vcpu.kvm.trace("kvm_vcpu_wakeup", { ns: haltNs, waited, valid: true }, vcpu);
  return r as HaltResult;
}
