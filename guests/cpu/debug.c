/*
 * Debug registers and single-step (SDM Vol 3B 19.2-19.3): an instruction breakpoint (DR0,
 * a fault: resumed with RFLAGS.RF), a data-write breakpoint (DR1, a trap after the write),
 * a data read/write breakpoint (DR2), single-stepping with RFLAGS.TF (DR6.BS), and MOV to a
 * debug register at CPL 3 (#GP(0)). Only DR6's B0-B3/BS bits are compared (the reserved bits
 * read differently across CPU generations). Breakpoints fire in the checked code, which runs
 * at CPL 3 in the 64-bit variant. Expectations from QEMU: kvm_pvm runs TF single-step but
 * never fires DR0-DR3 breakpoints (tools/kvm-runner/README.md).
 * tskvm-guest: lib=32,64 expect=qemu
 */
#include "ref.h"

#define DR6_B0 0x1
#define DR6_B1 0x2
#define DR6_B2 0x4
#define DR6_BS 0x4000
#define DR6_MASK (DR6_B0 | DR6_B1 | DR6_B2 | 0x8 | DR6_BS)
#define RF 0x10000
#define TF 0x100

static volatile ulong db_dr6[8], db_ip[8];
static volatile int db_n;
static void on_db(struct frame *f)
{
	ulong dr6;
	__asm__ volatile("mov %%dr6, %0" : "=r"(dr6));
	__asm__ volatile("mov %0, %%dr6" : : "r"(0ul));
	if (db_n < 8) {
		db_dr6[db_n] = dr6 & DR6_MASK;
		db_ip[db_n] = f->ip;
	}
	db_n++;
	f->flags &= ~(ulong)TF;
	if (dr6 & DR6_B0)
		f->flags |= RF; /* instruction breakpoints are faults: skip it once on return */
}
static volatile ulong gp_n, gp_err;
static void on_gp(struct frame *f)
{
	gp_n++;
	gp_err = f->error;
	f->ip = resume_ip;
	resume_ip = 0;
}

static void set_dr(int n, ulong v)
{
	switch (n) {
	case 0: __asm__ volatile("mov %0, %%dr0" : : "r"(v)); break;
	case 1: __asm__ volatile("mov %0, %%dr1" : : "r"(v)); break;
	case 2: __asm__ volatile("mov %0, %%dr2" : : "r"(v)); break;
	case 7: __asm__ volatile("mov %0, %%dr7" : : "r"(v)); break;
	}
}

#ifdef __x86_64__
#define SP "rsp"
#else
#define SP "esp"
#endif
static volatile u32 watched_w, watched_rw;
extern char bp_here[], step_from[], step_to[];

static long user_part(long which)
{
	ulong ip;
	if (which == 0) {
		/* Instruction breakpoint on bp_here. */
		__asm__ volatile("nop\nbp_here:\n\tnop\n\tnop" ::: "memory");
	} else if (which == 1) {
		watched_w = 5; /* data write breakpoint: trap after the store */
	} else if (which == 2) {
		u32 v = watched_rw; /* read/write breakpoint on a read */
		(void)v;
	} else if (which == 3) {
		/* Single step: set TF with POPF; the trap comes after the next instruction. */
		__asm__ volatile("pushf\n\torl $0x100, (%%" SP ")\n\tpopf\nstep_from:\n\tnop\nstep_to:\n\tnop" ::: "memory", "cc");
	} else {
		/* MOV to DR7 at CPL 3: #GP(0). */
#ifdef __x86_64__
		__asm__ volatile("lea 2f(%%rip), %%rax\n\tmov %%rax, %[ri]\n\tmov %%rax, %%dr7\n2:" : [ri] "=m"(resume_ip) : : "rax", "memory");
#else
		__asm__ volatile("movl $2f, %[ri]\n\tmov %%eax, %%dr7\n2:" : [ri] "=m"(resume_ip) : : "eax", "memory");
#endif
	}
	(void)ip;
	return 0;
}

int main(void)
{
	exc_hooks[1] = on_db;
	exc_hooks[13] = on_gp;
	/* DR7: L0 (bit 0), RW0=00 LEN0=00 (execute); L1 (bit 2) RW1=01 LEN1=11 (4-byte write);
	   L2 (bit 4) RW2=11 LEN2=11 (4-byte read/write). */
	set_dr(0, (ulong)bp_here);
	set_dr(1, (ulong)&watched_w);
	set_dr(2, (ulong)&watched_rw);
	set_dr(7, 0x1 | 0x4 | 0x10 | (0x0ul << 16) | (0xdul << 20) | (0xful << 24));
	for (long w = 0; w < 3; w++) {
		db_n = 0;
		user_call(user_part, w);
		static const char *const names[3] = {
			"instruction breakpoint (DR0): fault at the address, DR6.B0",
			"data write breakpoint (DR1): trap after the write, DR6.B1",
			"data read/write breakpoint (DR2) on a read: DR6.B2",
		};
		static const ulong want6[3] = { DR6_B0, DR6_B1, DR6_B2 };
		check(names[w], db_n == 1 ? db_dr6[0] : 0xdead00 + (ulong)db_n * 0x10000 + db_dr6[0], want6[w]);
		if (w == 0)
			check("  saved IP is the breakpoint address", db_ip[0], (ulong)bp_here);
	}
	check("watched_w was written", watched_w, 5);
	set_dr(7, 0);
	db_n = 0;
	user_call(user_part, 3);
	check("single step: one #DB with DR6.BS", db_n == 1 ? db_dr6[0] : 0xdead, DR6_BS);
	check("  saved IP is after the stepped instruction", db_ip[0], (ulong)step_to);
	gp_n = 0;
	user_call(user_part, 4);
	check("MOV to DR7 at CPL 3: #GP(0)", gp_n, 1);
	check("  error code", gp_err, 0);
	return 0;
}
