/*
 * Stack and far transfers: PUSH/POP in each operand size (and of the stack pointer itself),
 * sign-extended immediates, CALL/RET and RET imm16, ENTER/LEAVE with nesting levels, far CALL
 * and RET through a memory far pointer (32-bit operand size), far JMP (SDM Vol 1 6.2-6.5,
 * Vol 2 "PUSH", "POP", "ENTER", "CALL", "RET", "JMP").
 * 64-bit: the checks run at CPL 3 with the user code selector. (kvm_pvm's ring-0 emulator
 * lacks ENTER with a nesting level, so the 32-bit expectation comes from QEMU.)
 * tskvm-guest: lib=32,64 expect=32:qemu,64:kvm
 */
#include "ref.h"

static struct group g_push, g_callret, g_enter, g_far;
static ulong code_sel(void) { ulong cs; __asm__ volatile("mov %%cs, %0" : "=r"(cs)); return cs & 0xffff; }

/* A far pointer in memory: 32-bit offset then 16-bit selector (m16:32). */
struct farptr { u32 off; u16 sel; } __attribute__((packed));
static struct farptr fp;
static volatile ulong far_rsp_inside, far_ret_seen;

extern char far_target[], far_jmp_target[], far_jmp_back[];
#ifdef __x86_64__
__asm__(".text\nfar_target:\n\tmov %rsp, far_rsp_inside(%rip)\n\tmovq $1, far_ret_seen(%rip)\n\tlretl\n"
	"far_jmp_target:\n\tmovq $2, far_ret_seen(%rip)\n\tjmp far_jmp_back\n");
#else
__asm__(".text\nfar_target:\n\tmov %esp, far_rsp_inside\n\tmovl $1, far_ret_seen\n\tlretl\n"
	"far_jmp_target:\n\tmovl $2, far_ret_seen\n\tjmp far_jmp_back\n");
#endif

static long run(long unused)
{
	(void)unused;
	ulong sp0, sp1, v;
	/* PUSH/POP of the natural size and of 16 bits (operand-size prefix). */
	ulong a = (ulong)0x1122334455667788ull, got;
#ifdef __x86_64__
	__asm__ volatile("mov %%rsp, %[s0]\n\tpushq %[a]\n\tmov %%rsp, %[s1]\n\tpopq %[g]"
			 : [s0] "=&r"(sp0), [s1] "=&r"(sp1), [g] "=&r"(got) : [a] "r"(a) : "memory");
	group_check(&g_push, 64, 0, 0, sp0 - sp1, 8, got, a);
	__asm__ volatile("mov %%rsp, %[s0]\n\tpushw %w[a]\n\tmov %%rsp, %[s1]\n\tpopw %w[g]"
			 : [s0] "=&r"(sp0), [s1] "=&r"(sp1), [g] "=r"(got) : [a] "r"(a), "[g]"(0xffffffffffff0000ull) : "memory");
	group_check(&g_push, 16, 0, 0, sp0 - sp1, 2, got, 0xffffffffffff7788ull);
	/* PUSH RSP pushes the value before the push; POP RSP loads the popped value. */
	__asm__ volatile("push %%rsp\n\tpop %[v]\n\tmov %%rsp, %[s0]" : [v] "=r"(v), [s0] "=r"(sp0) : : "memory");
	group_check(&g_push, 1, 0, 0, v, sp0, 0, 0);
	__asm__ volatile("mov %%rsp, %[s0]\n\tpushq $-3\n\tpopq %[v]" : [s0] "=&r"(sp0), [v] "=r"(v) : : "memory");
	group_check(&g_push, 2, 0, 0, v, (ulong)-3, 0, 0);
	__asm__ volatile("mov %%rsp, %[s0]\n\tlea -64(%%rsp), %[v]\n\tpush %[v]\n\tpop %%rsp\n\tmov %%rsp, %[s1]\n\tmov %[s0], %%rsp"
			 : [s0] "=&r"(sp0), [s1] "=&r"(sp1), [v] "=&r"(v) : : "memory");
	group_check(&g_push, 3, 0, 0, sp0 - sp1, 64, 0, 0);
#else
	__asm__ volatile("mov %%esp, %[s0]\n\tpushl %[a]\n\tmov %%esp, %[s1]\n\tpopl %[g]"
			 : [s0] "=&r"(sp0), [s1] "=&r"(sp1), [g] "=&r"(got) : [a] "r"(a) : "memory");
	group_check(&g_push, 32, 0, 0, sp0 - sp1, 4, got, a);
	__asm__ volatile("mov %%esp, %[s0]\n\tpushw %w[a]\n\tmov %%esp, %[s1]\n\tpopw %w[g]"
			 : [s0] "=&r"(sp0), [s1] "=&r"(sp1), [g] "=r"(got) : [a] "r"(a), "[g]"(0xffff0000u) : "memory");
	group_check(&g_push, 16, 0, 0, sp0 - sp1, 2, got, 0xffff7788u);
	__asm__ volatile("push %%esp\n\tpop %[v]\n\tmov %%esp, %[s0]" : [v] "=r"(v), [s0] "=r"(sp0) : : "memory");
	group_check(&g_push, 1, 0, 0, v, sp0, 0, 0);
	__asm__ volatile("mov %%esp, %[s0]\n\tpushl $-3\n\tpopl %[v]" : [s0] "=&r"(sp0), [v] "=r"(v) : : "memory");
	group_check(&g_push, 2, 0, 0, v, (ulong)-3, 0, 0);
	__asm__ volatile("mov %%esp, %[s0]\n\tlea -64(%%esp), %[v]\n\tpush %[v]\n\tpop %%esp\n\tmov %%esp, %[s1]\n\tmov %[s0], %%esp"
			 : [s0] "=&r"(sp0), [s1] "=&r"(sp1), [v] "=&r"(v) : : "memory");
	group_check(&g_push, 3, 0, 0, sp0 - sp1, 64, 0, 0);
#endif
	/* CALL pushes the return address; RET imm16 also drops imm16 bytes of arguments. */
	ulong ret_addr, after;
#ifdef __x86_64__
	__asm__ volatile("lea 2f(%%rip), %[after]\n\tmov %%rsp, %[s0]\n\tcall 1f\n2:\tjmp 3f\n"
			 "1:\tmov (%%rsp), %[r]\n\tmov %%rsp, %[s1]\n\tret\n3:"
			 : [after] "=&r"(after), [s0] "=&r"(sp0), [s1] "=&r"(sp1), [r] "=&r"(ret_addr) : : "memory");
	group_check(&g_callret, 0, 0, 0, ret_addr, after, sp0 - sp1, 8);
	__asm__ volatile("mov %%rsp, %[s0]\n\tpushq $1\n\tpushq $2\n\tcall 1f\n\tjmp 2f\n1:\tret $16\n2:\tmov %%rsp, %[s1]"
			 : [s0] "=&r"(sp0), [s1] "=&r"(sp1) : : "memory");
	group_check(&g_callret, 1, 0, 0, sp0, sp1, 0, 0);
#else
	__asm__ volatile("mov $2f, %[after]\n\tmov %%esp, %[s0]\n\tcall 1f\n2:\tjmp 3f\n"
			 "1:\tmov (%%esp), %[r]\n\tmov %%esp, %[s1]\n\tret\n3:"
			 : [after] "=&r"(after), [s0] "=&r"(sp0), [s1] "=&r"(sp1), [r] "=&r"(ret_addr) : : "memory");
	group_check(&g_callret, 0, 0, 0, ret_addr, after, sp0 - sp1, 4);
	__asm__ volatile("mov %%esp, %[s0]\n\tpushl $1\n\tpushl $2\n\tcall 1f\n\tjmp 2f\n1:\tret $8\n2:\tmov %%esp, %[s1]"
			 : [s0] "=&r"(sp0), [s1] "=&r"(sp1) : : "memory");
	group_check(&g_callret, 1, 0, 0, sp0, sp1, 0, 0);
#endif
	/* ENTER size, level: push BP, copy level-1 outer frame pointers, push the new frame
	   pointer, reserve size bytes; LEAVE undoes it (SDM Vol 1 6.5). */
	for (unsigned level = 0; level < 4; level++) {
		ulong bp_in, bp_frame, sp_after, copied;
		static ulong display[8] = { 0x1000, 0x2000, 0x3000, 0x4000, 0x5000, 0x6000, 0x7000, 0x8000 };
		ulong W = sizeof(ulong);
		/* BP points just above a fake display of outer frame pointers. */
		bp_in = (ulong)&display[4];
#define ENTER_ASM(lv, SP, BP)                                                                                  \
	__asm__ volatile("push %%" BP "\n\tmov %[bpi], %%" BP "\n\tmov %%" SP ", %[s0]\n\tenter $24, $" #lv "\n\t"   \
			 "mov %%" BP ", %[bf]\n\tmov %%" SP ", %[sa]\n\tmov -" "%c[w]" "(%%" BP "), %[cp]\n\tleave\n\t" \
			 "mov %%" SP ", %[s1]\n\tpop %%" BP                                                      \
			 : [s0] "=&r"(sp0), [s1] "=&r"(sp1), [bf] "=&r"(bp_frame), [sa] "=&r"(sp_after), [cp] "=&r"(copied) \
			 : [bpi] "r"(bp_in), [w] "i"(sizeof(ulong)) : "memory")
#ifdef __x86_64__
		if (level == 0) ENTER_ASM(0, "rsp", "rbp"); else if (level == 1) ENTER_ASM(1, "rsp", "rbp");
		else if (level == 2) ENTER_ASM(2, "rsp", "rbp"); else ENTER_ASM(3, "rsp", "rbp");
#else
		if (level == 0) ENTER_ASM(0, "esp", "ebp"); else if (level == 1) ENTER_ASM(1, "esp", "ebp");
		else if (level == 2) ENTER_ASM(2, "esp", "ebp"); else ENTER_ASM(3, "esp", "ebp");
#endif
		/* frame = sp0 - W (saved BP); then (level-1) copies and the frame pointer itself. */
		ulong frame = sp0 - W;
		ulong extra = level ? level * W : 0;
		group_check(&g_enter, level, 0, 0, bp_frame, frame, sp_after, frame - extra - 24);
		/* level 1: [BP-W] holds the frame pointer; level >= 2: the first outer pointer display[3]. */
		ulong want_copy = level == 0 ? copied : level == 1 ? frame : display[3];
		group_check(&g_enter, level, 1, 0, copied, want_copy, sp1, sp0);
	}
	/* Far CALL through m16:32 to the same code segment, far RET back. */
	fp.off = (u32)(ulong)far_target;
	fp.sel = (u16)code_sel();
	far_ret_seen = 0;
#ifdef __x86_64__
	__asm__ volatile("mov %%rsp, %[s0]\n\tlcall *%[p]\n\tmov %%rsp, %[s1]" : [s0] "=&r"(sp0), [s1] "=&r"(sp1) : [p] "m"(fp) : "memory");
#else
	__asm__ volatile("mov %%esp, %[s0]\n\tlcall *%[p]\n\tmov %%esp, %[s1]" : [s0] "=&r"(sp0), [s1] "=&r"(sp1) : [p] "m"(fp) : "memory");
#endif
	/* 32-bit operand size: CS (in a 4-byte slot) and EIP, 8 bytes (SDM "CALL", far call). */
	group_check(&g_far, 0, 0, 0, far_ret_seen, 1, sp0 - far_rsp_inside, 8);
	group_check(&g_far, 1, 0, 0, sp1, sp0, 0, 0);
	fp.off = (u32)(ulong)far_jmp_target;
	__asm__ volatile("ljmp *%[p]\nfar_jmp_back:" : : [p] "m"(fp) : "memory");
	group_check(&g_far, 2, 0, 0, far_ret_seen, 2, code_sel(), fp.sel);
	return 0;
}

int main(void)
{
	g_push.name = "push/pop";
	g_callret.name = "call/ret";
	g_enter.name = "enter/leave";
	g_far.name = "far call/ret/jmp";
	RUN_CHECKS(run);
	group_print(&g_push);
	group_print(&g_callret);
	group_print(&g_enter);
	group_print(&g_far);
	return 0;
}
