/*
 * Catching the exception an instruction raises and comparing it with the SDM's account:
 * exc_hooks[v] = record for the vectors of interest, then TRY("insn", ip) runs the instruction at
 * label 1 with resume_ip at label 2, so a fault resumes after it; rec holds the frame of the last
 * exception and taken how many were seen; expect() prints one ok/FAIL line per case.
 */
#ifndef GUEST_TRAP_H
#define GUEST_TRAP_H
#include "lib.h"

static struct frame rec;
static volatile int taken;
static void record(struct frame *f)
{
	rec = *f;
	taken++;
	if (resume_ip) {
		f->ip = resume_ip;
		resume_ip = 0;
	}
}

static ulong cs_now(void) { ulong v; __asm__ volatile("mov %%cs, %0" : "=r"(v)); return v & 0xffff; }

#ifdef __x86_64__
#define SET_RESUME "lea 2f(%%rip), %%rax\n\tmov %%rax, %[ri]\n\t"
#define IP_OF(label) "lea " label "(%%rip), %[ip]\n\t"
#else
#define SET_RESUME "movl $2f, %[ri]\n\t"
#define IP_OF(label) "mov $" label ", %[ip]\n\t"
#endif

/* Runs `insn` at label 1, resuming at label 2 (after it) if it faults; reports 1's address. */
#define TRY_IN(insn, ipvar, ...)                                                              \
	__asm__ volatile(SET_RESUME IP_OF("1f") "1:\t" insn "\n2:"                            \
			 : [ip] "=&r"(ipvar), [ri] "=m"(resume_ip) : __VA_ARGS__ : "eax", "ecx", "edx", "memory", "cc")
#define TRY(insn, ipvar) TRY_IN(insn, ipvar, "i"(0))

static void expect_masked(const char *name, ulong vec, ulong err, ulong errmask, ulong ip, ulong cs)
{
	/* One line per case: what was taken and whether it is what the SDM says. */
	int ok = taken == 1 && rec.vector == vec && (rec.error & errmask) == (err & errmask) && rec.ip == ip &&
		 (rec.cs & 0xffff) == cs;
	puts(ok ? "ok " : "FAIL ");
	puts(name);
	puts(": vector ");
	putdec(rec.vector);
	puts(" error ");
	puthex(rec.error & errmask, 4);
	if (!ok) {
		puts(" taken ");
		putdec((u64)taken);
		puts(" ip ");
		puthex(rec.ip, 8);
		puts(" want ");
		puthex(ip, 8);
		puts(" cs ");
		puthex(rec.cs, 4);
	}
	putc('\n');
	if (!ok)
		failures++;
	taken = 0;
}

static void expect(const char *name, ulong vec, ulong err, ulong ip, ulong cs)
{
	expect_masked(name, vec, err, ~0ul, ip, cs);
}

#endif
