/**
 * arch/x86/kvm/i8254.c: the 8254 programmable interval timer (ports 0x40-0x43) clocked at
 * 1.193182 MHz, and the speaker / gate port 0x61. Counters are not ticked: each channel keeps
 * the VM-clock time its count was loaded, and reads compute count and OUT from the elapsed time
 * (Intel 82C54 datasheet, modes 0-5). Channel 0 drives GSI 0 with one edge per expiry.
 *
 * Reinject mode (KVM_REINJECT_CONTROL, default on): every expiry is counted and delivered only
 * after the guest acknowledged the previous one (ack notifier on GSI 0), so a guest that missed
 * ticks gets them all; with reinject off, expiries that arrive while one is pending are lost.
 */
import type { KvmIoDevice, KvmVcpuLike } from "../../../virt/kvm/kvm_host.js";
import type { KvmIrqAckNotifier, KvmIrqMaskNotifier, KvmIrqRouting } from "../../../virt/kvm/irqchip.js";
import { KVM_PIT_FLAGS_HPET_LEGACY, KVM_PIT_FLAGS_SPEAKER_DATA_ON, type KvmPitChannelState, type KvmPitState2 } from "../../../uapi/irqchip.js";
import type { HostClock } from "../../../host/clock.js";

export const KVM_PIT_FREQ = 1193182;
export const KVM_PIT_BASE_ADDRESS = 0x40;
export const KVM_SPEAKER_BASE_ADDRESS = 0x61;
// RW_STATE_LSB (1) is every state not named below: the low byte alone.
const RW_STATE_MSB = 2;
const RW_STATE_WORD0 = 3;
const RW_STATE_WORD1 = 4;

/** struct kvm_kpit_channel_state; countLoadTime is VM-clock ns. */
class KpitChannel {
  count = 0;
  latchedCount = 0;
  countLatched = 0;
  statusLatched = 0;
  status = 0;
  readState = 0;
  writeState = 0;
  writeLatch = 0;
  rwMode = 0;
  mode = 0;
  bcd = 0;
  gate = 0;
  countLoadTime = 0;
}

function bcdToBin(v: number): number {
  return ((v >> 12) & 0xf) * 1000 + ((v >> 8) & 0xf) * 100 + ((v >> 4) & 0xf) * 10 + (v & 0xf);
}
function binToBcd(v: number): number {
  v %= 10000;
  return (Math.floor(v / 1000) << 12) | (Math.floor(v / 100) % 10 << 8) | (Math.floor(v / 10) % 10 << 4) | v % 10;
}

/** struct kvm_pit */
export class KvmPit {
  readonly channels: KpitChannel[] = [new KpitChannel(), new KpitChannel(), new KpitChannel()];
  flags = 0;
  speakerDataOn = 0;
  /** KVM_REINJECT_CONTROL */
  reinject = true;
  /** Expiries not yet acknowledged (reinject mode), and whether the last one was. */
  pending = 0;
  irqAck = true;
  readonly irqSourceId: number;
  // Channel 0's hrtimer
  private timerArmed = false;
  private isPeriodic = false;
  private periodNs = 0;
  private expiresNs = 0;

  readonly dev: KvmIoDevice;
  readonly speakerDev: KvmIoDevice;
  private readonly ackNotifier: KvmIrqAckNotifier;
  private readonly maskNotifier: KvmIrqMaskNotifier;

  /** kvm_create_pit(): takes an irq source id and hooks GSI 0's ack and mask notifiers. */
  constructor(
    private readonly clock: HostClock,
    private readonly routing: KvmIrqRouting,
  ) {
    this.irqSourceId = routing.requestIrqSourceId();
    this.ackNotifier = { gsi: 0, irqAcked: () => this.ackIrq() };
    this.maskNotifier = { irq: 0, func: (_n, masked) => { if (!masked) this.resetReinject(); } };
    this.dev = {
      read: (_v: KvmVcpuLike | null, addr: number, len: number, data: Uint8Array): boolean => {
        if (addr < KVM_PIT_BASE_ADDRESS || addr > KVM_PIT_BASE_ADDRESS + 3) return false;
        data.fill(0, 0, len);
        data[0] = this.ioportRead(addr & 3);
        return true;
      },
      write: (_v: KvmVcpuLike | null, addr: number, _len: number, data: Uint8Array): boolean => {
        if (addr < KVM_PIT_BASE_ADDRESS || addr > KVM_PIT_BASE_ADDRESS + 3) return false;
        this.ioportWrite(addr & 3, data[0]);
        return true;
      },
    };
    this.speakerDev = {
      read: (_v: KvmVcpuLike | null, addr: number, len: number, data: Uint8Array): boolean => {
        if (addr !== KVM_SPEAKER_BASE_ADDRESS) return false;
        data.fill(0, 0, len);
        data[0] = this.speakerRead();
        return true;
      },
      write: (_v: KvmVcpuLike | null, addr: number, _len: number, data: Uint8Array): boolean => {
        if (addr !== KVM_SPEAKER_BASE_ADDRESS) return false;
        this.speakerWrite(data[0]);
        return true;
      },
    };
    this.reset();
    this.setReinject(true);
  }

  /** kvm_pit_reset() */
  reset(): void {
    this.flags = 0;
    const now = this.clock.nowNs();
    for (let i = 0; i < 3; i++) {
      const c = this.channels[i];
      Object.assign(c, new KpitChannel());
      c.mode = 0xff; // as KVM: no mode until the guest programs one
      c.gate = i !== 2 ? 1 : 0;
      c.countLoadTime = now;
      this.loadCount(i, 0);
    }
    this.resetReinject();
  }

  /** kvm_pit_set_reinject() (KVM_REINJECT_CONTROL) */
  setReinject(reinject: boolean): void {
    if (reinject === this.reinject && this.notifiersRegistered) return;
    this.reinject = reinject;
    if (reinject) {
      this.resetReinject();
      this.routing.registerIrqAckNotifier(this.ackNotifier);
      this.routing.registerIrqMaskNotifier(this.maskNotifier);
      this.notifiersRegistered = true;
    } else if (this.notifiersRegistered) {
      this.routing.unregisterIrqAckNotifier(this.ackNotifier);
      this.routing.unregisterIrqMaskNotifier(this.maskNotifier);
      this.notifiersRegistered = false;
    }
  }
  private notifiersRegistered = false;

  /** kvm_free_pit() */
  destroy(): void {
    this.setReinject(false);
    this.timerArmed = false;
    this.routing.freeIrqSourceId(this.irqSourceId);
  }

  private resetReinject(): void {
    this.pending = 0;
    this.irqAck = true;
  }

  /** kvm_pit_ack_irq(): the guest EOIed IRQ0; deliver the next owed tick, if any. */
  private ackIrq(): void {
    this.irqAck = true;
    if (this.pending > 0 && --this.pending > 0) this.doWork();
  }

  /** pit_do_work(): one edge on GSI 0. */
  private doWork(): void {
    if (this.reinject) {
      if (!this.irqAck) return;
      this.irqAck = false;
    }
    this.routing.setIrq(this.irqSourceId, 0, 1, false);
    this.routing.setIrq(this.irqSourceId, 0, 0, false);
  }

  /** Channel 0's next expiry (VM-clock ns) or Infinity: a HLT blocking deadline. */
  nextDeadlineNs(): number {
    return this.timerArmed ? this.expiresNs : Infinity;
  }

  /** pit_timer_fn(): run channel 0's expiries due at `now`. Returns how many expired. */
  pollTimer(now: number): number {
    if (!this.timerArmed || now < this.expiresNs) return 0;
    let n = 1;
    if (this.isPeriodic) {
      n = Math.floor((now - this.expiresNs) / this.periodNs) + 1;
      this.expiresNs += n * this.periodNs;
    } else {
      this.timerArmed = false;
    }
    if (this.reinject) this.pending += n;
    this.doWork();
    return n;
  }

  private elapsedTicks(c: KpitChannel): number {
    const t = this.clock.nowNs() - c.countLoadTime;
    return t <= 0 ? 0 : Math.floor((t * KVM_PIT_FREQ) / 1e9);
  }

  /** pit_get_count(): the counting element, binary. */
  private getCount(ch: number): number {
    const c = this.channels[ch];
    const d = this.elapsedTicks(c);
    switch (c.mode) {
      case 0:
      case 1:
      case 4:
      case 5:
        return (c.count - d) & 0xffff;
      case 3:
        return c.count - ((2 * d) % c.count);
      default:
        return c.count - (d % c.count);
    }
  }

  /**
   * The OUT pin now, per the 82C54 datasheet waveforms: mode 0 and 1 go high at terminal count;
   * mode 2 is low for the one clock where the count is 1; mode 3 is high for the first half of
   * each period; modes 4 and 5 strobe low for one clock at terminal count. (KVM's pit_get_out()
   * inverts modes 1, 2, 4 and 5; software that polls OUT sees the datasheet's levels here.)
   */
  private getOut(ch: number): number {
    const c = this.channels[ch];
    const d = this.elapsedTicks(c);
    switch (c.mode) {
      case 2:
        return d % c.count === c.count - 1 ? 0 : 1;
      case 3:
        return d % c.count < (c.count + 1) >> 1 ? 1 : 0;
      case 4:
      case 5:
        return d === c.count ? 0 : 1;
      default:
        return d >= c.count ? 1 : 0;
    }
  }

  /** pit_load_count(): a new count; channel 0 (re)arms its timer for modes 0-3 and 5. */
  private loadCount(ch: number, val: number): void {
    const c = this.channels[ch];
    if (c.bcd) val = bcdToBin(val) || 10000;
    if (val === 0) val = 0x10000;
    c.count = val;
    c.countLoadTime = this.clock.nowNs();
    if (ch !== 0) return;
    this.timerArmed = false;
    if (this.flags & KVM_PIT_FLAGS_HPET_LEGACY) return;
    switch (c.mode) {
      case 0:
      case 1:
      case 5:
        this.createTimer(val, false);
        break;
      case 2:
      case 3:
        this.createTimer(val, true);
        break;
    }
  }

  /** create_pit_timer() */
  private createTimer(val: number, periodic: boolean): void {
    this.periodNs = (val * 1e9) / KVM_PIT_FREQ;
    this.isPeriodic = periodic;
    this.expiresNs = this.clock.nowNs() + this.periodNs;
    this.timerArmed = true;
    this.resetReinject();
  }

  private latchCount(ch: number): void {
    const c = this.channels[ch];
    if (!c.countLatched) {
      const count = this.getCount(ch);
      c.latchedCount = c.bcd ? binToBcd(count) : count & 0xffff;
      c.countLatched = c.rwMode;
    }
  }

  private latchStatus(ch: number): void {
    const c = this.channels[ch];
    if (!c.statusLatched) {
      c.status = (this.getOut(ch) << 7) | (c.rwMode << 4) | ((c.mode & 7) << 1) | c.bcd;
      c.statusLatched = 1;
    }
  }

  /** pit_ioport_write() */
  ioportWrite(port: number, val: number): void {
    if (port === 3) {
      const ch = val >> 6;
      if (ch === 3) {
        // Read-back: bit 5 clear latches counts, bit 4 clear latches status, bits 1-3 select.
        for (let i = 0; i < 3; i++) {
          if (val & (2 << i)) {
            if (!(val & 0x20)) this.latchCount(i);
            if (!(val & 0x10)) this.latchStatus(i);
          }
        }
        return;
      }
      const c = this.channels[ch];
      const access = (val >> 4) & 3;
      if (access === 0) {
        this.latchCount(ch);
        return;
      }
      c.rwMode = access;
      c.readState = access;
      c.writeState = access;
      c.mode = (val >> 1) & 7;
      if (c.mode > 5) c.mode -= 4;
      c.bcd = val & 1;
      return;
    }
    const c = this.channels[port];
    switch (c.writeState) {
      case RW_STATE_MSB:
        this.loadCount(port, val << 8);
        break;
      case RW_STATE_WORD0:
        c.writeLatch = val;
        c.writeState = RW_STATE_WORD1;
        break;
      case RW_STATE_WORD1:
        this.loadCount(port, c.writeLatch | (val << 8));
        c.writeState = RW_STATE_WORD0;
        break;
      default:
        this.loadCount(port, val);
        break;
    }
  }

  /** pit_ioport_read() */
  ioportRead(port: number): number {
    if (port === 3) return 0;
    const c = this.channels[port];
    if (c.statusLatched) {
      c.statusLatched = 0;
      return c.status;
    }
    if (c.countLatched) {
      switch (c.countLatched) {
        case RW_STATE_MSB:
          c.countLatched = 0;
          return (c.latchedCount >> 8) & 0xff;
        case RW_STATE_WORD0:
          c.countLatched = RW_STATE_MSB;
          return c.latchedCount & 0xff;
        default:
          c.countLatched = 0;
          return c.latchedCount & 0xff;
      }
    }
    let count = this.getCount(port);
    if (c.bcd) count = binToBcd(count);
    switch (c.readState) {
      case RW_STATE_MSB:
        return (count >> 8) & 0xff;
      case RW_STATE_WORD0:
        c.readState = RW_STATE_WORD1;
        return count & 0xff;
      case RW_STATE_WORD1:
        c.readState = RW_STATE_WORD0;
        return (count >> 8) & 0xff;
      default:
        return count & 0xff;
    }
  }

  /** pit_set_gate(): a rising gate restarts modes 1, 2, 3 and 5. */
  private setGate(ch: number, val: number): void {
    const c = this.channels[ch];
    if (c.mode === 1 || c.mode === 2 || c.mode === 3 || c.mode === 5) {
      if (c.gate < val) c.countLoadTime = this.clock.nowNs();
    }
    c.gate = val;
  }

  /** speaker_ioport_read(): bit 5 OUT2, bit 4 refresh toggle, bit 1 speaker data, bit 0 gate 2. */
  speakerRead(): number {
    const refresh = Math.floor(this.clock.nowNs() / 16384) & 1;
    return (this.speakerDataOn << 1) | this.channels[2].gate | (this.getOut(2) << 5) | (refresh << 4);
  }

  /** speaker_ioport_write() */
  speakerWrite(val: number): void {
    this.speakerDataOn = (val >> 1) & 1;
    this.setGate(2, val & 1);
  }

  /** KVM_GET_PIT2 */
  getState(): KvmPitState2 {
    const channels: KvmPitChannelState[] = this.channels.map((c) => ({
      count: c.count, latchedCount: c.latchedCount, countLatched: c.countLatched, statusLatched: c.statusLatched,
      status: c.status, readState: c.readState, writeState: c.writeState, writeLatch: c.writeLatch, rwMode: c.rwMode,
      mode: c.mode, bcd: c.bcd, gate: c.gate, countLoadTime: BigInt(Math.round(c.countLoadTime)),
    }));
    return { channels, flags: this.flags | (this.speakerDataOn ? KVM_PIT_FLAGS_SPEAKER_DATA_ON : 0) };
  }

  /** KVM_SET_PIT2: copy the channels and reload every count (the phase restarts now, as in KVM). */
  setState(s: KvmPitState2): void {
    this.flags = s.flags & KVM_PIT_FLAGS_HPET_LEGACY;
    this.speakerDataOn = s.flags & KVM_PIT_FLAGS_SPEAKER_DATA_ON ? 1 : 0;
    this.setChannels(s.channels);
  }

  /** KVM_SET_PIT (struct kvm_pit_state): the channels only; flags stay. */
  setChannels(channels: readonly KvmPitChannelState[]): void {
    const s = { channels };
    for (let i = 0; i < 3; i++) {
      const src = s.channels[i];
      const c = this.channels[i];
      c.latchedCount = src.latchedCount & 0xffff;
      c.countLatched = src.countLatched;
      c.statusLatched = src.statusLatched;
      c.status = src.status;
      c.readState = src.readState;
      c.writeState = src.writeState;
      c.writeLatch = src.writeLatch;
      c.rwMode = src.rwMode;
      c.mode = src.mode;
      c.bcd = 0; // count is kept in binary; reload it as such, then restore the BCD flag
      c.gate = src.gate;
      this.loadCount(i, src.count >= 0x10000 ? 0 : src.count);
      c.bcd = src.bcd & 1;
    }
  }
}
