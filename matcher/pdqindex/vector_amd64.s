//go:build amd64 && !purego

#include "textflag.h"

// func pdqRunsAVX512(entries, lo, hi *uint32, nb int, first, idMask uint32, tag uint8, cand *uint32, ct *uint8, nc, limit int) (int, int)
TEXT ·pdqRunsAVX512(SB), NOSPLIT, $0-96
	MOVQ entries+0(FP), SI
	MOVQ lo+8(FP), R8
	MOVQ hi+16(FP), R9
	MOVQ nb+24(FP), R10
	MOVL first+32(FP), AX
	VPBROADCASTD AX, Z1
	MOVL idMask+36(FP), AX
	VPBROADCASTD AX, Z2
	MOVBLZX tag+40(FP), AX
	MOVD AX, X3
	VPBROADCASTB X3, X3
	MOVQ cand+48(FP), DI
	MOVQ ct+56(FP), R11
	MOVQ nc+64(FP), R12
	MOVQ limit+72(FP), R13
	XORQ R14, R14

loop:
	CMPQ R14, R10
	JGE  done
	CMPQ R12, R13
	JGT  done
	MOVL (R8)(R14*4), AX
	MOVL (R9)(R14*4), CX
	SUBL AX, CX
	CMPL CX, $16
	JA   done

	// K1: the bucket's n lanes.
	MOVL $1, DX
	SHLL CX, DX
	DECL DX
	KMOVW DX, K1
	VMOVDQU32.Z (SI)(AX*4), K1, Z0

	// K2: lanes whose entry bits are q's: e-first <= idMask, unsigned.
	VPSUBD Z1, Z0, Z4
	VPCMPUD $2, Z2, Z4, K1, K2
	VPANDD Z2, Z0, Z0
	VPCOMPRESSD.Z Z0, K2, Z5
	VMOVDQU32 Z5, (DI)(R12*4)
	VMOVDQU X3, (R11)(R12*1)
	KMOVW K2, DX
	POPCNTL DX, DX
	ADDQ DX, R12
	INCQ R14
	JMP  loop

done:
	MOVQ R12, ret+80(FP)
	MOVQ R14, ret1+88(FP)
	VZEROUPPER
	RET

// func pdqTakeSplitAVX512(bucket *uint32, n int, qext uint32, idBits uint32, rad uint32, ti uint8, cand *uint32, ct *uint8, nc int, weak *uint32, wt *uint8, nw int) (int, int)
TEXT ·pdqTakeSplitAVX512(SB), NOSPLIT, $0-96
	MOVQ bucket+0(FP), SI
	MOVQ n+8(FP), R10
	MOVL qext+16(FP), AX
	VPBROADCASTD AX, Z1
	MOVL idBits+20(FP), CX
	MOVQ CX, X6
	MOVL $1, AX
	SHLL CX, AX
	DECL AX
	VPBROADCASTD AX, Z2
	MOVL rad+24(FP), AX
	VPBROADCASTD AX, Z7
	MOVBLZX ti+28(FP), AX
	MOVD AX, X3
	VPBROADCASTB X3, X3
	ORL $0x80, AX
	MOVD AX, X8
	VPBROADCASTB X8, X8
	MOVQ cand+32(FP), DI
	MOVQ ct+40(FP), R11
	MOVQ nc+48(FP), R12
	MOVQ weak+56(FP), R8
	MOVQ wt+64(FP), R9
	MOVQ nw+72(FP), R13

loop:
	TESTQ R10, R10
	JLE  done
	// K1: the next min(n, 16) entries.
	MOVQ R10, CX
	CMPQ CX, $16
	JLE  masked
	MOVQ $16, CX

masked:
	MOVL $1, DX
	SHLL CX, DX
	DECL DX
	KMOVW DX, K1
	VMOVDQU32.Z (SI), K1, Z0
	LEAQ (SI)(CX*4), SI
	SUBQ CX, R10

	// Z4: popcount of each entry's bits above the id xor q's.
	VPSRLD X6, Z0, Z4
	VPXORD Z1, Z4, Z4
	VPOPCNTD Z4, Z4
	VPANDD Z2, Z0, Z0
	// K2: strong, nearer than rad; K3: weak, exactly rad.
	VPCMPUD $1, Z7, Z4, K1, K2
	VPCMPUD $0, Z7, Z4, K1, K3

	VPCOMPRESSD.Z Z0, K2, Z5
	KMOVW K2, AX
	POPCNTL AX, AX
	MOVL $1, DX
	MOVL AX, CX
	SHLL CX, DX
	DECL DX
	KMOVW DX, K4
	VMOVDQU32 Z5, K4, (DI)(R12*4)
	VMOVDQU8 X3, K4, (R11)(R12*1)
	ADDQ AX, R12

	VPCOMPRESSD.Z Z0, K3, Z5
	KMOVW K3, AX
	POPCNTL AX, AX
	MOVL $1, DX
	MOVL AX, CX
	SHLL CX, DX
	DECL DX
	KMOVW DX, K4
	VMOVDQU32 Z5, K4, (R8)(R13*4)
	VMOVDQU8 X8, K4, (R9)(R13*1)
	ADDQ AX, R13
	JMP  loop

done:
	MOVQ R12, ret+80(FP)
	MOVQ R13, ret1+88(FP)
	VZEROUPPER
	RET
