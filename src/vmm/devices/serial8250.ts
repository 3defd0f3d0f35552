/**
 * A 16550A UART (kvmtool hw/serial.c, QEMU hw/char/serial.c roles; register map from the
 * National Semiconductor PC16550D datasheet). Eight byte-wide registers at the base port:
 *   0 RBR (read) / THR (write), DLL when LCR.DLAB      4 MCR
 *   1 IER, DLM when LCR.DLAB                           5 LSR
 *   2 IIR (read) / FCR (write)                         6 MSR
 *   3 LCR                                              7 SCR
 * Transmission is instantaneous: a THR write goes to the output sink (or, in loopback, back
 * into the receiver) and the transmitter is empty again at once.
 */
import type { IoDevice, IrqSink } from "../io_bus.js";

export const UART_RX = 0, UART_TX = 0, UART_DLL = 0, UART_IER = 1, UART_DLM = 1, UART_IIR = 2;
export const UART_FCR = 2, UART_LCR = 3, UART_MCR = 4, UART_LSR = 5, UART_MSR = 6, UART_SCR = 7;

export const UART_IER_RDI = 0x01, UART_IER_THRI = 0x02, UART_IER_RLSI = 0x04, UART_IER_MSI = 0x08;
export const UART_IIR_NO_INT = 0x01, UART_IIR_MSI = 0x00, UART_IIR_THRI = 0x02, UART_IIR_RDI = 0x04;
export const UART_IIR_RLSI = 0x06, UART_IIR_RX_TIMEOUT = 0x0c, UART_IIR_FIFO_ENABLED = 0xc0;
export const UART_FCR_ENABLE_FIFO = 0x01, UART_FCR_CLEAR_RCVR = 0x02, UART_FCR_CLEAR_XMIT = 0x04;
export const UART_LCR_DLAB = 0x80;
export const UART_MCR_DTR = 0x01, UART_MCR_RTS = 0x02, UART_MCR_OUT1 = 0x04, UART_MCR_OUT2 = 0x08, UART_MCR_LOOP = 0x10;
export const UART_LSR_DR = 0x01, UART_LSR_OE = 0x02, UART_LSR_BI = 0x10, UART_LSR_THRE = 0x20, UART_LSR_TEMT = 0x40;
export const UART_MSR_DCTS = 0x01, UART_MSR_DDSR = 0x02, UART_MSR_TERI = 0x04, UART_MSR_DDCD = 0x08;
export const UART_MSR_CTS = 0x10, UART_MSR_DSR = 0x20, UART_MSR_RI = 0x40, UART_MSR_DCD = 0x80;

const FIFO_SIZE = 16;
/** Receiver trigger levels selected by FCR bits 7:6. */
const RX_TRIGGER = [1, 4, 8, 14];

export class Serial8250 implements IoDevice {
  readonly name: string;
  private rbr = 0;
  private ier = 0;
  private fcr = 0;
  private lcr = 0x03; // 8N1, what firmware leaves behind
  private mcr = UART_MCR_OUT2;
  private lsr = UART_LSR_THRE | UART_LSR_TEMT;
  private msr = UART_MSR_DCD | UART_MSR_DSR | UART_MSR_CTS;
  private scr = 0;
  private dll = 0x0c; // 9600 baud
  private dlm = 0;
  /** Transmitter-empty interrupt pending (cleared by reading IIR while it is the reported cause, or by a THR write). */
  private thrIpending = true;
  private readonly rxFifo: number[] = [];
  /** Input the terminal gave us that does not fit the receiver yet. */
  private readonly backlog: number[] = [];
  private irqLevel = false;
  /** Bytes the guest has transmitted (for `info` and tests). */
  txCount = 0;

  constructor(
    name: string,
    private readonly irq: IrqSink,
    readonly irqLine: number,
    private readonly output: (byte: number) => void,
  ) {
    this.name = name;
  }

  /** Terminal input: bytes enter the receiver as it has room; the rest wait in a backlog. */
  receive(bytes: ArrayLike<number>): void {
    for (let i = 0; i < bytes.length; i++) this.backlog.push(bytes[i]! & 0xff);
    this.fillFromBacklog();
    this.updateIrq();
  }

  /** Bytes of terminal input not yet delivered to the guest. */
  get pendingInput(): number {
    return this.backlog.length + this.rxFifo.length;
  }

  read(offset: number, data: Uint8Array, len: number): void {
    data[0] = this.readReg(offset & 7);
    for (let i = 1; i < len; i++) data[i] = 0xff;
  }

  write(offset: number, data: Uint8Array, _len: number): void {
    this.writeReg(offset & 7, data[0]!);
  }

  readReg(reg: number): number {
    let v: number;
    switch (reg) {
      case UART_RX:
        if (this.lcr & UART_LCR_DLAB) return this.dll;
        v = this.popRx();
        break;
      case UART_IER:
        return this.lcr & UART_LCR_DLAB ? this.dlm : this.ier;
      case UART_IIR:
        v = this.iir();
        // Reading IIR acknowledges a transmitter-empty interrupt (PC16550D, "Interrupt Identification Register").
        if ((v & 0x0f) === UART_IIR_THRI) this.thrIpending = false;
        break;
      case UART_LCR:
        return this.lcr;
      case UART_MCR:
        return this.mcr;
      case UART_LSR:
        v = this.lsr;
        this.lsr &= ~(UART_LSR_OE | UART_LSR_BI); // error bits clear on read
        break;
      case UART_MSR:
        v = this.msr;
        this.msr &= 0xf0; // delta bits clear on read
        break;
      default:
        return this.scr;
    }
    this.updateIrq();
    return v;
  }

  writeReg(reg: number, v: number): void {
    v &= 0xff;
    switch (reg) {
      case UART_TX:
        if (this.lcr & UART_LCR_DLAB) {
          this.dll = v;
          return;
        }
        this.transmit(v);
        break;
      case UART_IER:
        if (this.lcr & UART_LCR_DLAB) {
          this.dlm = v;
          return;
        }
        // Enabling the THR-empty interrupt while the holding register is empty raises it at once.
        if (!(this.ier & UART_IER_THRI) && v & UART_IER_THRI && this.lsr & UART_LSR_THRE) this.thrIpending = true;
        this.ier = v & 0x0f;
        break;
      case UART_FCR:
        if ((v ^ this.fcr) & UART_FCR_ENABLE_FIFO) this.rxFifo.length = 0; // toggling FIFO mode resets it
        if (v & UART_FCR_CLEAR_RCVR) this.rxFifo.length = 0;
        this.fcr = v & 0xc9;
        this.fillFromBacklog();
        if (this.rxFifo.length === 0) this.lsr &= ~UART_LSR_DR;
        break;
      case UART_LCR:
        this.lcr = v;
        return;
      case UART_MCR:
        this.setMcr(v & 0x1f);
        break;
      case UART_LSR:
        return; // read-only (factory test only)
      case UART_MSR:
        return;
      default:
        this.scr = v;
        return;
    }
    this.updateIrq();
  }

  private get fifoEnabled(): boolean {
    return (this.fcr & UART_FCR_ENABLE_FIFO) !== 0;
  }

  private get rxCapacity(): number {
    return this.fifoEnabled ? FIFO_SIZE : 1;
  }

  private transmit(v: number): void {
    this.txCount++;
    if (this.mcr & UART_MCR_LOOP) this.pushRx(v);
    else this.output(v);
    this.thrIpending = (this.ier & UART_IER_THRI) !== 0;
    this.lsr |= UART_LSR_THRE | UART_LSR_TEMT;
  }

  private pushRx(v: number): void {
    if (this.rxFifo.length >= this.rxCapacity) {
      this.lsr |= UART_LSR_OE;
      return;
    }
    this.rxFifo.push(v);
    this.lsr |= UART_LSR_DR;
  }

  private popRx(): number {
    const v = this.rxFifo.length ? this.rxFifo.shift()! : this.rbr;
    this.rbr = v;
    if (!(this.mcr & UART_MCR_LOOP)) this.fillFromBacklog();
    if (this.rxFifo.length === 0) this.lsr &= ~UART_LSR_DR;
    return v;
  }

  private fillFromBacklog(): void {
    if (this.mcr & UART_MCR_LOOP) return; // loopback disconnects the receiver from the line
    while (this.backlog.length && this.rxFifo.length < this.rxCapacity) this.rxFifo.push(this.backlog.shift()!);
    if (this.rxFifo.length) this.lsr |= UART_LSR_DR;
  }

  private setMcr(v: number): void {
    const old = this.mcr;
    this.mcr = v;
    if (v & UART_MCR_LOOP) {
      // Loopback: modem outputs feed the modem inputs (DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD).
      const st = ((v & UART_MCR_RTS) << 3) | ((v & UART_MCR_DTR) << 5) | ((v & UART_MCR_OUT1) << 4) | ((v & UART_MCR_OUT2) << 4);
      const delta = (st ^ this.msr) & 0xf0;
      let d = 0;
      if (delta & UART_MSR_CTS) d |= UART_MSR_DCTS;
      if (delta & UART_MSR_DSR) d |= UART_MSR_DDSR;
      if (delta & UART_MSR_DCD) d |= UART_MSR_DDCD;
      if (this.msr & UART_MSR_RI && !(st & UART_MSR_RI)) d |= UART_MSR_TERI; // trailing edge of RI
      this.msr = st | (this.msr & 0x0f) | d;
    } else if (old & UART_MCR_LOOP) {
      this.msr = UART_MSR_DCD | UART_MSR_DSR | UART_MSR_CTS | (this.msr & 0x0f);
      this.fillFromBacklog();
    }
  }

  /** The highest-priority pending interrupt (PC16550D Table IV). */
  private iir(): number {
    const fifo = this.fifoEnabled ? UART_IIR_FIFO_ENABLED : 0;
    if (this.ier & UART_IER_RLSI && this.lsr & (UART_LSR_OE | UART_LSR_BI)) return fifo | UART_IIR_RLSI;
    if (this.ier & UART_IER_RDI && this.lsr & UART_LSR_DR) {
      // Below the trigger level a FIFO reports "character timeout" (the timeout has elapsed by
      // the time a guest looks: input arrives in bursts far slower than four character times).
      if (this.fifoEnabled && this.rxFifo.length < RX_TRIGGER[this.fcr >>> 6]!) return fifo | UART_IIR_RX_TIMEOUT;
      return fifo | UART_IIR_RDI;
    }
    if (this.ier & UART_IER_THRI && this.thrIpending) return fifo | UART_IIR_THRI;
    if (this.ier & UART_IER_MSI && this.msr & 0x0f) return fifo | UART_IIR_MSI;
    return fifo | UART_IIR_NO_INT;
  }

  private updateIrq(): void {
    const level = (this.iir() & UART_IIR_NO_INT) === 0;
    if (level !== this.irqLevel) {
      this.irqLevel = level;
      this.irq.setIrq(this.irqLine, level);
    }
  }
}
