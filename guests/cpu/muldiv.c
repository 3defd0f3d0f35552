/*
 * MUL, IMUL (one, two and three operands), DIV and IDIV in every operand size, and #DE.
 * Products are checked against C arithmetic with CF = OF = "the high half is significant"
 * (SDM Vol 2A "MUL", "IMUL"); quotients against C division where the dividend fits, and in
 * general by q * d + r == dividend with |r| < |d| and r taking the dividend's sign
 * (Vol 2A "DIV", "IDIV"). Dividing by zero and quotients that overflow raise #DE (vector 0)
 * with the faulting instruction's address and leave RAX/RDX unchanged. SF ZF AF PF after
 * multiplications and all flags after divisions are undefined and not compared.
 * tskvm-guest: lib=32,64 expect=32:qemu,64:kvm
 */
#include "ref.h"

static struct group g_mul[4], g_imul1[4], g_imul2[4], g_div[4], g_idiv[4], g_de;

#define MUL1(name, insn, T, C, LO, HI)                                                      \
	static void name(u64 a, u64 b, u64 *lo, u64 *hi, ulong *fl)                          \
	{                                                                                    \
		T x = (T)a, y = (T)b, h = 0;                                                 \
		ulong f;                                                                     \
		__asm__ volatile(insn " %[y]\n\tpushf\n\tpop %[f]"                           \
				 : LO(x), HI(h), [f] "=&r"(f) : [y] C(y) : "cc");             \
		*lo = (u64)x;                                                                \
		*hi = (u64)h;                                                                \
		*fl = f;                                                                     \
	}
#define LO_A(x) "+a"(x)
#define HI_D(h) "=d"(h)
/* 8-bit forms put the product in AX: AL low, AH high. */
static void mulb(u64 a, u64 b, u64 *lo, u64 *hi, ulong *fl, int sign)
{
	u16 ax = (u8)a;
	u8 y = (u8)b;
	ulong f;
	if (sign)
		__asm__ volatile("imulb %[y]\n\tpushf\n\tpop %[f]" : "+a"(ax), [f] "=&r"(f) : [y] "q"(y) : "cc");
	else
		__asm__ volatile("mulb %[y]\n\tpushf\n\tpop %[f]" : "+a"(ax), [f] "=&r"(f) : [y] "q"(y) : "cc");
	*lo = ax & 0xff;
	*hi = ax >> 8;
	*fl = f;
}
MUL1(mulw, "mulw", u16, "r", LO_A, HI_D)
MUL1(mull, "mull", u32, "r", LO_A, HI_D)
MUL1(imulw, "imulw", u16, "r", LO_A, HI_D)
MUL1(imull, "imull", u32, "r", LO_A, HI_D)
#ifdef __x86_64__
MUL1(mulq, "mulq", u64, "r", LO_A, HI_D)
MUL1(imulq, "imulq", u64, "r", LO_A, HI_D)
#define NSIZES 4
#else
#define NSIZES 3
#endif

static void hw_mul(int s, int sign, u64 a, u64 b, u64 *lo, u64 *hi, ulong *fl)
{
	switch (s) {
	case 0: mulb(a, b, lo, hi, fl, sign); break;
	case 1: (sign ? imulw : mulw)(a, b, lo, hi, fl); break;
	case 2: (sign ? imull : mull)(a, b, lo, hi, fl); break;
#ifdef __x86_64__
	default: (sign ? imulq : mulq)(a, b, lo, hi, fl); break;
#endif
	}
}

static long long sext(u64 v, int bits) { return bits == 64 ? (long long)v : (long long)(v << (64 - bits)) >> (64 - bits); }

/* The full product as (hi, lo) halves of 2*bits. */
static void ref_mul(int bits, int sign, u64 a, u64 b, u64 *lo, u64 *hi)
{
	u64 m = ref_mask(bits);
#ifdef __x86_64__
	if (bits == 64) {
		if (sign) {
			__int128 p = (__int128)(long long)a * (long long)b;
			*lo = (u64)p;
			*hi = (u64)((unsigned __int128)p >> 64);
		} else {
			unsigned __int128 p = (unsigned __int128)a * b;
			*lo = (u64)p;
			*hi = (u64)(p >> 64);
		}
		return;
	}
#endif
	u64 p = sign ? (u64)(sext(a, bits) * sext(b, bits)) : (a & m) * (b & m);
	*lo = p & m;
	*hi = (p >> bits) & m;
}

/* DIV/IDIV: dividend hi:lo, divisor d. Returns the vector raised (0 = #DE) or -1. */
#define DIV1(name, insn, T)                                                                   \
	static long name(u64 hi, u64 lo, u64 d, u64 *q, u64 *r)                               \
	{                                                                                     \
		T x = (T)lo, h = (T)hi, y = (T)d;                                              \
		exc_count = 0;                                                                \
		__asm__ volatile("mov $1f, %[ri]\n\t" insn " %[y]\n1:"                        \
				 : "+a"(x), "+d"(h), [ri] "=m"(resume_ip) : [y] "r"(y) : "cc", "memory"); \
		*q = (u64)x;                                                                  \
		*r = (u64)h;                                                                  \
		return exc_count ? (long)last_vector : -1;                                    \
	}
DIV1(divw, "divw", u16)
DIV1(divl, "divl", u32)
DIV1(idivw, "idivw", u16)
DIV1(idivl, "idivl", u32)
#ifdef __x86_64__
DIV1(divq, "divq", u64)
DIV1(idivq, "idivq", u64)
#endif
static long divb(u64 hi, u64 lo, u64 d, u64 *q, u64 *r, int sign)
{
	u16 ax = (u16)(((hi & 0xff) << 8) | (lo & 0xff));
	u8 y = (u8)d;
	exc_count = 0;
	if (sign)
		__asm__ volatile("mov $1f, %[ri]\n\tidivb %[y]\n1:" : "+a"(ax), [ri] "=m"(resume_ip) : [y] "q"(y) : "cc", "memory");
	else
		__asm__ volatile("mov $1f, %[ri]\n\tdivb %[y]\n1:" : "+a"(ax), [ri] "=m"(resume_ip) : [y] "q"(y) : "cc", "memory");
	*q = ax & 0xff;
	*r = ax >> 8;
	return exc_count ? (long)last_vector : -1;
}

static long hw_div(int s, int sign, u64 hi, u64 lo, u64 d, u64 *q, u64 *r)
{
	switch (s) {
	case 0: return divb(hi, lo, d, q, r, sign);
	case 1: return (sign ? idivw : divw)(hi, lo, d, q, r);
	case 2: return (sign ? idivl : divl)(hi, lo, d, q, r);
#ifdef __x86_64__
	default: return (sign ? idivq : divq)(hi, lo, d, q, r);
#endif
	}
	return -2;
}

/*
 * The SDM's outcome of dividing hi:lo by d: 1 with *q, *r when the quotient fits, 0 for #DE.
 * Checked through multiplication so no double-width division is needed.
 */
static int ref_div_ok(int bits, int sign, u64 hi, u64 lo, u64 d, u64 q, u64 r)
{
	u64 m = ref_mask(bits);
	u64 plo, phi, slo, carry;
	/* q * d + r == hi:lo (in 2*bits, two's complement for IDIV) */
	ref_mul(bits, sign, q, d, &plo, &phi);
	slo = (plo + (r & m)) & m;
	carry = slo < (plo & m) ? 1 : 0;
	u64 rhi = sign && ref_sign(r, bits) ? m : 0; /* sign-extend r into the high half */
	if (slo != (lo & m) || ((phi + carry + rhi) & m) != (hi & m))
		return 0;
	if (!sign)
		return (r & m) < (d & m);
	long long sr = sext(r, bits), sd = sext(d, bits);
	u64 ar = (u64)(sr < 0 ? -sr : sr), ad = (u64)(sd < 0 ? -sd : sd);
	if (ar >= ad)
		return 0;
	return sr == 0 || (sr < 0) == ref_sign(hi, bits);
}

/* Whether the quotient fits: the true quotient bounded by the destination width. */
static int quotient_fits(int bits, int sign, u64 hi, u64 lo, u64 d)
{
	u64 m = ref_mask(bits);
	if ((d & m) == 0)
		return 0;
	if (!sign)
		return (hi & m) < (d & m); /* hi:lo / d < 2^bits */
	/* IDIV: the operands here keep the dividend a sign extension of lo, so C can divide. */
	long long n = sext(lo, bits), dd = sext(d, bits);
	if (dd == -1 && n == sext(1ull << (bits - 1), bits))
		return 0;
#ifdef __x86_64__
	long long qq = n / dd;
#else
	long long qq = (int)n / (int)dd; /* bits <= 32 here, and INT_MIN / -1 was excluded above */
#endif
	return qq >= sext(1ull << (bits - 1), bits) && qq <= (long long)(m >> 1);
}

static long run(long unused)
{
	(void)unused;
	for (int s = 0; s < NSIZES; s++) {
		int bits = 8 << s;
		u64 m = ref_mask(bits);
		for (unsigned i = 0; i < REF_NVALUES; i++)
			for (unsigned j = 0; j < REF_NVALUES; j++) {
				u64 a = ref_values[i], b = ref_values[j], lo, hi, wlo, whi;
				ulong fl;
				for (int sign = 0; sign < 2; sign++) {
					hw_mul(s, sign, a, b, &lo, &hi, &fl);
					ref_mul(bits, sign, a, b, &wlo, &whi);
					int big = sign ? whi != (ref_sign(wlo, bits) ? m : 0) : whi != 0;
					u64 wf = big ? FL_CF | FL_OF : 0;
					group_check(sign ? &g_imul1[s] : &g_mul[s], a, b, 0, lo ^ (hi << 1), wlo ^ (whi << 1),
						    fl & (FL_CF | FL_OF), wf);
				}
				if (s > 0) {
					/* Two-operand IMUL: the low half only; CF = OF = truncation. */
					u64 x = a;
					ulong f;
					if (s == 1) { u16 v = (u16)a; __asm__ volatile("imulw %[y], %[v]\n\tpushf\n\tpop %[f]" : [v] "+r"(v), [f] "=&r"(f) : [y] "r"((u16)b) : "cc"); x = v; }
					else if (s == 2) { u32 v = (u32)a; __asm__ volatile("imull %[y], %[v]\n\tpushf\n\tpop %[f]" : [v] "+r"(v), [f] "=&r"(f) : [y] "r"((u32)b) : "cc"); x = v; }
#ifdef __x86_64__
					else { u64 v = a; __asm__ volatile("imulq %[y], %[v]\n\tpushf\n\tpop %[f]" : [v] "+r"(v), [f] "=&r"(f) : [y] "r"(b) : "cc"); x = v; }
#endif
					ref_mul(bits, 1, a, b, &wlo, &whi);
					int big = whi != (ref_sign(wlo, bits) ? m : 0);
					group_check(&g_imul2[s], a, b, 0, x & m, wlo, f & (FL_CF | FL_OF), big ? FL_CF | FL_OF : 0);
				}
				for (int sign = 0; sign < 2; sign++) {
					/* Dividend: a zero- or sign-extended, or b:a as a double-width value. */
					for (int wide = 0; wide < 2; wide++) {
						u64 dhi = wide ? b & m : (sign && ref_sign(a, bits) ? m : 0);
						u64 d = ref_values[(i + j) % REF_NVALUES];
						u64 q = 0, r = 0;
						long vec = hw_div(s, sign, dhi, a, d, &q, &r);
						struct group *g = sign ? &g_idiv[s] : &g_div[s];
						if (vec >= 0) {
							/* #DE: RAX/RDX keep the dividend. Only predictable when !wide or unsigned. */
							int expect_de = wide && sign ? !ref_div_ok(bits, sign, dhi, a, d, q, r) : !quotient_fits(bits, sign, dhi, a, d);
							group_check(&g_de, dhi, a, d, (u64)vec, 0, (u64)expect_de, 1);
							group_check(&g_de, dhi, a, d, q & m, a & m, r & m, dhi & m);
						} else {
							int ok = ref_div_ok(bits, sign, dhi, a, d, q & m, r & m);
							group_check(g, dhi, a, d, (u64)ok, 1, 0, 0);
							if (!wide || !sign)
								group_check(&g_de, dhi, a, d, (u64)quotient_fits(bits, sign, dhi, a, d), 1, 0, 0);
						}
					}
				}
			}
	}
	return 0;
}

int main(void)
{
	static const char *const names[4][5] = {
		{ "mul/8", "imul/8", "imul2/8", "div/8", "idiv/8" },
		{ "mul/16", "imul/16", "imul2/16", "div/16", "idiv/16" },
		{ "mul/32", "imul/32", "imul2/32", "div/32", "idiv/32" },
		{ "mul/64", "imul/64", "imul2/64", "div/64", "idiv/64" },
	};
	for (int s = 0; s < 4; s++) {
		g_mul[s].name = names[s][0];
		g_imul1[s].name = names[s][1];
		g_imul2[s].name = names[s][2];
		g_div[s].name = names[s][3];
		g_idiv[s].name = names[s][4];
	}
	g_de.name = "#DE on zero divisor and quotient overflow";
	exc_hooks[0] = exc_record;
	RUN_CHECKS(run);
	for (int s = 0; s < NSIZES; s++) {
		group_print(&g_mul[s]);
		group_print(&g_imul1[s]);
		if (s)
			group_print(&g_imul2[s]);
		group_print(&g_div[s]);
		group_print(&g_idiv[s]);
	}
	group_print(&g_de);
	return 0;
}
