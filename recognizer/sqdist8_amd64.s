//go:build amd64 && !purego

#include "textflag.h"

// One row's share of one 16-byte chunk: sign-extend the 16 int8 codes to
// int16, subtract the query's 16 codes (Y15; |difference| <= 254 fits int16),
// and square-and-pair-add into 8 int32 lanes (VPMADDWD: at most 2*254^2 per
// lane per chunk, 8 chunks, far from overflow). FIRST starts the row's
// accumulator, NEXT adds to it.
#define FIRST(off, acc) \
	VPMOVSXBW off(DI), Y8; \
	VPSUBW    Y15, Y8, Y8; \
	VPMADDWD  Y8, Y8, acc

#define NEXT(off, acc) \
	VPMOVSXBW off(DI), Y8; \
	VPSUBW    Y15, Y8, Y8; \
	VPMADDWD  Y8, Y8, Y8; \
	VPADDD    Y8, acc, acc

// prefetchAhead is how far ahead of the block being computed its lines are
// requested. Without it the hardware prefetcher alone left the loads and the
// arithmetic mostly serialised (the scan took about the sum of the L1-resident
// compute time and the plain streaming time, not the larger of the two);
// 1-8 KiB all reached the streaming floor on the loaded test machine.
#define prefetchAhead 2048

// func sqDists8AVX2(q *int16, rows *int8, out *int32, blocks int) int32
//
// Exact int32 squared distances between the query's 128 int16 codes and
// blocks*8 rows of 128 int8 codes; returns the smallest (MaxInt32 when
// blocks is 0), so the caller can skip a block in which no row is close.
// Eight rows at a time, chunk-major: the query's chunk c (32 bytes) is loaded
// once and applied to the same chunk of the 8 rows, each row accumulating in
// its own register (Y0-Y7). The 8 accumulators are then reduced together with
// VPHADDD + VPERM2I128, so no row pays a horizontal sum of its own, and the 8
// results are stored with one 32-byte move. Memory is read once: 1 KiB per
// block, the 16 lines of a block 2 KiB ahead requested at its start.
TEXT ·sqDists8AVX2(SB), NOSPLIT, $0-36
	MOVQ q+0(FP), SI
	MOVQ rows+8(FP), DI
	MOVQ out+16(FP), DX
	MOVQ blocks+24(FP), CX
	MOVL $0x7fffffff, AX
	MOVL AX, X14
	VPBROADCASTD X14, Y14 // running minimum of the results
	TESTQ CX, CX
	JLE done
loop:
	PREFETCHT0 (prefetchAhead+0)(DI)
	PREFETCHT0 (prefetchAhead+64)(DI)
	PREFETCHT0 (prefetchAhead+128)(DI)
	PREFETCHT0 (prefetchAhead+192)(DI)
	PREFETCHT0 (prefetchAhead+256)(DI)
	PREFETCHT0 (prefetchAhead+320)(DI)
	PREFETCHT0 (prefetchAhead+384)(DI)
	PREFETCHT0 (prefetchAhead+448)(DI)
	PREFETCHT0 (prefetchAhead+512)(DI)
	PREFETCHT0 (prefetchAhead+576)(DI)
	PREFETCHT0 (prefetchAhead+640)(DI)
	PREFETCHT0 (prefetchAhead+704)(DI)
	PREFETCHT0 (prefetchAhead+768)(DI)
	PREFETCHT0 (prefetchAhead+832)(DI)
	PREFETCHT0 (prefetchAhead+896)(DI)
	PREFETCHT0 (prefetchAhead+960)(DI)
	VMOVDQU 0(SI), Y15
	FIRST(0, Y0)
	FIRST(128, Y1)
	FIRST(256, Y2)
	FIRST(384, Y3)
	FIRST(512, Y4)
	FIRST(640, Y5)
	FIRST(768, Y6)
	FIRST(896, Y7)
	VMOVDQU 32(SI), Y15
	NEXT(16, Y0)
	NEXT(144, Y1)
	NEXT(272, Y2)
	NEXT(400, Y3)
	NEXT(528, Y4)
	NEXT(656, Y5)
	NEXT(784, Y6)
	NEXT(912, Y7)
	VMOVDQU 64(SI), Y15
	NEXT(32, Y0)
	NEXT(160, Y1)
	NEXT(288, Y2)
	NEXT(416, Y3)
	NEXT(544, Y4)
	NEXT(672, Y5)
	NEXT(800, Y6)
	NEXT(928, Y7)
	VMOVDQU 96(SI), Y15
	NEXT(48, Y0)
	NEXT(176, Y1)
	NEXT(304, Y2)
	NEXT(432, Y3)
	NEXT(560, Y4)
	NEXT(688, Y5)
	NEXT(816, Y6)
	NEXT(944, Y7)
	VMOVDQU 128(SI), Y15
	NEXT(64, Y0)
	NEXT(192, Y1)
	NEXT(320, Y2)
	NEXT(448, Y3)
	NEXT(576, Y4)
	NEXT(704, Y5)
	NEXT(832, Y6)
	NEXT(960, Y7)
	VMOVDQU 160(SI), Y15
	NEXT(80, Y0)
	NEXT(208, Y1)
	NEXT(336, Y2)
	NEXT(464, Y3)
	NEXT(592, Y4)
	NEXT(720, Y5)
	NEXT(848, Y6)
	NEXT(976, Y7)
	VMOVDQU 192(SI), Y15
	NEXT(96, Y0)
	NEXT(224, Y1)
	NEXT(352, Y2)
	NEXT(480, Y3)
	NEXT(608, Y4)
	NEXT(736, Y5)
	NEXT(864, Y6)
	NEXT(992, Y7)
	VMOVDQU 224(SI), Y15
	NEXT(112, Y0)
	NEXT(240, Y1)
	NEXT(368, Y2)
	NEXT(496, Y3)
	NEXT(624, Y4)
	NEXT(752, Y5)
	NEXT(880, Y6)
	NEXT(1008, Y7)
	// Y0..Y7 hold 8 int32 partial sums per row; reduce to one sum per row.
	VPHADDD Y1, Y0, Y0 // [r0 r0 r1 r1 | r0 r0 r1 r1]
	VPHADDD Y3, Y2, Y2 // [r2 r2 r3 r3 | r2 r2 r3 r3]
	VPHADDD Y5, Y4, Y4
	VPHADDD Y7, Y6, Y6
	VPHADDD Y2, Y0, Y0 // [r0 r1 r2 r3 | r0 r1 r2 r3] (each row's low, high lanes)
	VPHADDD Y6, Y4, Y4 // [r4 r5 r6 r7 | r4 r5 r6 r7]
	VPERM2I128 $0x20, Y4, Y0, Y1 // low lanes:  [r0 r1 r2 r3 | r4 r5 r6 r7]
	VPERM2I128 $0x31, Y4, Y0, Y2 // high lanes: [r0 r1 r2 r3 | r4 r5 r6 r7]
	VPADDD Y2, Y1, Y1
	VMOVDQU Y1, (DX)
	VPMINSD Y1, Y14, Y14
	ADDQ $1024, DI
	ADDQ $32, DX
	DECQ CX
	JNZ loop
	// Horizontal minimum of Y14.
	VEXTRACTI128 $1, Y14, X1
	VPMINSD X1, X14, X14
	VPSHUFD $0x4e, X14, X1
	VPMINSD X1, X14, X14
	VPSHUFD $0xb1, X14, X1
	VPMINSD X1, X14, X14
	VMOVD X14, AX
	VZEROUPPER
done:
	MOVL AX, ret+32(FP)
	RET
