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
	/* output channels [0, cols) of an NC1HWC2 int32/fp32 tensor with rows_padded rows, written to
	 * dst[m * ldd + col0 + c]; accumulate != 0 adds instead of storing (K-tile partial sums) */
	void (*rows_from_output_i32)(int32_t *dst, const uint8_t *src, unsigned rows, unsigned cols, size_t ldd,
				     unsigned rows_padded, int accumulate);
	void (*rows_from_output_f32)(float *dst, const uint8_t *src, unsigned rows, unsigned cols, size_t ldd,
				     unsigned rows_padded, int accumulate);
	/* int32 NC1HWC2 -> f32 rows, (float)acc * row_scales[m] * column_scales[c]: the dequantization of
	 * an INT8 GEMM (per-row activation scale, per-channel weight scale). accumulate adds, so a
	 * per-group scheme calls it once per K group with that group's column scales. */
	void (*rows_from_output_i32_scaled)(float *dst, const uint8_t *src, unsigned rows, unsigned cols, size_t ldd,
					    unsigned rows_padded, const float *row_scales, const float *column_scales,
					    int accumulate);
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
