/** include/uapi/asm-generic/signal.h (x86-64 numbers). */
export const SIGHUP = 1;
export const SIGINT = 2;
export const SIGQUIT = 3;
export const SIGKILL = 9;
export const SIGUSR1 = 10;
export const SIGSEGV = 11;
export const SIGUSR2 = 12;
export const SIGALRM = 14;
export const SIGTERM = 15;
export const SIGSTOP = 19;
export const SIGCHLD = 17;
export const SIGIO = 29;
/** Highest standard signal handled here (1..31). */
export const NSIG_STD = 31;
