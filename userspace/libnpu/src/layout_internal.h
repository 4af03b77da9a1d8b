/* SPDX-License-Identifier: MIT */
/* What layout.c (portable) and layout_neon.c (aarch64) share: the portable kernels NEON hands its partial
 * atoms and padding to, and the scalar steps of quantization, so both round alike. */
#ifndef NPU_LAYOUT_INTERNAL_H
#define NPU_LAYOUT_INTERNAL_H

#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "npu/layout.h"

void feature_from_rows_i8_c(uint8_t *dst, const int8_t *src, unsigned rows, unsigned cols, size_t lda,
			    unsigned rows_padded, unsigned cols_padded);
void feature_from_rows_f16_c(uint8_t *dst, const uint16_t *src, unsigned rows, unsigned cols, size_t lda,
			     unsigned rows_padded, unsigned cols_padded);
void rows_from_feature_i8_c(int8_t *dst, const uint8_t *src, unsigned rows, unsigned cols, size_t ldd,
			    unsigned rows_padded);
void rows_from_feature_f16_c(uint16_t *dst, const uint8_t *src, unsigned rows, unsigned cols, size_t ldd,
			     unsigned rows_padded);
/* Rows the output gathers sum at a time: each partial's block is one sequential read. K-tile partials lie a
 * power of two apart, so summing them element by element would put every read in the same cache set. */
#define NPU_GATHER_ROWS 32u

void rows_from_output_i32_c(int32_t *dst, size_t ldd, const struct npu_partials *p);
void rows_from_output_f32_c(float *dst, size_t ldd, const struct npu_partials *p);
void rows_from_output_i32_scaled_c(float *dst, size_t ldd, const struct npu_partials *p,
				   const struct npu_partial_scales *scales);

/* The partials past the first `done` channels (what NEON leaves to the portable code). */
static inline struct npu_partials npu_partials_from(const struct npu_partials *p, unsigned done)
{
	struct npu_partials rest = *p;
	rest.src += (size_t)(done / 4) * p->rows_padded * 16;
	rest.cols -= done;
	return rest;
}

/* absmax with NaN sticky, as NEON's FMAX keeps it */
static inline float max_magnitude(float absmax, float x)
{
	float a = fabsf(x);
	return a > absmax || a != a ? a : absmax;
}

/* A row holding a NaN or an infinity quantizes to zeros with a NaN scale, so its results are NaN as
 * the CPU's would be non-finite, and no NaN reaches a float-to-int conversion (undefined in C). */
static inline int quantize_nonfinite_row(int8_t *q, float *scale, float absmax, unsigned cols)
{
	if (absmax <= FLT_MAX)
		return 0;
	memset(q, 0, cols);
	*scale = NAN;
	return 1;
}

static inline int8_t quantize_one(float x, float inverse)
{
	/* Round to nearest even, like vcvtnq: adding and removing 1.5 * 2^23 leaves the integer part
	 * rounded in the default rounding mode (exact for |x| < 2^22; |x * inverse| <= 127 here), and
	 * unlike nearbyintf() it needs no libm call. ISO C mode keeps the two operations unfused. */
	const float shifter = 12582912.0f;
	float r = (x * inverse + shifter) - shifter;
	r = r > 127.0f ? 127.0f : (r < -127.0f ? -127.0f : r);
	return (int8_t)r;
}

#endif
