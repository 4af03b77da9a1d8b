/* SPDX-License-Identifier: MIT */
/* Layout converters and activation conversions in portable C (layout_neon.c has the NEON ones of
 * aarch64: same results, bit for bit; the tests compare both under qemu-aarch64). */
#include <float.h>
#include <math.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "layout_internal.h"
#include "npu_internal.h"

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

/* Surfaces of 16 bytes per row (16 int8 or 8 fp16 channels), rows padded, missing channels zero. */
static void feature_from_rows_bytes(uint8_t *dst, const uint8_t *src, unsigned element, unsigned rows, unsigned cols,
				    size_t lda, unsigned rows_padded, unsigned cols_padded)
{
	unsigned per_surface = 16 / element, groups = cols_padded / per_surface;
	memset(dst, 0, (size_t)groups * rows_padded * 16);
	for (unsigned g = 0; g < groups; g++) {
		unsigned c0 = g * per_surface;
		if (c0 >= cols)
			break;
		unsigned width = cols - c0 < per_surface ? cols - c0 : per_surface;
		uint8_t *surface = dst + (size_t)g * rows_padded * 16;
		for (unsigned m = 0; m < rows; m++)
			memcpy(surface + (size_t)m * 16, src + ((size_t)m * lda + c0) * element, (size_t)width * element);
	}
}

void feature_from_rows_i8_c(uint8_t *dst, const int8_t *src, unsigned rows, unsigned cols, size_t lda,
			    unsigned rows_padded, unsigned cols_padded)
{
	feature_from_rows_bytes(dst, (const uint8_t *)src, 1, rows, cols, lda, rows_padded, cols_padded);
}

void feature_from_rows_f16_c(uint8_t *dst, const uint16_t *src, unsigned rows, unsigned cols, size_t lda,
			     unsigned rows_padded, unsigned cols_padded)
{
	feature_from_rows_bytes(dst, (const uint8_t *)src, 2, rows, cols, lda, rows_padded, cols_padded);
}

void rows_from_feature_i8_c(int8_t *dst, const uint8_t *src, unsigned rows, unsigned cols, size_t ldd,
			    unsigned rows_padded)
{
	for (unsigned c0 = 0; c0 < cols; c0 += 16) {
		unsigned width = cols - c0 < 16 ? cols - c0 : 16;
		const uint8_t *surface = src + (size_t)(c0 / 16) * rows_padded * 16;
		for (unsigned m = 0; m < rows; m++)
			memcpy(dst + (size_t)m * ldd + c0, surface + (size_t)m * 16, width);
	}
}

void rows_from_feature_f16_c(uint16_t *dst, const uint8_t *src, unsigned rows, unsigned cols, size_t ldd,
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

/* The K-tile partials summed in tile order from the first one: int32 in unsigned adds (two's complement
 * wrap like the int32 the NPU would produce), fp32 from the first partial rather than from 0.0f, which
 * would turn a -0.0f into +0.0f. */
#define DEFINE_PARTIAL_SUM(suffix, type, sum_type)                                                          \
	void rows_from_output_##suffix##_c(type *dst, size_t ldd, const struct npu_partials *p)               \
	{                                                                                                     \
		for (unsigned c0 = 0; c0 < p->cols; c0 += 4) {                                                \
			unsigned width = p->cols - c0 < 4 ? p->cols - c0 : 4;                                 \
			const uint8_t *surface = p->src + (size_t)(c0 / 4) * p->rows_padded * 16;             \
			for (unsigned m0 = 0; m0 < p->rows; m0 += NPU_GATHER_ROWS) {                          \
				unsigned count = p->rows - m0 < NPU_GATHER_ROWS ? p->rows - m0 : NPU_GATHER_ROWS; \
				sum_type sum[NPU_GATHER_ROWS][4];                                             \
				memcpy(sum, surface + (size_t)m0 * 16, (size_t)count * 16);                   \
				for (unsigned t = 1; t < p->tiles; t++) {                                     \
					const uint8_t *block = surface + t * p->tile_bytes + (size_t)m0 * 16; \
					for (unsigned m = 0; m < count; m++) {                                \
						sum_type atom[4];                                             \
						memcpy(atom, block + (size_t)m * 16, sizeof atom);            \
						for (unsigned i = 0; i < 4; i++)                              \
							sum[m][i] += atom[i];                                 \
					}                                                                     \
				}                                                                             \
				for (unsigned m = 0; m < count; m++)                                          \
					memcpy(dst + (size_t)(m0 + m) * ldd + c0, sum[m], width * sizeof(type)); \
			}                                                                                     \
		}                                                                                             \
	}

DEFINE_PARTIAL_SUM(i32, int32_t, uint32_t)
DEFINE_PARTIAL_SUM(f32, float, float)
#undef DEFINE_PARTIAL_SUM

void rows_from_output_i32_scaled_c(float *dst, size_t ldd, const struct npu_partials *p,
				   const struct npu_partial_scales *scales)
{
	for (unsigned c0 = 0; c0 < p->cols; c0 += 4) {
		unsigned width = p->cols - c0 < 4 ? p->cols - c0 : 4;
		const uint8_t *surface = p->src + (size_t)(c0 / 4) * p->rows_padded * 16;
		for (unsigned m0 = 0; m0 < p->rows; m0 += NPU_GATHER_ROWS) {
			unsigned count = p->rows - m0 < NPU_GATHER_ROWS ? p->rows - m0 : NPU_GATHER_ROWS;
			float sum[NPU_GATHER_ROWS][4];
			for (unsigned t = 0; t < p->tiles; t++) {
				const uint8_t *block = surface + t * p->tile_bytes + (size_t)m0 * 16;
				const float *rows = scales->rows + t * scales->row_stride + m0;
				float column[4] = {0.0f, 0.0f, 0.0f, 0.0f}; /* missing columns scale by 0 */
				memcpy(column, scales->columns + t * scales->column_stride + c0, width * sizeof(float));
				for (unsigned m = 0; m < count; m++) {
					int32_t atom[4];
					memcpy(atom, block + (size_t)m * 16, sizeof atom);
					for (unsigned i = 0; i < 4; i++) {
						float value = (float)atom[i] * rows[m] * column[i];
						sum[m][i] = t ? sum[m][i] + value : value;
					}
				}
			}
			for (unsigned m = 0; m < count; m++)
				memcpy(dst + (size_t)(m0 + m) * ldd + c0, sum[m], width * sizeof(float));
		}
	}
}

/* The row's largest magnitude (NaN if it holds one) and 127 / it for quantizing. The magnitudes compared as
 * integers, which order like the floats they are and put every NaN above infinity: a loop the compiler
 * vectorizes, where max_magnitude's NaN test keeps it scalar. */
static float row_absmax(const float *row, unsigned cols, float *inverse)
{
	uint32_t largest = 0;
	for (unsigned c = 0; c < cols; c++) {
		uint32_t bits;
		memcpy(&bits, &row[c], sizeof bits);
		bits &= 0x7fffffffu;
		largest = bits > largest ? bits : largest;
	}
	float absmax;
	memcpy(&absmax, &largest, sizeof absmax);
	*inverse = absmax > 0.0f ? 127.0f / absmax : 0.0f;
	return absmax;
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

/* npu_fp16_from_f32 without branches (every case computed, the right one kept by masks), so the compiler
 * vectorizes the loop: normal halves round by integer addition (half-way to even through the kept bit),
 * subnormals by a float addition that aligns the mantissa in the default rounding mode, to nearest even
 * too. The same result for each of the 2^32 inputs (measured; test_layout checks a sweep). */
static uint16_t fp16_from_f32_branchless(float value)
{
	const uint32_t magic = 126u << 23; /* 0.5f: its ulp, 2^-24, is a half's smallest subnormal */
	uint32_t x, subnormal;
	float aligned, half_f;
	memcpy(&x, &value, sizeof x);
	memcpy(&half_f, &magic, sizeof half_f);
	uint32_t magnitude = x & 0x7fffffffu;
	uint32_t normal = (magnitude + 0xc8000fffu + ((magnitude >> 13) & 1u)) >> 13; /* exponent - 112 */
	memcpy(&aligned, &magnitude, sizeof aligned);
	aligned += half_f;
	memcpy(&subnormal, &aligned, sizeof subnormal);
	subnormal -= magic;
	uint32_t nan = -(uint32_t)(magnitude > 0x7f800000u), large = -(uint32_t)(magnitude >= 0x47800000u);
	uint32_t small = -(uint32_t)(magnitude < 0x38800000u);
	uint32_t special = 0x7c00u | (nan & (0x200u | ((magnitude >> 13) & 0x3ffu)));
	uint32_t half = (large & special) | (~large & ((small & subnormal) | (~small & normal)));
	return (uint16_t)(((x >> 16) & 0x8000u) | half);
}

#if defined(__x86_64__)
/* x86-64 CPUs since 2012 have F16C, which converts eight at a time, rounding to nearest even and
 * quieting NaNs as npu_fp16_from_f32 does; the baseline x86-64 has no conversion instruction. */
__attribute__((target("avx,f16c"))) static void f32_to_fp16_f16c(uint16_t *dst, const float *src, size_t count)
{
	size_t i = 0;
	for (; i + 8 <= count; i += 8)
		_mm_storeu_si128((__m128i *)(void *)(dst + i),
				 _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
	for (; i < count; i++)
		dst[i] = fp16_from_f32_branchless(src[i]);
}
#endif

static void f32_to_fp16_c(uint16_t *dst, const float *src, size_t count)
{
#if defined(__x86_64__)
	if (__builtin_cpu_supports("f16c")) {
		f32_to_fp16_f16c(dst, src, count);
		return;
	}
#endif
	for (size_t i = 0; i < count; i++)
		dst[i] = fp16_from_f32_branchless(src[i]);
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

#if !defined(__aarch64__) /* else layout_neon.c */
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
