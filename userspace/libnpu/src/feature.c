/* SPDX-License-Identifier: MIT */
/*
 * The feature map of an f32 activation matrix in one pass: each row converted (fp16) or quantized (int8,
 * per K group) into a buffer that stays in the L1 cache, then scattered into its 16-byte slot of every
 * surface. Rows are independent, so threads take contiguous row ranges; the conversion itself is the
 * layout ops' (NEON on aarch64), so results are the same bit for bit as converting first and laying out
 * after. This is the largest CPU share of an NPU matmul (docs/npu-userspace.md, "CPU work per call").
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "npu_internal.h"

/* Row r of the feature map: `row` holds its cols elements of `element` bytes (NULL: a padding row). */
static void scatter_row(const struct npu_f32_feature *f, unsigned element, const uint8_t *row, unsigned r)
{
	unsigned per_surface = 16 / element, surfaces = f->cols_padded / per_surface;
	uint8_t *slot = f->dst + (size_t)r * 16;
	for (unsigned g = 0; g < surfaces; g++, slot += (size_t)f->rows_padded * 16) {
		unsigned c0 = g * per_surface;
		unsigned bytes = !row || c0 >= f->cols ? 0 : (f->cols - c0 < per_surface ? f->cols - c0 : per_surface) * element;
		if (bytes)
			memcpy(slot, row + (size_t)c0 * element, bytes);
		if (bytes < 16)
			memset(slot + bytes, 0, 16 - bytes);
	}
}

struct feature_range {
	const struct npu_f32_feature *f;
	uint8_t *row;      /* this range's row buffer: cols x 2 bytes */
	unsigned r0, r1;   /* rows [r0, r1) of rows_padded */
};

static void *convert_range(void *argument)
{
	const struct feature_range *range = argument;
	const struct npu_f32_feature *f = range->f;
	const struct npu_layout_ops *ops = npu_layout_ops();
	for (unsigned r = range->r0; r < range->r1; r++) {
		if (r >= f->rows) {
			scatter_row(f, f->precision == NPU_FP16 ? 2 : 1, NULL, r);
		} else if (f->precision == NPU_FP16) {
			ops->f32_to_fp16((uint16_t *)(void *)range->row, f->a + (size_t)r * f->cols, f->cols);
			scatter_row(f, 2, range->row, r);
		} else {
			/* scales [groups][rows], as the gather reads them */
			npu_quantize_groups_i8((int8_t *)range->row, f->scales + r, 1, f->rows, f->a + (size_t)r * f->cols, 1,
					       f->cols, f->group);
			scatter_row(f, 1, range->row, r);
		}
	}
	return NULL;
}

int npu_feature_from_f32(const struct npu_f32_feature *f, unsigned threads)
{
	/* ranges of whole 4-row blocks: a 64-byte line of each surface belongs to one thread */
	unsigned blocks = npu_div_up(f->rows_padded, 4);
	threads = threads < 1 ? 1 : threads > NPU_MAX_THREADS ? NPU_MAX_THREADS : threads;
	threads = threads > blocks ? blocks : threads;
	uint8_t *rows = malloc((size_t)threads * f->cols * 2);
	if (!rows)
		return npu_fail(NPU_ERR_NOMEM, "out of memory for %u row buffers of %u elements", threads, f->cols);
	struct feature_range ranges[NPU_MAX_THREADS];
	pthread_t ids[NPU_MAX_THREADS];
	int started[NPU_MAX_THREADS] = {0};
	for (unsigned t = 0; t < threads; t++) {
		unsigned b0 = (unsigned)((uint64_t)blocks * t / threads), b1 = (unsigned)((uint64_t)blocks * (t + 1) / threads);
		unsigned r1 = b1 * 4 < f->rows_padded ? b1 * 4 : f->rows_padded;
		ranges[t] = (struct feature_range){f, rows + (size_t)t * f->cols * 2, b0 * 4, r1};
	}
	for (unsigned t = 1; t < threads; t++)
		started[t] = !pthread_create(&ids[t], NULL, convert_range, &ranges[t]);
	convert_range(&ranges[0]);
	for (unsigned t = 1; t < threads; t++) {
		if (started[t])
			pthread_join(ids[t], NULL);
		else /* no thread to be had: the caller converts that range too */
			convert_range(&ranges[t]);
	}
	free(rows);
	return NPU_OK;
}
