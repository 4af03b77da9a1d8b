/* SPDX-License-Identifier: MIT */
/* The NEON layout converters of aarch64 (built only there): the same results as layout.c's portable
 * ones, bit for bit, which they fall back to for partial atoms and padding. */
#include <arm_neon.h>

#include "layout_internal.h"
#include "npu_internal.h"


/* Full 16-byte atoms move with one load/store each; the partial last group and the padding
 * fall back to the portable code so the results stay identical. */
static void feature_from_rows_i8_neon(uint8_t *dst, const int8_t *src, unsigned rows, unsigned cols, size_t lda,
				      unsigned rows_padded, unsigned cols_padded)
{
	unsigned full_groups = cols / 16;
	unsigned groups = cols_padded / 16;
	for (unsigned g = 0; g < full_groups; g++) {
		uint8_t *surface = dst + (size_t)g * rows_padded * 16;
		const int8_t *column = src + (size_t)g * 16;
		unsigned m = 0;
		for (; m + 4 <= rows; m += 4) {
			int8x16_t a = vld1q_s8(column + (size_t)m * lda);
			int8x16_t b = vld1q_s8(column + (size_t)(m + 1) * lda);
			int8x16_t c = vld1q_s8(column + (size_t)(m + 2) * lda);
			int8x16_t d = vld1q_s8(column + (size_t)(m + 3) * lda);
			vst1q_s8((int8_t *)(surface + (size_t)m * 16), a);
			vst1q_s8((int8_t *)(surface + (size_t)m * 16 + 16), b);
			vst1q_s8((int8_t *)(surface + (size_t)m * 16 + 32), c);
			vst1q_s8((int8_t *)(surface + (size_t)m * 16 + 48), d);
		}
		for (; m < rows; m++)
			vst1q_s8((int8_t *)(surface + (size_t)m * 16), vld1q_s8(column + (size_t)m * lda));
		memset(surface + (size_t)rows * 16, 0, (size_t)(rows_padded - rows) * 16);
	}
	if (full_groups < groups) {
		uint8_t *rest = dst + (size_t)full_groups * rows_padded * 16;
		feature_from_rows_i8_c(rest, src + (size_t)full_groups * 16, rows, cols - full_groups * 16, lda,
				       rows_padded, cols_padded - full_groups * 16);
	}
}

static void feature_from_rows_f16_neon(uint8_t *dst, const uint16_t *src, unsigned rows, unsigned cols, size_t lda,
				       unsigned rows_padded, unsigned cols_padded)
{
	unsigned full_groups = cols / 8;
	unsigned groups = cols_padded / 8;
	for (unsigned g = 0; g < full_groups; g++) {
		uint8_t *surface = dst + (size_t)g * rows_padded * 16;
		const uint16_t *column = src + (size_t)g * 8;
		for (unsigned m = 0; m < rows; m++)
			vst1q_u16((uint16_t *)(void *)(surface + (size_t)m * 16), vld1q_u16(column + (size_t)m * lda));
		memset(surface + (size_t)rows * 16, 0, (size_t)(rows_padded - rows) * 16);
	}
	if (full_groups < groups) {
		uint8_t *rest = dst + (size_t)full_groups * rows_padded * 16;
		feature_from_rows_f16_c(rest, src + (size_t)full_groups * 8, rows, cols - full_groups * 8, lda,
					rows_padded, cols_padded - full_groups * 8);
	}
}

static void rows_from_feature_i8_neon(int8_t *dst, const uint8_t *src, unsigned rows, unsigned cols, size_t ldd,
				      unsigned rows_padded)
{
	unsigned full_groups = cols / 16;
	for (unsigned g = 0; g < full_groups; g++) {
		const uint8_t *surface = src + (size_t)g * rows_padded * 16;
		for (unsigned m = 0; m < rows; m++)
			vst1q_s8(dst + (size_t)m * ldd + g * 16, vld1q_s8((const int8_t *)(surface + (size_t)m * 16)));
	}
	if (full_groups * 16 < cols)
		rows_from_feature_i8_c(dst + full_groups * 16, src + (size_t)full_groups * rows_padded * 16, rows,
				       cols - full_groups * 16, ldd, rows_padded);
}

static void rows_from_feature_f16_neon(uint16_t *dst, const uint8_t *src, unsigned rows, unsigned cols, size_t ldd,
				       unsigned rows_padded)
{
	unsigned full_groups = cols / 8;
	for (unsigned g = 0; g < full_groups; g++) {
		const uint8_t *surface = src + (size_t)g * rows_padded * 16;
		for (unsigned m = 0; m < rows; m++)
			vst1q_u16(dst + (size_t)m * ldd + g * 8,
				  vld1q_u16((const uint16_t *)(const void *)(surface + (size_t)m * 16)));
	}
	if (full_groups * 8 < cols)
		rows_from_feature_f16_c(dst + full_groups * 8, src + (size_t)full_groups * rows_padded * 16, rows,
					cols - full_groups * 8, ldd, rows_padded);
}

static const int32_t *int32_atom(const uint8_t *at)
{
	return (const int32_t *)(const void *)at;
}

static const float *float_atom(const uint8_t *at)
{
	return (const float *)(const void *)at;
}

static void rows_from_output_i32_neon(int32_t *dst, size_t ldd, const struct npu_partials *p)
{
	unsigned full_groups = p->cols / 4;
	for (unsigned g = 0; g < full_groups; g++) {
		const uint8_t *surface = p->src + (size_t)g * p->rows_padded * 16;
		for (unsigned m0 = 0; m0 < p->rows; m0 += NPU_GATHER_ROWS) {
			unsigned count = p->rows - m0 < NPU_GATHER_ROWS ? p->rows - m0 : NPU_GATHER_ROWS;
			int32x4_t sum[NPU_GATHER_ROWS];
			for (unsigned m = 0; m < count; m++)
				sum[m] = vdupq_n_s32(0);
			for (unsigned t = 0; t < p->tiles; t++) {
				const uint8_t *block = surface + t * p->tile_bytes + (size_t)m0 * 16;
				for (unsigned m = 0; m < count; m++)
					sum[m] = vaddq_s32(sum[m], vld1q_s32(int32_atom(block + (size_t)m * 16)));
			}
			for (unsigned m = 0; m < count; m++)
				vst1q_s32(dst + (size_t)(m0 + m) * ldd + g * 4, sum[m]);
		}
	}
	if (full_groups * 4 < p->cols) {
		struct npu_partials rest = npu_partials_from(p, full_groups * 4);
		rows_from_output_i32_c(dst + full_groups * 4, ldd, &rest);
	}
}

static void rows_from_output_f32_neon(float *dst, size_t ldd, const struct npu_partials *p)
{
	unsigned full_groups = p->cols / 4;
	for (unsigned g = 0; g < full_groups; g++) {
		const uint8_t *surface = p->src + (size_t)g * p->rows_padded * 16;
		for (unsigned m0 = 0; m0 < p->rows; m0 += NPU_GATHER_ROWS) {
			unsigned count = p->rows - m0 < NPU_GATHER_ROWS ? p->rows - m0 : NPU_GATHER_ROWS;
			float32x4_t sum[NPU_GATHER_ROWS];
			for (unsigned m = 0; m < count; m++)
				sum[m] = vld1q_f32(float_atom(surface + (size_t)(m0 + m) * 16));
			for (unsigned t = 1; t < p->tiles; t++) {
				const uint8_t *block = surface + t * p->tile_bytes + (size_t)m0 * 16;
				for (unsigned m = 0; m < count; m++)
					sum[m] = vaddq_f32(sum[m], vld1q_f32(float_atom(block + (size_t)m * 16)));
			}
			for (unsigned m = 0; m < count; m++)
				vst1q_f32(dst + (size_t)(m0 + m) * ldd + g * 4, sum[m]);
		}
	}
	if (full_groups * 4 < p->cols) {
		struct npu_partials rest = npu_partials_from(p, full_groups * 4);
		rows_from_output_f32_c(dst + full_groups * 4, ldd, &rest);
	}
}

static void rows_from_output_i32_scaled_neon(float *dst, size_t ldd, const struct npu_partials *p,
					     const struct npu_partial_scales *scales)
{
	unsigned full_groups = p->cols / 4;
	for (unsigned g = 0; g < full_groups; g++) {
		const uint8_t *surface = p->src + (size_t)g * p->rows_padded * 16;
		for (unsigned m0 = 0; m0 < p->rows; m0 += NPU_GATHER_ROWS) {
			unsigned count = p->rows - m0 < NPU_GATHER_ROWS ? p->rows - m0 : NPU_GATHER_ROWS;
			float32x4_t sum[NPU_GATHER_ROWS];
			for (unsigned t = 0; t < p->tiles; t++) {
				const uint8_t *block = surface + t * p->tile_bytes + (size_t)m0 * 16;
				const float *rows = scales->rows + t * scales->row_stride + m0;
				float32x4_t column = vld1q_f32(scales->columns + t * scales->column_stride + g * 4);
				for (unsigned m = 0; m < count; m++) {
					/* same order as the C version: (acc * row) * column, the first partial stored */
					float32x4_t atom = vcvtq_f32_s32(vld1q_s32(int32_atom(block + (size_t)m * 16)));
					float32x4_t value = vmulq_f32(vmulq_n_f32(atom, rows[m]), column);
					sum[m] = t ? vaddq_f32(sum[m], value) : value;
				}
			}
			for (unsigned m = 0; m < count; m++)
				vst1q_f32(dst + (size_t)(m0 + m) * ldd + g * 4, sum[m]);
		}
	}
	if (full_groups * 4 < p->cols) {
		struct npu_partials rest = npu_partials_from(p, full_groups * 4);
		struct npu_partial_scales rest_scales = *scales;
		rest_scales.columns += full_groups * 4;
		rows_from_output_i32_scaled_c(dst + full_groups * 4, ldd, &rest, &rest_scales);
	}
}

static void quantize_rows_i8_neon(int8_t *q, float *scales, const float *x, unsigned rows, unsigned cols)
{
	for (unsigned m = 0; m < rows; m++) {
		const float *row = x + (size_t)m * cols;
		int8_t *out = q + (size_t)m * cols;
		float32x4_t vmax = vdupq_n_f32(0.0f);
		unsigned c = 0;
		for (; c + 4 <= cols; c += 4)
			vmax = vmaxq_f32(vmax, vabsq_f32(vld1q_f32(row + c)));
		float absmax = vmaxvq_f32(vmax);
		for (; c < cols; c++)
			absmax = max_magnitude(absmax, row[c]);
		if (quantize_nonfinite_row(out, &scales[m], absmax, cols))
			continue;
		float inverse = absmax > 0.0f ? 127.0f / absmax : 0.0f;
		scales[m] = absmax / 127.0f;
		float32x4_t vinv = vdupq_n_f32(inverse);
		int32x4_t lo = vdupq_n_s32(-127), hi = vdupq_n_s32(127);
		c = 0;
		for (; c + 16 <= cols; c += 16) {
			int32x4_t a = vcvtnq_s32_f32(vmulq_f32(vld1q_f32(row + c), vinv));
			int32x4_t b = vcvtnq_s32_f32(vmulq_f32(vld1q_f32(row + c + 4), vinv));
			int32x4_t d = vcvtnq_s32_f32(vmulq_f32(vld1q_f32(row + c + 8), vinv));
			int32x4_t e = vcvtnq_s32_f32(vmulq_f32(vld1q_f32(row + c + 12), vinv));
			a = vminq_s32(vmaxq_s32(a, lo), hi);
			b = vminq_s32(vmaxq_s32(b, lo), hi);
			d = vminq_s32(vmaxq_s32(d, lo), hi);
			e = vminq_s32(vmaxq_s32(e, lo), hi);
			int16x8_t ab = vcombine_s16(vmovn_s32(a), vmovn_s32(b));
			int16x8_t de = vcombine_s16(vmovn_s32(d), vmovn_s32(e));
			vst1q_s8(out + c, vcombine_s8(vmovn_s16(ab), vmovn_s16(de)));
		}
		for (; c < cols; c++)
			out[c] = quantize_one(row[c], inverse);
	}
}

static void f32_to_fp16_neon(uint16_t *dst, const float *src, size_t count)
{
	size_t i = 0;
	for (; i + 4 <= count; i += 4) /* FPCR default: round to nearest even, like the C version */
		vst1_u16(dst + i, vreinterpret_u16_f16(vcvt_f16_f32(vld1q_f32(src + i))));
	for (; i < count; i++)
		dst[i] = npu_fp16_from_f32(src[i]);
}

static const struct npu_layout_ops neon_ops = {
	.name = "neon",
	.feature_from_rows_i8 = feature_from_rows_i8_neon,
	.feature_from_rows_f16 = feature_from_rows_f16_neon,
	.rows_from_feature_i8 = rows_from_feature_i8_neon,
	.rows_from_feature_f16 = rows_from_feature_f16_neon,
	.rows_from_output_i32 = rows_from_output_i32_neon,
	.rows_from_output_f32 = rows_from_output_f32_neon,
	.rows_from_output_i32_scaled = rows_from_output_i32_scaled_neon,
	.quantize_rows_i8 = quantize_rows_i8_neon,
	.f32_to_fp16 = f32_to_fp16_neon,
};

const struct npu_layout_ops *npu_layout_ops_neon(void)
{
	return &neon_ops;
}

const struct npu_layout_ops *npu_layout_ops(void)
{
	return &neon_ops;
}
