/**
 * arch/x86/kvm/i8259.c: the two cascaded 8259A PICs of a PC (master at 0x20/0x21 with the
 * slave on IR2, slave at 0xa0/0xa1) and the PIIX ELCR at 0x4d0/0x4d1. Behaviour follows the
 * Intel 8259A datasheet: ICW1-ICW4 initialization, OCW1 mask, OCW2 EOI/rotation, OCW3 register
 * select / poll / special mask, auto-EOI, special fully nested mode, spurious IRQ 7 / 15.
 * The master's INT output goes to the vCPU(s) whose LAPIC accepts ExtINT (LINT0).
 */
import type { KvmIoDevice, KvmVcpuLike } from "../../../virt/kvm/kvm_host.js";
import { kvmIrqLineState, type KvmIrqRouting } from "../../../virt/kvm/irqchip.js";
import { KVM_IRQCHIP_PIC_MASTER, KVM_IRQCHIP_PIC_SLAVE, PIC_NUM_PINS, type KvmPicState } from "../../../uapi/irqchip.js";

/** struct kvm_kpic_state: one 8259A. */
export class KvmKpicState implements KvmPicState {
  lastIrr = 0;
  irr = 0;
  imr = 0;
  isr = 0;
  priorityAdd = 0;
  irqBase = 0;
  readRegSelect = 0;
  poll = 0;
  specialMask = 0;
  initState = 0;
  autoEoi = 0;
  rotateOnAutoEoi = 0;
  specialFullyNestedMode = 0;
  init4 = 0;
  elcr = 0;
  elcrMask: number;
  constructor(
    readonly isMaster: boolean,
    elcrMask: number,
  ) {
    this.elcrMask = elcrMask;
  }
}

/** get_priority(): priority (0 highest) of the highest bit in mask, rotated by priority_add; 8 if none. */
function getPriority(s: KvmKpicState, mask: number): number {
  if (mask === 0) return 8;
  let priority = 0;
  while ((mask & (1 << ((priority + s.priorityAdd) & 7))) === 0) priority++;
  return priority;
}

/** pic_set_irq1(): drive one input; returns -1 masked, 0 coalesced, 1 newly requested. */
function picSetIrq1(s: KvmKpicState, irq: number, level: number): number {
  const mask = 1 << irq;
  let ret = 1;
  if (s.elcr & mask) {
    // Level triggered: IRR follows the line.
    if (level) {
      ret = s.irr & mask ? 0 : 1;
      s.irr |= mask;
      s.lastIrr |= mask;
    } else {
      s.irr &= ~mask;
      s.lastIrr &= ~mask;
    }
  } else if (level) {
    // Edge triggered: only a low-to-high transition sets IRR.
    if ((s.lastIrr & mask) === 0) {
      ret = s.irr & mask ? 0 : 1;
      s.irr |= mask;
    }
    s.lastIrr |= mask;
  } else {
    s.lastIrr &= ~mask;
  }
  return s.imr & mask ? -1 : ret;
}

/** struct kvm_pic: the master/slave pair plus per-pin source line states. */
export class KvmPic {
  readonly pics: [KvmKpicState, KvmKpicState] = [new KvmKpicState(true, 0xf8), new KvmKpicState(false, 0xde)];
  /** The master's INT output (s->output). */
  output = false;
  /** irq_states[]: one bit per irq source per pin. */
  readonly irqStates = new Uint32Array(PIC_NUM_PINS);
  /** kvm_io_bus devices: 0x20 (2 ports), 0xa0 (2 ports), 0x4d0 (2 ports). */
  readonly devMaster: KvmIoDevice;
  readonly devSlave: KvmIoDevice;
  readonly devElcr: KvmIoDevice;

  /**
   * @param routing ack and mask notifiers (kvm_notify_acked_irq, kvm_fire_mask_notifiers)
   * @param onOutput called with the new INT level whenever it may have changed (the
   *   pic_irq_request + kick of the vCPU that accepts PIC interrupts)
   */
  constructor(
    private readonly routing: KvmIrqRouting | null,
    private readonly onOutput: (level: boolean) => void = () => {},
  ) {
    this.devMaster = this.portDevice(0x20, 0);
    this.devSlave = this.portDevice(0xa0, 1);
    this.devElcr = {
      read: (_v: KvmVcpuLike | null, addr: number, len: number, data: Uint8Array): boolean => {
        if (addr !== 0x4d0 && addr !== 0x4d1) return false;
        data.fill(0, 0, len);
        if (len === 1) data[0] = this.pics[addr & 1].elcr;
        return true;
      },
      write: (_v: KvmVcpuLike | null, addr: number, len: number, data: Uint8Array): boolean => {
        if (addr !== 0x4d0 && addr !== 0x4d1) return false;
        if (len === 1) {
          const s = this.pics[addr & 1];
          s.elcr = data[0] & s.elcrMask;
        }
        return true;
      },
    };
  }

  private portDevice(base: number, idx: 0 | 1): KvmIoDevice {
    return {
      read: (_v, addr, len, data) => {
        if (addr !== base && addr !== base + 1) return false;
        data.fill(0, 0, len);
        // Multi-byte accesses are not decoded by the chip: reads give 0, as in KVM.
        if (len === 1) data[0] = this.ioportRead(idx, addr & 1);
        return true;
      },
      write: (_v, addr, len, data) => {
        if (addr !== base && addr !== base + 1) return false;
        if (len === 1) this.ioportWrite(idx, addr & 1, data[0]);
        return true;
      },
    };
  }

  /** pic_get_irq(): the highest-priority unmasked request that beats the in-service level, or -1. */
  private getIrq(s: KvmKpicState): number {
    const priority = getPriority(s, s.irr & ~s.imr);
    if (priority === 8) return -1;
    let mask = s.isr;
    // Special fully nested mode: the slave's in-service IR2 does not block further slave requests.
    if (s.specialFullyNestedMode && s.isMaster) mask &= ~(1 << 2);
    // Special mask mode: masked in-service levels do not inhibit lower priorities.
    if (s.specialMask) mask &= ~s.imr;
    const cur = getPriority(s, mask);
    return priority < cur ? (priority + s.priorityAdd) & 7 : -1;
  }

  /** pic_update_irq(): propagate the slave's request to master IR2 and the master's to INT. */
  private updateIrq(): void {
    if (this.getIrq(this.pics[1]) >= 0) {
      picSetIrq1(this.pics[0], 2, 1);
      picSetIrq1(this.pics[0], 2, 0);
    }
    const level = this.getIrq(this.pics[0]) >= 0;
    const changed = level !== this.output;
    this.output = level;
    if (changed || level) this.onOutput(level);
  }

  /** pic_clear_isr(): end of service for one level, then the ack notifiers of its pin. */
  private clearIsr(s: KvmKpicState, irq: number): void {
    s.isr &= ~(1 << irq);
    const pin = s.isMaster ? irq : irq + 8;
    this.routing?.notifyAckedIrq(s.isMaster ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE, pin);
  }

  /** pic_intack(): INTA for `irq`: set ISR, drop the edge request, auto-EOI. */
  private intack(s: KvmKpicState, irq: number): void {
    s.isr |= 1 << irq;
    if (!(s.elcr & (1 << irq))) s.irr &= ~(1 << irq);
    if (s.autoEoi) {
      if (s.rotateOnAutoEoi) s.priorityAdd = (irq + 1) & 7;
      this.clearIsr(s, irq);
    }
  }

  /** kvm_pic_set_irq(): drive input `irq` (0-15) from one source. Returns the line status. */
  setIrq(irq: number, irqSourceId: number, level: number): number {
    const irqLevel = kvmIrqLineState(this.irqStates, irq, irqSourceId, level);
    const s = this.pics[irq >> 3];
    const ret = picSetIrq1(s, irq & 7, irqLevel);
    this.updateIrq();
    const tr = this.routing?.tracer;
    if (tr && tr.tracing) tr.trace("kvm_pic_set_irq", { chip: irq >> 3, pin: irq & 7, elcr: s.elcr, imr: s.imr, coalesced: ret === 0 });
    return ret;
  }

  /** kvm_pic_clear_all(): forget one source on every pin. */
  clearAll(irqSourceId: number): void {
    for (let i = 0; i < PIC_NUM_PINS; i++) this.irqStates[i] &= ~(1 << irqSourceId);
  }

  /** kvm_pic_read_irq(): the INTA cycle; returns the vector (spurious IRQ 7/15 if the request vanished). */
  readIrq(): number {
    const m = this.pics[0];
    const sl = this.pics[1];
    let intno: number;
    const irq = this.getIrq(m);
    if (irq >= 0) {
      this.intack(m, irq);
      if (irq === 2) {
        let irq2 = this.getIrq(sl);
        if (irq2 >= 0) this.intack(sl, irq2);
        else irq2 = 7; // spurious IRQ15: no ISR bit is set for it
        intno = sl.irqBase + irq2;
      } else {
        intno = m.irqBase + irq;
      }
    } else {
      intno = m.irqBase + 7; // spurious IRQ7
    }
    this.updateIrq();
    return intno;
  }

  /** kvm_pic_reset() part run on ICW1. */
  private initReset(s: KvmKpicState): void {
    s.lastIrr = 0;
    s.irr &= s.elcr;
    s.imr = 0;
    s.priorityAdd = 0;
    s.specialMask = 0;
    s.readRegSelect = 0;
    s.poll = 0;
    if (!s.init4) {
      s.specialFullyNestedMode = 0;
      s.autoEoi = 0;
    }
    s.initState = 1;
    for (let irq = 0; irq < 8; irq++) if (s.isr & (1 << irq)) this.clearIsr(s, irq);
  }

  /** pic_ioport_write() */
  ioportWrite(idx: 0 | 1, port: number, val: number): void {
    const s = this.pics[idx];
    if (port === 0) {
      if (val & 0x10) {
        // ICW1. Single mode (bit 1) and level-triggered-all (bit 3) are not wired on a PC;
        // the ELCR sets the trigger per pin instead.
        s.init4 = val & 1;
        this.initReset(s);
        this.updateIrq();
      } else if (val & 0x08) {
        // OCW3
        if (val & 0x04) s.poll = 1;
        if (val & 0x02) s.readRegSelect = val & 1;
        if (val & 0x40) s.specialMask = (val >> 5) & 1;
        this.updateIrq();
      } else {
        this.ocw2(s, val);
      }
      return;
    }
    switch (s.initState) {
      case 0: {
        // OCW1: the mask register
        const diff = s.imr ^ val;
        s.imr = val;
        if (this.routing && diff) {
          const chip = s.isMaster ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE;
          for (let irq = 0; irq < 8; irq++)
            if (diff & (1 << irq)) this.routing.fireMaskNotifiers(chip, s.isMaster ? irq : irq + 8, (val & (1 << irq)) !== 0);
        }
        this.updateIrq();
        break;
      }
      case 1: // ICW2: vector base
        s.irqBase = val & 0xf8;
        s.initState = 2;
        break;
      case 2: // ICW3: cascade wiring is fixed on a PC
        s.initState = s.init4 ? 3 : 0;
        break;
      case 3: // ICW4
        s.specialFullyNestedMode = (val >> 4) & 1;
        s.autoEoi = (val >> 1) & 1;
        s.initState = 0;
        break;
    }
  }

  /** OCW2: rotate-in-auto-EOI set/clear, (specific) EOI, rotations, set priority. */
  private ocw2(s: KvmKpicState, val: number): void {
    const cmd = val >> 5;
    switch (cmd) {
      case 0: // clear rotate in auto-EOI
      case 4: // set rotate in auto-EOI
        s.rotateOnAutoEoi = cmd >> 2;
        break;
      case 1: // non-specific EOI
      case 5: {
        // rotate on non-specific EOI
        const priority = getPriority(s, s.isr);
        if (priority !== 8) {
          const irq = (priority + s.priorityAdd) & 7;
          if (cmd === 5) s.priorityAdd = (irq + 1) & 7;
          this.clearIsr(s, irq);
          this.updateIrq();
        }
        break;
      }
      case 3: // specific EOI
        this.clearIsr(s, val & 7);
        this.updateIrq();
        break;
      case 6: // set priority: IRn becomes the lowest
        s.priorityAdd = ((val & 7) + 1) & 7;
        this.updateIrq();
        break;
      case 7: // rotate on specific EOI
        s.priorityAdd = ((val & 7) + 1) & 7;
        this.clearIsr(s, val & 7);
        this.updateIrq();
        break;
      default: // 2: no operation
        break;
    }
  }

  /** pic_poll_read(): poll mode turns the read into an INTA; bit 7 says whether a level was pending. */
  private pollRead(s: KvmKpicState): number {
    const irq = this.getIrq(s);
    if (irq < 0) {
      this.updateIrq();
      return 0x07;
    }
    if (!s.isMaster) {
      // The slave answered: the master's cascade request is consumed too.
      const m = this.pics[0];
      m.irr &= ~(1 << 2);
    }
    this.intack(s, irq);
    this.updateIrq();
    return 0x80 | irq;
  }

  /** pic_ioport_read() */
  ioportRead(idx: 0 | 1, port: number): number {
    const s = this.pics[idx];
    if (s.poll) {
      s.poll = 0;
      return this.pollRead(s);
    }
    if (port === 0) return s.readRegSelect ? s.isr : s.irr;
    return s.imr;
  }

  /** KVM_GET_IRQCHIP (chip 0/1) */
  getState(chip: 0 | 1): KvmPicState {
    const s = this.pics[chip];
    return {
      lastIrr: s.lastIrr, irr: s.irr, imr: s.imr, isr: s.isr, priorityAdd: s.priorityAdd, irqBase: s.irqBase,
      readRegSelect: s.readRegSelect, poll: s.poll, specialMask: s.specialMask, initState: s.initState,
      autoEoi: s.autoEoi, rotateOnAutoEoi: s.rotateOnAutoEoi, specialFullyNestedMode: s.specialFullyNestedMode,
      init4: s.init4, elcr: s.elcr, elcrMask: s.elcrMask,
    };
  }

  /** KVM_SET_IRQCHIP (chip 0/1): copy in, then re-evaluate the output line. */
  setState(chip: 0 | 1, st: KvmPicState): void {
    const s = this.pics[chip];
    s.lastIrr = st.lastIrr & 0xff;
    s.irr = st.irr & 0xff;
    s.imr = st.imr & 0xff;
    s.isr = st.isr & 0xff;
    s.priorityAdd = st.priorityAdd & 7;
    s.irqBase = st.irqBase & 0xff;
    s.readRegSelect = st.readRegSelect & 1;
    s.poll = st.poll & 1;
    s.specialMask = st.specialMask & 1;
    s.initState = st.initState & 3;
    s.autoEoi = st.autoEoi & 1;
    s.rotateOnAutoEoi = st.rotateOnAutoEoi & 1;
    s.specialFullyNestedMode = st.specialFullyNestedMode & 1;
    s.init4 = st.init4 & 1;
    s.elcrMask = st.elcrMask & 0xff;
    s.elcr = st.elcr & s.elcrMask;
    this.updateIrq();
  }
}
