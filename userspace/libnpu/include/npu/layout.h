/* SPDX-License-Identifier: MIT */
/*
 * Row-major <-> NPU layouts (docs/npu-userspace.md, "Layouts"):
 *  - feature map NC1HWC2 with W = 1: element (m, k) at byte ((k / C2) * rows + m) * 16 + (k % C2) * bpe,
 *    C2 = 16 (int8) or 8 (fp16); padding rows/channels are zero;
 *  - output NC1HWC2, 4-byte elements, C2 = 4: element (m, n) at ((n / 4) * rows + m) * 16 + (n % 4) * 4;
 *  - weight tile [nt / G][kt / 32][G][32] elements, G = 32 (int8) or 16 (fp16), of the sub-matrix
 *    B[n0 .. n0+nt)[k0 .. k0+kt) (zero beyond the logical N, K).
 * Each has a portable C version and, on aarch64, a NEON one; npu_layout_ops() picks the best.
 */
#ifndef NPU_LAYOUT_H
#define NPU_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#include "npu/export.h"

/* K-tile partial sums of one output: `tiles` NC1HWC2 tensors of 4-byte elements (C2 = 4) with rows_padded
 * rows, tile_bytes apart from src on. */
struct npu_partials {
	const uint8_t *src;
	unsigned tiles;
	size_t tile_bytes;
	unsigned rows, cols, rows_padded;
};

/* Partial t is dequantized with rows[t * row_stride + m] and columns[t * column_stride + c]. */
struct npu_partial_scales {
	const float *rows;
	size_t row_stride;
	const float *columns;
	size_t column_stride;
};

struct npu_layout_ops {
	const char *name;
	/* rows x cols int8 (src stride lda elements) -> feature map of rows_padded x cols_padded */
	void (*feature_from_rows_i8)(uint8_t *dst, const int8_t *src, unsigned rows, unsigned cols, size_t lda,
				     unsigned rows_padded, unsigned cols_padded);
	void (*feature_from_rows_f16)(uint8_t *dst, const uint16_t *src, unsigned rows, unsigned cols, size_t lda,
				      unsigned rows_padded, unsigned cols_padded);
	void (*rows_from_feature_i8)(int8_t *dst, const uint8_t *src, unsigned rows, unsigned cols, size_t ldd,
				     unsigned rows_padded);
	void (*rows_from_feature_f16)(uint16_t *dst, const uint8_t *src, unsigned rows, unsigned cols, size_t ldd,
				      unsigned rows_padded);
	/* output channels [0, p->cols) of p->tiles NC1HWC2 int32/fp32 tensors (K-tile partial sums), summed in
	 * tile order into dst[m * ldd + c]: one pass over C whatever the number of partials */
	void (*rows_from_output_i32)(int32_t *dst, size_t ldd, const struct npu_partials *p);
	void (*rows_from_output_f32)(float *dst, size_t ldd, const struct npu_partials *p);
	/* int32 partials -> f32 rows, the sum over tiles t of (float)acc * row_scale * column_scale: the
	 * dequantization of an INT8 GEMM (per-row activation scale, per-channel weight scale, one pair of
	 * scales per K group, each group its own partial) */
	void (*rows_from_output_i32_scaled)(float *dst, size_t ldd, const struct npu_partials *p,
					    const struct npu_partial_scales *scales);
	void (*quantize_rows_i8)(int8_t *q, float *scales, const float *x, unsigned rows, unsigned cols);
	void (*f32_to_fp16)(uint16_t *dst, const float *src, size_t count);
};

NPU_API const struct npu_layout_ops *npu_layout_ops(void);          /* NEON on aarch64, else portable */
NPU_API const struct npu_layout_ops *npu_layout_ops_portable(void);
NPU_API const struct npu_layout_ops *npu_layout_ops_neon(void);     /* NULL when not built for aarch64 */

/* Weight tiles (once per model load; portable C). b is [n][k] row-major with stride ldb. */
NPU_API void npu_weight_tile_from_rows_i8(int8_t *dst, const int8_t *b, size_t ldb, unsigned n, unsigned k,
					  unsigned n0, unsigned nt, unsigned k0, unsigned kt);
NPU_API void npu_weight_tile_from_rows_f16(uint16_t *dst, const uint16_t *b, size_t ldb, unsigned n, unsigned k,
					   unsigned n0, unsigned nt, unsigned k0, unsigned kt);
/* Inverse (tests, debugging): writes the tile back into b[n0.., k0..] for rows < n, cols < k. */
NPU_API void npu_weight_rows_from_tile_i8(int8_t *b, size_t ldb, const int8_t *tile, unsigned n, unsigned k,
					  unsigned n0, unsigned nt, unsigned k0, unsigned kt);
NPU_API void npu_weight_rows_from_tile_f16(uint16_t *b, size_t ldb, const uint16_t *tile, unsigned n, unsigned k,
					   unsigned n0, unsigned nt, unsigned k0, unsigned kt);

/* Byte offsets inside the layouts (used by the model and the tests). */
static inline size_t npu_feature_offset(unsigned m, unsigned k, unsigned rows, unsigned c2, unsigned bpe)
{
	return ((size_t)(k / c2) * rows + m) * 16u + (size_t)(k % c2) * bpe;
}

static inline size_t npu_output_offset(unsigned m, unsigned n, unsigned rows)
{
	return ((size_t)(n / 4) * rows + m) * 16u + (size_t)(n % 4) * 4u;
}

/* Element index (not bytes) of (n, k) inside a tile of nt x kt with kernel group g. */
static inline size_t npu_weight_index(unsigned n, unsigned k, unsigned kt, unsigned g)
{
	return (size_t)(n / g) * g * kt + (size_t)(k / 32) * g * 32 + (size_t)(n % g) * 32 + (k % 32);
}

#endif
