import { test } from "node:test";
import assert from "node:assert/strict";
import { MonotonicClock, TimerQueue, VirtualClock } from "../../src/host/clock.js";
import { createHost } from "../../src/host/process.js";
import { SIGALRM, SIGIO, SIGUSR1 } from "../../src/uapi/signal.js";

test("timer queue fires in expiry order, supports cancel and periodic re-arm", () => {
  const clock = new VirtualClock();
  const q = new TimerQueue(clock);
  const fired: string[] = [];
  const a = q.start(300, () => { fired.push("a"); });
  q.start(100, () => { fired.push("b"); });
  let n = 0;
  q.start(150, (now) => { fired.push(`p${now}`); return ++n < 3 ? now + 100 : undefined; });
  const c = q.start(200, () => { fired.push("c"); });
  assert.equal(q.nextExpiry(), 100);
  assert.equal(q.cancel(c), true);
  assert.equal(q.cancel(c), false);
  clock.advance(160);
  assert.equal(q.runExpired(), 2);
  assert.deepEqual(fired, ["b", "p160"]);
  assert.equal(q.nextExpiry(), 260);
  clock.set(1000);
  q.runExpired();
  assert.deepEqual(fired, ["b", "p160", "p1000", "a"]);
  assert.equal(a.active, false);
  assert.equal(q.size, 1, "periodic timer re-armed once more");
  assert.equal(q.nextExpiry(), 1100);
  assert.throws(() => clock.advance(-1), RangeError);
});

test("monotonic clock never goes backwards", () => {
  const c = new MonotonicClock();
  const t0 = c.nowNs();
  assert.ok(c.nowNs() >= t0);
});

test("signals: pending, blocked, dequeue order, alarm", () => {
  const clock = new VirtualClock();
  const proc = createHost({ memBytes: 2 << 20, clock }).createProcess("vmm");
  const t = proc.task;
  assert.equal(t.signalPending(), false);
  t.kill(SIGIO);
  t.kill(SIGUSR1);
  assert.equal(t.signalPending(), true);
  t.blocked = (1 << (SIGIO - 1)) | (1 << (SIGUSR1 - 1));
  assert.equal(t.signalPending(), false);
  t.blocked = 0;
  assert.equal(t.dequeueSignal(), SIGUSR1);
  assert.equal(t.dequeueSignal(), SIGIO);
  assert.equal(t.dequeueSignal(), 0);
  t.alarmAt(500);
  clock.advance(499);
  assert.equal(t.signalPending(), false);
  clock.advance(1);
  assert.equal(t.signalPending(), true);
  assert.equal(t.isPending(SIGALRM), true);
  assert.equal(t.dequeueSignal(), SIGALRM);
  assert.equal(t.signalPending(), false);
  assert.throws(() => t.kill(0), RangeError);
  assert.notEqual(proc.newTask().tid, proc.pid);
});
