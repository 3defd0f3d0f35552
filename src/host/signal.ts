/**
 * Per-task signal state, the part KVM_RUN looks at: signal_pending(current). A pending signal
 * makes KVM_RUN return -EINTR with exit_reason KVM_EXIT_INTR (api.rst, KVM_RUN), which is how a
 * VMM thread gets control back from a running guest. `alarmAt()` is an ITIMER_REAL-like alarm:
 * at the given time SIGALRM becomes pending, so a single-threaded VMM gets its time slice back.
 *
 * The pending set lives in a SharedArrayBuffer word so another thread (a worker running the VMM's
 * I/O, or a kick from another vCPU) can raise a signal with Atomics.
 */
import type { HostClock } from "./clock.js";
import { NSIG_STD, SIGALRM } from "../uapi/signal.js";

const sigbit = (sig: number): number => 1 << (sig - 1);

export class HostTask {
  /** Bit (sig - 1) set when signal `sig` is pending. */
  readonly pendingWord: Int32Array;
  /** Signals blocked from interrupting KVM_RUN (KVM_SET_SIGNAL_MASK / sigprocmask). */
  blocked = 0;
  private alarmNs = Infinity;

  constructor(
    readonly tid: number,
    readonly clock: HostClock,
    shared?: Int32Array,
  ) {
    this.pendingWord = shared ?? new Int32Array(new SharedArrayBuffer(4));
  }

  /** signal_pending(current): an unblocked signal is pending (the alarm is checked here too). */
  signalPending(): boolean {
    if (this.alarmNs !== Infinity && this.clock.nowNs() >= this.alarmNs) {
      this.alarmNs = Infinity;
      Atomics.or(this.pendingWord, 0, sigbit(SIGALRM));
    }
    return (Atomics.load(this.pendingWord, 0) & ~this.blocked) !== 0;
  }

  /** send_sig(): make `sig` pending (safe from any thread sharing pendingWord). */
  kill(sig: number): void {
    checkSig(sig);
    Atomics.or(this.pendingWord, 0, sigbit(sig));
  }

  /** True if `sig` is pending (blocked or not). */
  isPending(sig: number): boolean {
    checkSig(sig);
    return (Atomics.load(this.pendingWord, 0) & sigbit(sig)) !== 0;
  }

  /**
   * dequeue_signal(): take the lowest-numbered pending unblocked signal (the VMM "handles" it).
   * Returns 0 when none is pending.
   */
  dequeueSignal(): number {
    this.signalPending(); // fold in an expired alarm
    for (;;) {
      const cur = Atomics.load(this.pendingWord, 0);
      const deliverable = cur & ~this.blocked;
      if (deliverable === 0) return 0;
      const bit = deliverable & -deliverable;
      if (Atomics.compareExchange(this.pendingWord, 0, cur, cur & ~bit) === cur) return 31 - Math.clz32(bit) + 1;
    }
  }

  /** alarm()/setitimer(ITIMER_REAL) with an absolute expiry: SIGALRM becomes pending at `ns`. */
  alarmAt(ns: number): void {
    this.alarmNs = ns;
  }

  /**
   * yield_to() / schedule() in a single-threaded host: give the CPU to another runnable thread
   * of this process now. The VMM's threads are its vCPUs' time slices, each ended by the alarm,
   * so the armed alarm expires at once (KVM_RUN sees the signal at its next check and returns
   * -EINTR, as at the end of any slice); with no alarm armed there is nobody to yield to.
   */
  yieldCpu(): void {
    if (this.alarmNs !== Infinity) this.alarmNs = -Infinity;
  }

  /** Cancel the alarm; returns its expiry (Infinity if none). */
  cancelAlarm(): number {
    const t = this.alarmNs;
    this.alarmNs = Infinity;
    return t;
  }

  get alarmExpiry(): number {
    return this.alarmNs;
  }
}

function checkSig(sig: number): void {
  if (!(Number.isInteger(sig) && sig >= 1 && sig <= NSIG_STD)) throw new RangeError(`signal ${sig} outside 1..${NSIG_STD}`);
}
