/**
 * Exceptions raised while executing an instruction (SDM Vol. 3A ch. 6).
 *
 * A fault unwinds the executor by throwing the one preallocated `FAULT` object (no allocation per
 * fault); the vector and error code travel in fields of the CPU. The run loop restores RIP to the
 * start of the faulting instruction and delivers the exception through the IDT.
 */

export const FAULT: { readonly fault: true } = Object.freeze({ fault: true as const });

export const DE_VECTOR = 0;
export const DB_VECTOR = 1;
export const NMI_VECTOR = 2;
export const BP_VECTOR = 3;
export const OF_VECTOR = 4;
export const BR_VECTOR = 5;
export const UD_VECTOR = 6;
export const NM_VECTOR = 7;
export const DF_VECTOR = 8;
export const TS_VECTOR = 10;
export const NP_VECTOR = 11;
export const SS_VECTOR = 12;
export const GP_VECTOR = 13;
export const PF_VECTOR = 14;
export const MF_VECTOR = 16;
export const AC_VECTOR = 17;
export const MC_VECTOR = 18;
export const XM_VECTOR = 19;

/** #PF error code bits (SDM 4.7). */
export const PFERR_P = 1;
export const PFERR_W = 2;
export const PFERR_U = 4;
export const PFERR_RSVD = 8;
export const PFERR_I = 16;
export const PFERR_PK = 32;

/** VMX interruption types (SDM 25.8.3), used for event delivery everywhere in the core. */
export const EV_EXT_INTR = 0;
export const EV_NMI = 2;
export const EV_HW_EXC = 3;
export const EV_SW_INTR = 4;
export const EV_PRIV_SW_EXC = 5;
export const EV_SW_EXC = 6;

/** Exceptions that push an error code (SDM Table 6-1). */
export function hasErrorCode(vector: number): boolean {
  return vector === 8 || (vector >= 10 && vector <= 14) || vector === 17 || vector === 21 || vector === 29 || vector === 30;
}

/** Exception classes for double-fault detection (SDM Table 6-4/6-5). */
export const CLASS_BENIGN = 0;
export const CLASS_CONTRIBUTORY = 1;
export const CLASS_PF = 2;
export const CLASS_DF = 3;

export function exceptionClass(vector: number): number {
  if (vector === 0 || (vector >= 10 && vector <= 13)) return CLASS_CONTRIBUTORY;
  if (vector === 14) return CLASS_PF;
  if (vector === 8) return CLASS_DF;
  return CLASS_BENIGN;
}
