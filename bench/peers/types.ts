/** What every bench peer (tskvm, the real KVM, QEMU TCG) reports about one guest run. */

/** One line of guest serial output with host timestamps (ns since the run's origin). */
export interface SerialLine {
  /** When the line's first byte arrived. */
  startNs: number;
  /** When its newline arrived. */
  endNs: number;
  text: string;
  /** tskvm only: the vCPU's retired-instruction count at those two moments. */
  startInsns?: number;
  endInsns?: number;
}

export interface PeerRun {
  lines: SerialLine[];
  /** ns from the run's origin (tskvm, KVM: before KVM_CREATE_VM; QEMU: process spawn) to the first serial byte; -1 if none. */
  firstByteNs: number;
  /** exit-port | hlt | shutdown | timeout | unhandled | error */
  stop: string;
  /** Why an unhandled/error stop happened. */
  detail: string;
  exits: number;
  io: number;
  mmio: number;
  hasInsns: boolean;
}
