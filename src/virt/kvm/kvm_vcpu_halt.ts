/**
 * kvm_vcpu_halt() / kvm_vcpu_block() (kvm_main.c): a halted vCPU with an in-kernel irqchip
 * waits in the kernel until something makes it runnable (an interrupt, a timer), a signal is
 * pending, or it is kicked. The arch supplies the runnable check and the earliest device
 * deadline; the wait itself depends on the host:
 *   - a VirtualClock jumps straight to the deadline (deterministic runs and tests),
 *   - otherwise the thread sleeps with Atomics.wait on the task's signal word (so a signal
 *     raised from another thread ends the sleep at once), until the deadline,
 *   - where Atomics.wait is not allowed (a browser's main thread) or no deadline exists and no
 *     other thread could wake us, the wait ends as Interrupted so the VMM's loop regains control
 *     (the arch then returns KVM_EXIT_INTR / EINTR, exactly as for a signal).
 * Accounting follows KVM: halt_wait_ns, halt_wait_hist, halt_wakeup, blocking, and the
 * kvm_vcpu_wakeup tracepoint.
 */
import { VirtualClock } from "../../host/clock.js";
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
  /** A signal, a kick, or nothing left to wait for: return to userspace with KVM_EXIT_INTR. */
  Interrupted = 1,
}

/** Longest single sleep when no deadline is known and another thread might still signal us. */
const MAX_IDLE_SLEEP_MS = 50;

function canAtomicsWait(): boolean {
  try {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 1, 0);
    return true;
  } catch {
    return false;
  }
}
let atomicsWaitOk: boolean | undefined;

/** kvm_vcpu_halt(): block until runnable, signalled or kicked. */
export function kvmVcpuHalt(vcpu: KvmVcpu, hooks: KvmHaltHooks): HaltResult {
  const clock = vcpu.kvm.proc.clock;
  const task = vcpu.task;
  const start = clock.nowNs();
  vcpu.stat.blocking = 1;
  let result = HaltResult.Interrupted;
  for (;;) {
    const now = clock.nowNs();
    hooks.runTimers?.(now);
    if (hooks.runnable()) {
      result = HaltResult.Woken;
      break;
    }
    if (vcpu.kicked || task.signalPending()) break;
    const deadline = Math.min(hooks.nextDeadlineNs(), task.alarmExpiry);
    if (clock instanceof VirtualClock) {
      if (deadline === Infinity) break;
      clock.set(Math.max(now, deadline));
      continue;
    }
    atomicsWaitOk ??= canAtomicsWait();
    if (!atomicsWaitOk) break;
    const word = task.pendingWord;
    const seen = Atomics.load(word, 0);
    if (seen & ~task.blocked) continue;
    if (deadline === Infinity) {
      // Only another thread could wake us; give it a bounded chance, then hand control back.
      Atomics.wait(word, 0, seen, MAX_IDLE_SLEEP_MS);
      if (!hooks.runnable() && !task.signalPending()) break;
      continue;
    }
    const ms = (deadline - now) / 1e6;
    if (ms > 0) Atomics.wait(word, 0, seen, ms);
  }
  vcpu.kicked = false;
  const waited = clock.nowNs() - start;
  vcpu.stat.blocking = 0;
  vcpu.stat.halt_wait_ns += waited;
  logHistUpdate(vcpu.stats.hist.halt_wait_hist, waited);
  if (result === HaltResult.Woken) vcpu.stat.halt_wakeup++;
  if (vcpu.kvm.tracing) vcpu.kvm.trace("kvm_vcpu_wakeup", { ns: waited, waited: true, valid: result === HaltResult.Woken }, vcpu);
  return result;
}
