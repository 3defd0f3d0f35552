/* Branchy freestanding C at CPL 3: a register-machine bytecode interpreter (switch dispatch)
 * running a Collatz-steps program, so the host sees data-dependent branches and an indirect
 * jump per bytecode. The unit is one interpreted bytecode.
 * tskvm-guest: lib=64 mem=0x800000 expect=kvm */
#include "bench.h"

enum { OP_LI, OP_MOV, OP_ADD, OP_ADDI, OP_MULI, OP_SHRI, OP_ANDI, OP_JZ, OP_JNZ, OP_JNE, OP_JMP, OP_HALT };

struct insn {
	u8 op, a, b, c; /* c: register or small immediate */
	int imm;        /* immediate or jump target */
};

/* r0 = n, r1 = x, r2 = steps total, r3 = tmp, r4 = limit, r5 = 1 */
static const struct insn prog[] = {
	/* 0 */ { OP_LI, 0, 0, 0, 1 },
	/* 1 */ { OP_LI, 2, 0, 0, 0 },
	/* 2 */ { OP_LI, 5, 0, 0, 1 },
	/* 3 loop_n: */ { OP_MOV, 1, 0, 0, 0 },
	/* 4 loop_x: */ { OP_JNE, 1, 5, 0, 6 },
	/* 5 */ { OP_JMP, 0, 0, 0, 13 },
	/* 6 */ { OP_ANDI, 3, 1, 0, 1 },
	/* 7 */ { OP_JZ, 3, 0, 0, 10 },
	/* 8 */ { OP_MULI, 1, 1, 0, 3 },
	/* 9 */ { OP_ADDI, 1, 1, 0, 1 },  /* falls into the even case: (3x+1) is even */
	/* 10 */ { OP_SHRI, 1, 1, 0, 1 },
	/* 11 */ { OP_ADDI, 2, 2, 0, 1 },
	/* 12 */ { OP_JMP, 0, 0, 0, 4 },
	/* 13 */ { OP_ADDI, 0, 0, 0, 1 },
	/* 14 */ { OP_JNE, 0, 4, 0, 3 },
	/* 15 */ { OP_HALT, 0, 0, 0, 0 },
};

static u64 executed;

static long interp(long limit)
{
	ulong r[8] = { 0, 0, 0, 0, (ulong)limit, 0, 0, 0 };
	const struct insn *pc = prog;
	u64 n = 0;
	for (;;) {
		const struct insn *i = pc++;
		n++;
		switch (i->op) {
		case OP_LI: r[i->a] = (ulong)i->imm; break;
		case OP_MOV: r[i->a] = r[i->b]; break;
		case OP_ADD: r[i->a] = r[i->b] + r[i->c]; break;
		case OP_ADDI: r[i->a] = r[i->b] + (ulong)i->imm; break;
		case OP_MULI: r[i->a] = r[i->b] * (ulong)i->imm; break;
		case OP_SHRI: r[i->a] = r[i->b] >> i->imm; break;
		case OP_ANDI: r[i->a] = r[i->b] & (ulong)i->imm; break;
		case OP_JZ: if (r[i->a] == 0) pc = prog + i->imm; break;
		case OP_JNZ: if (r[i->a] != 0) pc = prog + i->imm; break;
		case OP_JNE: if (r[i->a] != r[i->b]) pc = prog + i->imm; break;
		case OP_JMP: pc = prog + i->imm; break;
		default: executed = n; return (long)r[2];
		}
	}
}

int main(void)
{
	u64 limit = 2000 * SCALE + 1;
	begin("branchy");
	long steps = user_call(interp, (long)limit);
	end("branchy");
	kv("units", executed);
	kvs("unit", "bytecode");
	kv("check", (u64)steps);
	putc('\n');
	return 0;
}
