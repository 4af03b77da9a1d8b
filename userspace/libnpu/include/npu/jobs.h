/* SPDX-License-Identifier: MIT */
/*
 * GEMM job builder: tiling C[M,N] = A[M,K] x B[K,N] into NPU tasks (each a 1x1 convolution with
 * input W=1, H=M rows, C=K channels and N kernels), and the register-command stream of one task.
 * Pure functions of the shapes and addresses: no device needed (tests and golden files use them).
 * Padding and tiling rules: docs/npu-userspace.md; register values: docs/npu-registers.md.
 */
#ifndef NPU_JOBS_H
#define NPU_JOBS_H

#include <stddef.h>
#include <stdint.h>

#include "npu/npu.h"

#define NPU_CBUF_BANKS 12u
#define NPU_CBUF_BANK_BYTES 32768u
/* Feature rows occupy whole 128-byte CBUF entries, 256 per bank (Mesa rkt_task.c calc_input_banks):
 * more than DATA_ENTRIES' 64-byte units, which both peers write but neither counts banks by. */
#define NPU_CBUF_ENTRY_BYTES 128u
#define NPU_CBUF_ENTRIES_PER_BANK (NPU_CBUF_BANK_BYTES / NPU_CBUF_ENTRY_BYTES)
#define NPU_ATOM_BYTES 16u        /* feature/output memory atom */
#define NPU_K_ALIGN 32u           /* K padded to the 32-channel weight tile in both precisions */
#define NPU_M_ALIGN 4u            /* rows padded so the CNA surface-stride formula is exact */
/* Rows per task: FEATURE_GRAINS = rows + 1 as far as a peer ran it on an RK3588 (mtx512/rk3588-npu
 * meson.build: 544x544x4096 int8, 384x384x4096 fp16); the field itself would take 1022. */
#define NPU_TASK_MAX_ROWS_INT8 544u
#define NPU_TASK_MAX_ROWS_FP16 384u
#define NPU_TASK_WEIGHT_BANKS 5u  /* weight bytes a task may hold (banks); one spare bank kept */
#define NPU_TASK_MAX_K_INT8 4096u /* channels per task (bytes per kernel <= 4 KiB) */
#define NPU_TASK_MAX_K_FP16 2048u
#define NPU_TASK_WORDS 108u       /* register-command words per task, tail included (even) */
#define NPU_REGCMD_ALIGN 64u      /* each task's stream starts 64-byte aligned (Mesa does the same) */
#define NPU_ADDRESS_WINDOW (UINT64_C(1) << 32) /* per-fd NPU address space */

/* Tiling of one weight matrix; depends on N and K only, so weights are laid out once at load. */
struct npu_weight_plan {
	enum npu_precision precision;
	unsigned n, k;          /* logical sizes */
	unsigned np, kp;        /* padded: N to the kernel group (32 int8, 16 fp16), K to 32 */
	unsigned nt, kt;        /* tile sizes (last tile may be smaller, still aligned) */
	unsigned n_tiles, k_tiles;
	int k_grouped;          /* each K tile is a quantization group: partials are scaled, not summed exactly */
	unsigned kernel_group;  /* 32 int8, 16 fp16 */
	unsigned in_bytes;      /* bytes per input element: 1 int8, 2 fp16 */
	unsigned feature_c2;    /* channels per 16-byte feature atom: 16 int8, 8 fp16 */
};

/* Row tiling for one call: depends on M and on the weight plan. */
struct npu_row_plan {
	unsigned m, mp;         /* logical rows, rows padded to NPU_M_ALIGN */
	unsigned mt, m_tiles;   /* rows per task */
};

/* min_n_tiles: split N into at least this many tiles when N allows (one per lane for NPU_PLACE_SPLIT_N). */
NPU_API int npu_plan_weights(enum npu_precision precision, unsigned n, unsigned k, unsigned min_n_tiles,
			     struct npu_weight_plan *plan);
/* k_group (0 = as above): K tiles of exactly k_group channels (a multiple of 32), the groups of group-wise
 * INT8 quantization (npu_weight_options.k_group). */
NPU_API int npu_plan_weights_grouped(enum npu_precision precision, unsigned n, unsigned k, unsigned k_group,
				     unsigned min_n_tiles, struct npu_weight_plan *plan);
NPU_API int npu_plan_rows(const struct npu_weight_plan *weights, unsigned m, struct npu_row_plan *rows);

/* Tile sizes of tile index i (the last one may be short). */
NPU_API unsigned npu_plan_n_tile(const struct npu_weight_plan *plan, unsigned index, unsigned *n0);
NPU_API unsigned npu_plan_k_tile(const struct npu_weight_plan *plan, unsigned index, unsigned *k0);
NPU_API unsigned npu_plan_m_tile(const struct npu_row_plan *plan, unsigned index, unsigned *m0);

/* Bytes of one weight tile in NPU layout, and of the feature map / one output partial. */
NPU_API size_t npu_weight_tile_bytes(const struct npu_weight_plan *plan, unsigned nt, unsigned kt);
NPU_API size_t npu_feature_bytes(const struct npu_weight_plan *weights, const struct npu_row_plan *rows);
NPU_API size_t npu_output_bytes(unsigned mp, unsigned channels); /* int32/fp32 NC1HWC2, C2 = 4 */

/* Geometry and addresses of one task. */
struct npu_task_geometry {
	enum npu_precision precision;
	unsigned mt, nt, kt;        /* rows, kernels, channels of this task */
	unsigned feature_rows;      /* H of the whole feature map (its surface stride), >= mt, % 4 == 0 */
	unsigned output_rows;       /* H of the whole output (its surface stride) */
	uint32_t feature_address;   /* first atom this task reads */
	uint32_t weight_address;    /* the task's weight tile */
	uint32_t output_address;    /* first atom this task writes, 16-byte aligned */
};

/* Rows one task may hold in the given precision (the builder's tiling and the model's check). */
NPU_API unsigned npu_task_max_rows(enum npu_precision precision);
/* CBUF data banks a task of `rows` rows of `row_bytes` bytes needs (whole 128-byte entries per row). */
NPU_API unsigned npu_data_banks(unsigned rows, unsigned row_bytes);

/* Writes the task's NPU_TASK_WORDS words. NPU_ERR_INVALID/LIMIT if the geometry breaks a rule. */
NPU_API int npu_emit_gemm_task(const struct npu_task_geometry *task, uint64_t *words);

static inline uint64_t npu_regcmd_word(uint16_t target, uint16_t reg, uint32_t value)
{
	return ((uint64_t)target << 48) | ((uint64_t)value << 16) | reg;
}

#endif
