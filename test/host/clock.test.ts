import { test } from "node:test";
import assert from "node:assert/strict";
import { MAX_FIRES_PER_RUN, MonotonicClock, TimerQueue, VirtualClock } from "../../src/host/clock.js";
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

test("a timer re-arming itself in the past cannot hang runExpired", () => {
  const clock = new VirtualClock(10);
  const q = new TimerQueue(clock);
  let fired = 0;
  q.start(5, (now) => { fired++; return now; });
  assert.equal(q.runExpired(), MAX_FIRES_PER_RUN);
  assert.equal(fired, MAX_FIRES_PER_RUN);
  assert.equal(q.size, 1);
});

test("process exit releases every page and calls the notifiers' release", () => {
  const host = createHost({ memBytes: 4 << 20 });
  const proc = host.createProcess();
  let released = 0;
  proc.mm.registerMmuNotifier({ invalidateRangeStart: () => {}, invalidateRangeEnd: () => {}, release: () => { released++; } });
  const a = proc.mm.mmap(0, 64 * 4096, 3, 0x22);
  for (let i = 0; i < 64; i++) proc.mm.writeU8(a + i * 4096, 1);
  assert.equal(host.pageAlloc.allocatedFrames, 64);
  proc.exit();
  assert.equal(released, 1);
  assert.equal(host.pageAlloc.allocatedFrames, 0);
  assert.equal(proc.mm.vmaList.length, 0);
});
