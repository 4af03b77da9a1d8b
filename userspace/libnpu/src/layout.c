/* SPDX-License-Identifier: MIT */
/* Layout converters and activation conversions: portable C, plus NEON on aarch64 (same results,
 * bit for bit; the tests compare both under qemu-aarch64). */
#include <float.h>
#include <math.h>
#include <string.h>

#include "npu_internal.h"

#if defined(__aarch64__)
#include <arm_neon.h>
#endif

/* ---- fp16 <-> fp32, IEEE binary16, round to nearest even ---- */

uint16_t npu_fp16_from_f32(float value)
{
	uint32_t x;
	memcpy(&x, &value, sizeof x);
	uint32_t sign = (x >> 16) & 0x8000u;
	uint32_t exponent = (x >> 23) & 0xffu;
	uint32_t mantissa = x & 0x7fffffu;
	if (exponent == 0xffu) /* inf / NaN (NaN stays quiet NaN) */
		return (uint16_t)(sign | 0x7c00u | (mantissa ? 0x200u | (mantissa >> 13) : 0));
	int e = (int)exponent - 127 + 15;
	if (e >= 31)
		return (uint16_t)(sign | 0x7c00u);
	if (e <= 0) { /* subnormal half or zero */
		if (e < -10)
			return (uint16_t)sign;
		mantissa |= 0x800000u;
		unsigned shift = (unsigned)(14 - e);
		uint32_t half = mantissa >> shift;
		uint32_t rest = mantissa & ((1u << shift) - 1);
		uint32_t halfway = 1u << (shift - 1);
		if (rest > halfway || (rest == halfway && (half & 1u)))
			half++;
		return (uint16_t)(sign | half);
	}
	uint32_t half = ((uint32_t)e << 10) | (mantissa >> 13);
	uint32_t rest = mantissa & 0x1fffu;
	if (rest > 0x1000u || (rest == 0x1000u && (half & 1u)))
		half++; /* may carry into the exponent, up to infinity: correct */
	return (uint16_t)(sign | half);
}

float npu_f32_from_fp16(uint16_t bits)
{
	uint32_t sign = (uint32_t)(bits & 0x8000u) << 16;
	uint32_t exponent = (bits >> 10) & 0x1fu;
	uint32_t mantissa = bits & 0x3ffu;
	uint32_t x;
	if (exponent == 0x1fu) {
		x = sign | 0x7f800000u | (mantissa << 13);
	} else if (exponent == 0) {
		if (mantissa == 0) {
			x = sign;
		} else {
			int e = -1;
			do {
				mantissa <<= 1;
				e++;
			} while (!(mantissa & 0x400u));
			x = sign | ((uint32_t)(127 - 15 - e) << 23) | ((mantissa & 0x3ffu) << 13);
		}
	} else {
		x = sign | ((exponent + 127 - 15) << 23) | (mantissa << 13);
	}
	float f;
	memcpy(&f, &x, sizeof f);
	return f;
}

/* ---- portable ---- */

static void feature_from_rows_i8_c(uint8_t *dst, const int8_t *src, unsigned rows, unsigned cols, size_t lda,
				   unsigned rows_padded, unsigned cols_padded)
{
	unsigned groups = cols_padded / 16;
	memset(dst, 0, (size_t)groups * rows_padded * 16);
	for (unsigned g = 0; g < groups; g++) {
		unsigned c0 = g * 16;
		if (c0 >= cols)
			break;
		unsigned width = cols - c0 < 16 ? cols - c0 : 16;
		uint8_t *surface = dst + (size_t)g * rows_padded * 16;
		for (unsigned m = 0; m < rows; m++)
			memcpy(surface + (size_t)m * 16, src + (size_t)m * lda + c0, width);
	}
}

static void feature_from_rows_f16_c(uint8_t *dst, const uint16_t *src, unsigned rows, unsigned cols, size_t lda,
				    unsigned rows_padded, unsigned cols_padded)
{
	unsigned groups = cols_padded / 8;
	memset(dst, 0, (size_t)groups * rows_padded * 16);
	for (unsigned g = 0; g < groups; g++) {
		unsigned c0 = g * 8;
		if (c0 >= cols)
			break;
		unsigned width = cols - c0 < 8 ? cols - c0 : 8;
		uint8_t *surface = dst + (size_t)g * rows_padded * 16;
		for (unsigned m = 0; m < rows; m++)
			memcpy(surface + (size_t)m * 16, src + (size_t)m * lda + c0, width * 2u);
	}
}

static void rows_from_feature_i8_c(int8_t *dst, const uint8_t *src, unsigned rows, unsigned cols, size_t ldd,
				   unsigned rows_padded)
{
	for (unsigned c0 = 0; c0 < cols; c0 += 16) {
		unsigned width = cols - c0 < 16 ? cols - c0 : 16;
		const uint8_t *surface = src + (size_t)(c0 / 16) * rows_padded * 16;
		for (unsigned m = 0; m < rows; m++)
			memcpy(dst + (size_t)m * ldd + c0, surface + (size_t)m * 16, width);
	}
}

static void rows_from_feature_f16_c(uint16_t *dst, const uint8_t *src, unsigned rows, unsigned cols, size_t ldd,
				    unsigned rows_padded)
{
	for (unsigned c0 = 0; c0 < cols; c0 += 8) {
		unsigned width = cols - c0 < 8 ? cols - c0 : 8;
		const uint8_t *surface = src + (size_t)(c0 / 8) * rows_padded * 16;
		for (unsigned m = 0; m < rows; m++)
			memcpy(dst + (size_t)m * ldd + c0, surface + (size_t)m * 16, width * 2u);
	}
}

/* Output gathers walk the source surface by surface (sequential reads, strided writes): measured
 * faster on x86 than blocking rows, whose reads jump a whole surface per 16 bytes. */

static void rows_from_output_i32_c(int32_t *dst, const uint8_t *src, unsigned rows, unsigned cols, size_t ldd,
				   unsigned rows_padded, int accumulate)
{
	for (unsigned c0 = 0; c0 < cols; c0 += 4) {
		unsigned width = cols - c0 < 4 ? cols - c0 : 4;
		const uint8_t *surface = src + (size_t)(c0 / 4) * rows_padded * 16;
		for (unsigned m = 0; m < rows; m++) {
			int32_t atom[4];
			memcpy(atom, surface + (size_t)m * 16, sizeof atom);
			int32_t *out = dst + (size_t)m * ldd + c0;
			for (unsigned i = 0; i < width; i++)
				/* unsigned add: two's complement wrap like the int32 the NPU would produce */
				out[i] = accumulate ? (int32_t)((uint32_t)out[i] + (uint32_t)atom[i]) : atom[i];
		}
	}
}

static void rows_from_output_f32_c(float *dst, const uint8_t *src, unsigned rows, unsigned cols, size_t ldd,
				   unsigned rows_padded, int accumulate)
{
	for (unsigned c0 = 0; c0 < cols; c0 += 4) {
		unsigned width = cols - c0 < 4 ? cols - c0 : 4;
		const uint8_t *surface = src + (size_t)(c0 / 4) * rows_padded * 16;
		for (unsigned m = 0; m < rows; m++) {
			float atom[4];
			memcpy(atom, surface + (size_t)m * 16, sizeof atom);
			float *out = dst + (size_t)m * ldd + c0;
			for (unsigned i = 0; i < width; i++)
				out[i] = accumulate ? out[i] + atom[i] : atom[i];
		}
	}
}

static void rows_from_output_i32_scaled_c(float *dst, const uint8_t *src, unsigned rows, unsigned cols, size_t ldd,
					  unsigned rows_padded, const float *row_scales, const float *column_scales,
					  int accumulate)
{
	for (unsigned c0 = 0; c0 < cols; c0 += 4) {
		unsigned width = cols - c0 < 4 ? cols - c0 : 4;
		const uint8_t *surface = src + (size_t)(c0 / 4) * rows_padded * 16;
		for (unsigned m = 0; m < rows; m++) {
			int32_t atom[4];
			memcpy(atom, surface + (size_t)m * 16, sizeof atom);
			float *out = dst + (size_t)m * ldd + c0;
			for (unsigned i = 0; i < width; i++) {
				float value = (float)atom[i] * row_scales[m] * column_scales[c0 + i];
				out[i] = accumulate ? out[i] + value : value;
			}
		}
	}
}

/* absmax with NaN sticky, as NEON's FMAX keeps it */
static float max_magnitude(float absmax, float x)
{
	float a = fabsf(x);
	return a > absmax || a != a ? a : absmax;
}

/* A row holding a NaN or an infinity quantizes to zeros with a NaN scale, so its results are NaN as
 * the CPU's would be non-finite, and no NaN reaches a float-to-int conversion (undefined in C). */
static int quantize_nonfinite_row(int8_t *q, float *scale, float absmax, unsigned cols)
{
	if (absmax <= FLT_MAX)
		return 0;
	memset(q, 0, cols);
	*scale = NAN;
	return 1;
}

/* The row's largest magnitude (NaN if it holds one) and 127 / it for quantizing. */
static float row_absmax(const float *row, unsigned cols, float *inverse)
{
	float absmax = 0.0f;
	for (unsigned c = 0; c < cols; c++)
		absmax = max_magnitude(absmax, row[c]);
	*inverse = absmax > 0.0f ? 127.0f / absmax : 0.0f;
	return absmax;
}

static int8_t quantize_one(float x, float inverse)
{
	/* Round to nearest even, like vcvtnq: adding and removing 1.5 * 2^23 leaves the integer part
	 * rounded in the default rounding mode (exact for |x| < 2^22; |x * inverse| <= 127 here), and
	 * unlike nearbyintf() it needs no libm call. ISO C mode keeps the two operations unfused. */
	const float shifter = 12582912.0f;
	float r = (x * inverse + shifter) - shifter;
	r = r > 127.0f ? 127.0f : (r < -127.0f ? -127.0f : r);
	return (int8_t)r;
}

static void quantize_rows_i8_c(int8_t *q, float *scales, const float *x, unsigned rows, unsigned cols)
{
	for (unsigned m = 0; m < rows; m++) {
		const float *row = x + (size_t)m * cols;
		float inverse, absmax = row_absmax(row, cols, &inverse);
		if (quantize_nonfinite_row(q + (size_t)m * cols, &scales[m], absmax, cols))
			continue;
		scales[m] = absmax / 127.0f;
		for (unsigned c = 0; c < cols; c++)
			q[(size_t)m * cols + c] = quantize_one(row[c], inverse);
	}
}

static void f32_to_fp16_c(uint16_t *dst, const float *src, size_t count)
{
	for (size_t i = 0; i < count; i++)
		dst[i] = npu_fp16_from_f32(src[i]);
}

static const struct npu_layout_ops portable_ops = {
	.name = "portable",
	.feature_from_rows_i8 = feature_from_rows_i8_c,
	.feature_from_rows_f16 = feature_from_rows_f16_c,
	.rows_from_feature_i8 = rows_from_feature_i8_c,
	.rows_from_feature_f16 = rows_from_feature_f16_c,
	.rows_from_output_i32 = rows_from_output_i32_c,
	.rows_from_output_f32 = rows_from_output_f32_c,
	.rows_from_output_i32_scaled = rows_from_output_i32_scaled_c,
	.quantize_rows_i8 = quantize_rows_i8_c,
	.f32_to_fp16 = f32_to_fp16_c,
};

const struct npu_layout_ops *npu_layout_ops_portable(void)
{
	return &portable_ops;
}

/* ---- NEON ---- */
#if defined(__aarch64__)

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

static void rows_from_output_i32_neon(int32_t *dst, const uint8_t *src, unsigned rows, unsigned cols, size_t ldd,
				      unsigned rows_padded, int accumulate)
{
	unsigned full_groups = cols / 4;
	for (unsigned g = 0; g < full_groups; g++) {
		const uint8_t *surface = src + (size_t)g * rows_padded * 16;
		for (unsigned m = 0; m < rows; m++) {
			int32x4_t atom = vld1q_s32((const int32_t *)(const void *)(surface + (size_t)m * 16));
			int32_t *out = dst + (size_t)m * ldd + g * 4;
			vst1q_s32(out, accumulate ? vaddq_s32(vld1q_s32(out), atom) : atom);
		}
	}
	if (full_groups * 4 < cols)
		rows_from_output_i32_c(dst + full_groups * 4, src + (size_t)full_groups * rows_padded * 16, rows,
				       cols - full_groups * 4, ldd, rows_padded, accumulate);
}

static void rows_from_output_f32_neon(float *dst, const uint8_t *src, unsigned rows, unsigned cols, size_t ldd,
				      unsigned rows_padded, int accumulate)
{
	unsigned full_groups = cols / 4;
	for (unsigned g = 0; g < full_groups; g++) {
		const uint8_t *surface = src + (size_t)g * rows_padded * 16;
		for (unsigned m = 0; m < rows; m++) {
			float32x4_t atom = vld1q_f32((const float *)(const void *)(surface + (size_t)m * 16));
			float *out = dst + (size_t)m * ldd + g * 4;
			vst1q_f32(out, accumulate ? vaddq_f32(vld1q_f32(out), atom) : atom);
		}
	}
	if (full_groups * 4 < cols)
		rows_from_output_f32_c(dst + full_groups * 4, src + (size_t)full_groups * rows_padded * 16, rows,
				       cols - full_groups * 4, ldd, rows_padded, accumulate);
}

static void rows_from_output_i32_scaled_neon(float *dst, const uint8_t *src, unsigned rows, unsigned cols,
					     size_t ldd, unsigned rows_padded, const float *row_scales,
					     const float *column_scales, int accumulate)
{
	unsigned full_groups = cols / 4;
	for (unsigned g = 0; g < full_groups; g++) {
		const uint8_t *surface = src + (size_t)g * rows_padded * 16;
		float32x4_t column = vld1q_f32(column_scales + g * 4);
		for (unsigned m = 0; m < rows; m++) {
			int32x4_t atom = vld1q_s32((const int32_t *)(const void *)(surface + (size_t)m * 16));
			/* same order as the C version: (acc * row) * column */
			float32x4_t value = vmulq_f32(vmulq_n_f32(vcvtq_f32_s32(atom), row_scales[m]), column);
			float *out = dst + (size_t)m * ldd + g * 4;
			vst1q_f32(out, accumulate ? vaddq_f32(vld1q_f32(out), value) : value);
		}
	}
	if (full_groups * 4 < cols)
		rows_from_output_i32_scaled_c(dst + full_groups * 4, src + (size_t)full_groups * rows_padded * 16, rows,
					      cols - full_groups * 4, ldd, rows_padded, row_scales,
					      column_scales + full_groups * 4, accumulate);
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
#else
const struct npu_layout_ops *npu_layout_ops_neon(void)
{
	return NULL;
}

const struct npu_layout_ops *npu_layout_ops(void)
{
	return &portable_ops;
}
#endif

void npu_f32_to_fp16_array(uint16_t *dst, const float *src, size_t count)
{
	npu_layout_ops()->f32_to_fp16(dst, src, count);
}

void npu_quantize_rows_i8(int8_t *q, float *scales, const float *x, unsigned rows, unsigned cols)
{
	npu_layout_ops()->quantize_rows_i8(q, scales, x, rows, cols);
}

void npu_quantize_groups_i8(int8_t *q, float *scales, size_t row_stride, size_t group_stride, const float *x,
			    unsigned rows, unsigned cols, unsigned group)
{
	const struct npu_layout_ops *ops = npu_layout_ops();
	for (unsigned k0 = 0, g = 0; k0 < cols; k0 += group, g++) {
		unsigned length = cols - k0 < group ? cols - k0 : group;
		for (unsigned r = 0; r < rows; r++)
			ops->quantize_rows_i8(q + (size_t)r * cols + k0, &scales[r * row_stride + g * group_stride],
					      x + (size_t)r * cols + k0, 1, length);
	}
}

/* ---- weight tiles ---- */

#define DEFINE_WEIGHT_TILE(suffix, type, group)                                                              \
	void npu_weight_tile_from_rows_##suffix(type *dst, const type *b, size_t ldb, unsigned n, unsigned k,   \
						unsigned n0, unsigned nt, unsigned k0, unsigned kt)             \
	{                                                                                                     \
		memset(dst, 0, (size_t)nt * kt * sizeof(type));                                               \
		if (k0 >= k)                                                                                  \
			return;                                                                               \
		unsigned width = k - k0 < kt ? k - k0 : kt;                                                   \
		for (unsigned i = 0; i < nt && n0 + i < n; i++) {                                             \
			const type *row = b + (size_t)(n0 + i) * ldb + k0;                                    \
			for (unsigned j0 = 0; j0 < width; j0 += 32) {                                         \
				unsigned run = width - j0 < 32 ? width - j0 : 32;                             \
				memcpy(dst + npu_weight_index(i, j0, kt, group), row + j0, run * sizeof(type)); \
			}                                                                                     \
		}                                                                                             \
	}                                                                                                     \
	void npu_weight_rows_from_tile_##suffix(type *b, size_t ldb, const type *tile, unsigned n, unsigned k,  \
						unsigned n0, unsigned nt, unsigned k0, unsigned kt)             \
	{                                                                                                     \
		if (k0 >= k)                                                                                  \
			return;                                                                               \
		unsigned width = k - k0 < kt ? k - k0 : kt;                                                   \
		for (unsigned i = 0; i < nt && n0 + i < n; i++) {                                             \
			type *row = b + (size_t)(n0 + i) * ldb + k0;                                          \
			for (unsigned j0 = 0; j0 < width; j0 += 32) {                                         \
				unsigned run = width - j0 < 32 ? width - j0 : 32;                             \
				memcpy(row + j0, tile + npu_weight_index(i, j0, kt, group), run * sizeof(type)); \
			}                                                                                     \
		}                                                                                             \
	}

DEFINE_WEIGHT_TILE(i8, int8_t, 32)
DEFINE_WEIGHT_TILE(f16, uint16_t, 16)
