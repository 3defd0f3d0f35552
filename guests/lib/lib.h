/*
 * Freestanding support for library-based guests: serial output on COM1 (0x3f8), the
 * isa-debug-exit style exit port (0xf4), self-check helpers, exception hooks and (64-bit)
 * ring-3 calls. Guests print only from ring 0.
 */
#ifndef GUEST_LIB_H
#define GUEST_LIB_H

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef unsigned long ulong; /* register width */

#define SERIAL_PORT 0x3f8
#define EXIT_PORT 0xf4

/* The registers saved by the entry stubs (guests/lib/entry.S), then the CPU's frame. */
#ifdef __x86_64__
struct frame {
	ulong rax, rbx, rcx, rdx, rsi, rdi, rbp, r8, r9, r10, r11, r12, r13, r14, r15;
	ulong vector, error, ip, cs, flags, sp, ss;
};
#else
struct frame {
	ulong eax, ecx, edx, ebx, esp_unused, ebp, esi, edi;
	ulong vector, error, ip, cs, flags, sp, ss; /* sp/ss only on a privilege change */
};
#endif

/* A hook returns with the frame possibly changed; unhooked vectors print and fail the guest. */
typedef void (*exc_hook_t)(struct frame *f);
extern exc_hook_t exc_hooks[256];

/* Last exception seen by the generic recorder (exc_record). */
extern volatile ulong last_vector, last_error, last_ip, exc_count;
extern volatile ulong skip_len; /* exc_record adds this to the saved IP (0: no change) */
extern volatile ulong resume_ip; /* if set, exc_record resumes there instead (and clears it) */
void exc_record(struct frame *f);

#ifndef __x86_64__
/* Point IDT vector `v` at `handler` through a present DPL-0 32-bit interrupt gate (SDM 6.11). */
void set_intr_gate(u32 v, void *handler);
#endif

#ifdef __x86_64__
/*
 * TRY_EXC(insn, operands...): run one instruction that may fault, with exc_record hooked on the
 * vectors of interest; it resumes at the label after the instruction. last_vector holds the
 * vector taken, or 0xff.
 */
#define TRY_EXC(insn, ...)                                                                  \
	do {                                                                                \
		last_vector = 0xff;                                                         \
		__asm__ volatile("lea 1f(%%rip), %%rax\n\tmov %%rax, %[ri]\n\t" insn "\n1:" \
				 : [ri] "=m"(resume_ip) __VA_ARGS__);                        \
	} while (0)
#endif

static inline void outb(u16 port, u8 v) { __asm__ volatile("outb %0, %1" ::"a"(v), "Nd"(port)); }
static inline u8 inb(u16 port) { u8 v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }

/* Let SSE instructions run (SDM Vol. 3A 13.1.4): CR0.EM = 0, CR0.MP = 1, CR4.OSFXSR and
 * CR4.OSXMMEXCPT (unmasked SIMD exceptions are #XM, not #UD). */
static inline void sse_enable(void)
{
	ulong cr0, cr4;
	__asm__ volatile("mov %%cr0, %0" : "=r"(cr0));
	__asm__ volatile("mov %0, %%cr0" ::"r"((cr0 & ~4UL) | 2UL));
	__asm__ volatile("mov %%cr4, %0" : "=r"(cr4));
	__asm__ volatile("mov %0, %%cr4" ::"r"(cr4 | (1UL << 9) | (1UL << 10)));
}

void putc(char c);
void puts(const char *s);
void puthex(u64 v, int digits);
void putdec(u64 v);
/* "name: hex" line */
void show(const char *name, u64 v);
/* Prints "ok <name>" or "FAIL <name> got <g> want <w>" and counts failures. */
void check(const char *name, u64 got, u64 want);
extern int failures;
__attribute__((noreturn)) void guest_exit(int code);

/* Runs fn(arg) at CPL 3 (64-bit: code 0x2b; 32-bit: code 0x33, DS/ES/SS 0x23) and returns
 * its value. kvm_pvm can run the 64-bit one; the 32-bit one returns through IRET. */
long user_call(long (*fn)(long), long arg);

/* Flags whose value the SDM defines for the ALU group: CF PF AF ZF SF OF. */
#define FL_CF 0x1
#define FL_PF 0x4
#define FL_AF 0x10
#define FL_ZF 0x40
#define FL_SF 0x80
#define FL_OF 0x800
#define FL_DF 0x400
#define FL_STATUS (FL_CF | FL_PF | FL_AF | FL_ZF | FL_SF | FL_OF)

#endif
