/*
 * Shifts and rotates: SHL SHR SAR ROL ROR RCL RCR by CL = 0, 1, 2, 3, 7, width/2 - 1,
 * width/2, width - 2, width - 1 (0 and 1 are special cases; the rest are alike), in every operand
 * size, against the SDM's definitions (Vol 2B "SAL/SAR/SHL/SHR", "RCL/RCR/ROL/ROR"): result,
 * CF, OF for 1-bit counts, SF/ZF/PF for shifts; a zero count changes nothing. AF after a shift
 * and OF after multi-bit counts are undefined and not compared.
 * tskvm-guest: lib=32,64 expect=kvm
 */
#include "ref.h"

enum op { SHL, SHR, SAR, ROL, ROR, RCL, RCR, NOPS };
static const char *const op_names[NOPS] = { "shl", "shr", "sar", "rol", "ror", "rcl", "rcr" };
typedef u64 (*hw_fn)(u64 a, u8 c, ulong fin, ulong *fout);

#define SH(name, insn, T, C)                                                                   \
	static u64 name(u64 a, u8 c, ulong fin, ulong *fout)                                   \
	{                                                                                      \
		T x = (T)a;                                                                    \
		ulong fl;                                                                      \
		__asm__ volatile("push %[fin]\n\tpopf\n\t" insn " %%cl, %[x]\n\tpushf\n\tpop %[fl]" \
				 : [x] "+" C(x), [fl] "=&r"(fl)                                \
				 : "c"(c), [fin] "r"(fin)                                      \
				 : "cc", "memory");                                            \
		*fout = fl;                                                                    \
		return (u64)x;                                                                 \
	}
#define SIZE(s, T, C)                                                                          \
	SH(shl##s, "shl" #s, T, C) SH(shr##s, "shr" #s, T, C) SH(sar##s, "sar" #s, T, C)        \
	SH(rol##s, "rol" #s, T, C) SH(ror##s, "ror" #s, T, C) SH(rcl##s, "rcl" #s, T, C)        \
	SH(rcr##s, "rcr" #s, T, C)                                                             \
	static const hw_fn ops_##s[NOPS] = { shl##s, shr##s, sar##s, rol##s, ror##s, rcl##s, rcr##s };

SIZE(b, u8, "q")
SIZE(w, u16, "r")
SIZE(l, u32, "r")
#ifdef __x86_64__
SIZE(q, u64, "r")
#define NSIZES 4
#else
#define NSIZES 3
#endif

static u64 reference(enum op op, u64 a, unsigned c, ulong fin, int bits, u64 *flags, u64 *undef)
{
	u64 m = ref_mask(bits), r, cf = fin & FL_CF;
	u64 f = fin & FL_STATUS;
	*undef = 0;
	a &= m;
	if (c == 0) {
		*flags = f;
		return a;
	}
	switch (op) {
	case SHL:
		r = (a << c) & m;
		cf = (a >> (bits - c)) & 1;
		f = ref_szp(r, bits) | (cf ? FL_CF : 0) | ((ref_sign(r, bits) ^ cf) ? FL_OF : 0);
		*undef = FL_AF;
		break;
	case SHR:
		r = a >> c;
		cf = (a >> (c - 1)) & 1;
		f = ref_szp(r, bits) | (cf ? FL_CF : 0) | (ref_sign(a, bits) ? FL_OF : 0);
		*undef = FL_AF;
		break;
	case SAR: {
		u64 sx = ref_sign(a, bits) ? a | ~m : a; /* sign-extended to 64 bits */
		r = (u64)((long long)sx >> c) & m;
		cf = (u64)((long long)sx >> (c - 1)) & 1;
		f = ref_szp(r, bits) | (cf ? FL_CF : 0);
		*undef = FL_AF;
		break;
	}
	case ROL:
		r = ((a << c) | (a >> (bits - c))) & m;
		cf = r & 1;
		f = (f & ~(FL_CF | FL_OF)) | (cf ? FL_CF : 0) | ((ref_sign(r, bits) ^ cf) ? FL_OF : 0);
		break;
	case ROR:
		r = ((a >> c) | (a << (bits - c))) & m;
		cf = ref_sign(r, bits);
		f = (f & ~(FL_CF | FL_OF)) | (cf ? FL_CF : 0) |
		    ((ref_sign(r, bits) ^ ref_sign(r, bits - 1)) ? FL_OF : 0);
		break;
	case RCL:
		r = a;
		for (unsigned i = 0; i < c; i++) {
			u64 out = ref_sign(r, bits);
			r = ((r << 1) | cf) & m;
			cf = out;
		}
		f = (f & ~(FL_CF | FL_OF)) | (cf ? FL_CF : 0) | ((ref_sign(r, bits) ^ cf) ? FL_OF : 0);
		break;
	default: /* RCR */
		r = a;
		for (unsigned i = 0; i < c; i++) {
			u64 out = r & 1;
			r = (r >> 1) | (cf << (bits - 1));
			cf = out;
		}
		f = (f & ~(FL_CF | FL_OF)) | (cf ? FL_CF : 0) |
		    ((ref_sign(r, bits) ^ ref_sign(r, bits - 1)) ? FL_OF : 0);
		break;
	}
	if (c != 1)
		*undef |= FL_OF;
	*flags = f;
	return r;
}

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
				for (unsigned ci = 0; ci < 9; ci++)
					for (int k = 0; k < 2; k++) {
						const unsigned counts[9] = { 0, 1, 2, 3, 7, (unsigned)bits / 2 - 1,
							(unsigned)bits / 2, (unsigned)bits - 2, (unsigned)bits - 1 };
						unsigned c = counts[ci];
						u64 a = ref_values[i];
						ulong fin = 0x202 | (k ? FL_STATUS : 0);
						ulong fl;
						u64 got = tables[s][op](a, (u8)c, fin, &fl) & ref_mask(bits);
						u64 wantf, undef;
						u64 want = reference((enum op)op, a, c, fin, bits, &wantf, &undef);
						u64 mask = FL_STATUS & ~undef;
						group_check(g, a, c, (u64)k, got, want, fl & mask, wantf & mask);
					}
		}
	}
	return 0;
}

int main(void)
{
	return run_sized_groups(&groups[0][0], NSIZES, NOPS, op_names, run);
}
