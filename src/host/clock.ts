/**
 * Host time: a monotonic clock (ktime_get() role) and high-resolution timers (hrtimer role).
 * Time is nanoseconds as a `number` (exact for 104 days of uptime at ns resolution, far beyond a
 * VM's life; sub-ns precision is not needed).
 *
 * `MonotonicClock` reads performance.now() (Node and browsers). `VirtualClock` only moves when
 * told to, so device models and tests are deterministic.
 */

export interface HostClock {
  /** Monotonic nanoseconds since an arbitrary origin (ktime_get_ns). */
  nowNs(): number;
}

/** ktime_get(): performance.now() in nanoseconds, never going backwards. */
export class MonotonicClock implements HostClock {
  private last = 0;
  nowNs(): number {
    const t = Math.round(globalThis.performance.now() * 1e6);
    if (t > this.last) this.last = t;
    return this.last;
  }
}

/** A clock that moves only through advance()/set(): for deterministic runs and tests. */
export class VirtualClock implements HostClock {
  constructor(private ns = 0) {}
  nowNs(): number {
    return this.ns;
  }
  advance(deltaNs: number): void {
    if (!(deltaNs >= 0)) throw new RangeError(`clock cannot go backwards (delta ${deltaNs})`);
    this.ns += deltaNs;
  }
  set(ns: number): void {
    if (!(ns >= this.ns)) throw new RangeError(`clock cannot go backwards (${ns} < ${this.ns})`);
    this.ns = ns;
  }
}

/**
 * What a timer callback returns: `HRTIMER_NORESTART` (undefined) or an absolute expiry time in ns
 * to re-arm (HRTIMER_RESTART after hrtimer_forward), as periodic timers (APIC, PIT) do.
 */
export type HrTimerCallback = (nowNs: number) => number | void;

/** Upper bound on callbacks run by one TimerQueue.runExpired() call. */
export const MAX_FIRES_PER_RUN = 100000;

/** struct hrtimer: a handle returned by TimerQueue.start(). */
export class HrTimer {
  /** Position in the heap, -1 when not queued. */
  index = -1;
  /** Start order, to fire equal expiries first-come first-served. */
  seq = 0;
  constructor(
    public expiresNs: number,
    public callback: HrTimerCallback,
  ) {}
  get active(): boolean {
    return this.index >= 0;
  }
}

/**
 * A queue of hrtimers ordered by expiry (a binary min-heap). The owner decides when time is
 * looked at: the VMM's loop (or a vCPU about to block) calls runExpired() and asks nextExpiry()
 * for how long it may sleep. Ties fire in start order.
 */
export class TimerQueue {
  private readonly heap: HrTimer[] = [];
  private seq = 0;

  constructor(readonly clock: HostClock) {}

  get size(): number {
    return this.heap.length;
  }

  /** hrtimer_start(): arm a new timer at absolute `expiresNs`. */
  start(expiresNs: number, callback: HrTimerCallback): HrTimer {
    const t = new HrTimer(expiresNs, callback);
    this.enqueue(t);
    return t;
  }

  /** Re-arm an existing timer (hrtimer_start on an initialised hrtimer): cancels it first. */
  restart(t: HrTimer, expiresNs: number): void {
    this.cancel(t);
    t.expiresNs = expiresNs;
    this.enqueue(t);
  }

  /** hrtimer_cancel(): returns true if the timer was queued. */
  cancel(t: HrTimer): boolean {
    const i = t.index;
    if (i < 0) return false;
    const last = this.heap.pop()!;
    if (last !== t) {
      this.heap[i] = last;
      last.index = i;
      this.siftDown(i);
      this.siftUp(last.index);
    }
    t.index = -1;
    return true;
  }

  /** Expiry of the earliest timer, or Infinity when none is queued. */
  nextExpiry(): number {
    return this.heap.length ? this.heap[0].expiresNs : Infinity;
  }

  /**
   * Fire every timer with expiry <= now (the hrtimer interrupt). Returns how many fired. A timer
   * that keeps re-arming itself at or before `now` fires at most MAX_FIRES_PER_RUN times in one
   * call (the rest waits for the next call), so a zero period cannot hang the host.
   */
  runExpired(now = this.clock.nowNs()): number {
    let n = 0;
    while (this.heap.length && this.heap[0].expiresNs <= now && n < MAX_FIRES_PER_RUN) {
      const t = this.heap[0];
      this.cancel(t);
      n++;
      const again = t.callback(now);
      if (typeof again === "number" && !t.active) {
        t.expiresNs = again;
        this.enqueue(t);
      }
    }
    return n;
  }

  private enqueue(t: HrTimer): void {
    t.seq = this.seq++;
    t.index = this.heap.length;
    this.heap.push(t);
    this.siftUp(t.index);
  }

  private less(a: HrTimer, b: HrTimer): boolean {
    return a.expiresNs < b.expiresNs || (a.expiresNs === b.expiresNs && a.seq < b.seq);
  }

  private siftUp(i: number): void {
    const h = this.heap;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(h[i], h[p])) break;
      this.swap(i, p);
      i = p;
    }
  }

  private siftDown(i: number): void {
    const h = this.heap;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && this.less(h[l], h[m])) m = l;
      if (r < h.length && this.less(h[r], h[m])) m = r;
      if (m === i) return;
      this.swap(i, m);
      i = m;
    }
  }

  private swap(i: number, j: number): void {
    const h = this.heap;
    const t = h[i];
    h[i] = h[j];
    h[j] = t;
    h[i].index = i;
    h[j].index = j;
  }
}
