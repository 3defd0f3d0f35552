/*
 * ALU and flags: ADD ADC SUB SBB CMP AND OR XOR TEST INC DEC NEG NOT in every operand size,
 * over edge-case operands (both carry-in values where CF matters), against the SDM's definitions (ref.h).
 * Flags the SDM leaves undefined (AF after logic ops) are not compared.
 * 64-bit: the checks run at CPL 3.
 * tskvm-guest: lib=32,64 expect=kvm
 */
#include "ref.h"

enum op { ADD, ADC, SUB, SBB, CMP, AND, OR, XOR, TEST, INC, DEC, NEG, NOT, NOPS };
static const char *const op_names[NOPS] = {
	"add", "adc", "sub", "sbb", "cmp", "and", "or", "xor", "test", "inc", "dec", "neg", "not",
};

typedef u64 (*hw_fn)(u64 a, u64 b, ulong fin, ulong *fout);

#define BIN(name, insn, T, C)                                                                 \
	static u64 name(u64 a, u64 b, ulong fin, ulong *fout)                                 \
	{                                                                                     \
		T x = (T)a, y = (T)b;                                                         \
		ulong fl;                                                                     \
		__asm__ volatile("push %[fin]\n\tpopf\n\t" insn " %[y], %[x]\n\tpushf\n\tpop %[fl]" \
				 : [x] "+" C(x), [fl] "=&r"(fl)                               \
				 : [y] C(y), [fin] "r"(fin)                                   \
				 : "cc", "memory");                                           \
		*fout = fl;                                                                   \
		return (u64)x;                                                                \
	}
#define UN(name, insn, T, C)                                                                  \
	static u64 name(u64 a, u64 b, ulong fin, ulong *fout)                                 \
	{                                                                                     \
		(void)b;                                                                      \
		T x = (T)a;                                                                   \
		ulong fl;                                                                     \
		__asm__ volatile("push %[fin]\n\tpopf\n\t" insn " %[x]\n\tpushf\n\tpop %[fl]"    \
				 : [x] "+" C(x), [fl] "=&r"(fl)                               \
				 : [fin] "r"(fin)                                             \
				 : "cc", "memory");                                           \
		*fout = fl;                                                                   \
		return (u64)x;                                                                \
	}

#define SIZE(s, T, C)                                                     \
	BIN(add##s, "add" #s, T, C) BIN(adc##s, "adc" #s, T, C)           \
	BIN(sub##s, "sub" #s, T, C) BIN(sbb##s, "sbb" #s, T, C)           \
	BIN(cmp##s, "cmp" #s, T, C) BIN(and##s, "and" #s, T, C)           \
	BIN(or##s, "or" #s, T, C) BIN(xor##s, "xor" #s, T, C)             \
	BIN(test##s, "test" #s, T, C) UN(inc##s, "inc" #s, T, C)          \
	UN(dec##s, "dec" #s, T, C) UN(neg##s, "neg" #s, T, C)             \
	UN(not##s, "not" #s, T, C)                                        \
	static const hw_fn ops_##s[NOPS] = { add##s, adc##s, sub##s, sbb##s, cmp##s, and##s, or##s, \
		xor##s, test##s, inc##s, dec##s, neg##s, not##s };

SIZE(b, u8, "q")
SIZE(w, u16, "r")
SIZE(l, u32, "r")
#ifdef __x86_64__
SIZE(q, u64, "r")
#endif

/* The SDM's result and defined flags; *undef gets the flags it leaves undefined. */
static u64 reference(enum op op, u64 a, u64 b, int cf, int bits, u64 *flags, u64 *undef)
{
	u64 m = ref_mask(bits), r = 0, f = 0;
	*undef = 0;
	switch (op) {
	case ADD: r = ref_add(a, b, 0, bits, &f); break;
	case ADC: r = ref_add(a, b, cf, bits, &f); break;
	case SUB: r = ref_sub(a, b, 0, bits, &f); break;
	case SBB: r = ref_sub(a, b, cf, bits, &f); break;
	case CMP: ref_sub(a, b, 0, bits, &f); r = a & m; break;
	case AND: case OR: case XOR: case TEST:
		r = op == AND || op == TEST ? a & b : op == OR ? a | b : a ^ b;
		r &= m;
		f = ref_szp(r, bits);
		*undef = FL_AF;
		if (op == TEST) r = a & m;
		break;
	case INC: r = ref_add(a, 1, 0, bits, &f); f = (f & ~FL_CF) | (cf ? FL_CF : 0); break;
	case DEC: r = ref_sub(a, 1, 0, bits, &f); f = (f & ~FL_CF) | (cf ? FL_CF : 0); break;
	case NEG: r = ref_sub(0, a, 0, bits, &f); break;
	case NOT: r = ~a & m; f = cf ? FL_CF : 0; break; /* flags unchanged: only CF was set */
	default: break;
	}
	*flags = f;
	return r;
}

#ifdef __x86_64__
#define NSIZES 4
#else
#define NSIZES 3
#endif
static struct group groups[NSIZES][NOPS];

static long run(long unused)
{
	(void)unused;
	static const hw_fn *const tables[4] = {
		ops_b, ops_w, ops_l,
#ifdef __x86_64__
		ops_q,
#endif
	};
	for (int s = 0; s < NSIZES; s++) {
		int bits = 8 << s;
		for (int op = 0; op < NOPS; op++) {
			struct group *g = &groups[s][op];
			for (unsigned i = 0; i < REF_NVALUES; i++)
				for (unsigned j = 0; j < REF_NVALUES; j++)
					/* Both carry-ins only where the result or flags depend on CF. */
					for (int cf = 0; cf < (op == ADC || op == SBB || op == INC || op == DEC || op == NOT ? 2 : 1); cf++) {
						u64 a = ref_values[i], b = ref_values[j];
						ulong fl;
						u64 got = tables[s][op](a, b, 0x202 | (ulong)cf, &fl) & ref_mask(bits);
						u64 wantf, undef;
						u64 want = reference((enum op)op, a, b, cf, bits, &wantf, &undef);
						u64 cmpmask = FL_STATUS & ~undef;
						group_check(g, a, b, (u64)cf, got, want, fl & cmpmask, wantf & cmpmask);
					}
		}
	}
	return 0;
}

int main(void)
{
	return run_sized_groups(&groups[0][0], NSIZES, NOPS, op_names, run);
}
