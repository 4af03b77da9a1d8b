/* SPDX-License-Identifier: MIT */
/*
 * The feature map of an f32 activation matrix in one pass: each row converted (fp16) or quantized (int8,
 * per K group) into a buffer that stays in the L1 cache, then scattered into its 16-byte slot of every
 * surface. Rows are independent, so threads take contiguous row ranges; the conversion itself is the
 * layout ops' (NEON on aarch64), so results are the same bit for bit as converting first and laying out
 * after. This is the largest CPU share of an NPU matmul (docs/npu-userspace.md, "CPU work per call").
 */
#include <stdlib.h>
#include <string.h>

#include "npu_internal.h"
#include "npu_parallel.h"

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

/* Rows [4 x begin, 4 x end) of the feature map: whole 4-row blocks, so each 64-byte line of a surface
 * belongs to one thread. */
struct feature_work {
	const struct npu_f32_feature *f;
	uint8_t *rows; /* one buffer of cols x 2 bytes per range */
};

static void convert_range(void *context, unsigned index, size_t begin, size_t end)
{
	const struct feature_work *work = context;
	const struct npu_f32_feature *f = work->f;
	const struct npu_layout_ops *ops = npu_layout_ops();
	uint8_t *row = work->rows + (size_t)index * f->cols * 2;
	unsigned r1 = end * 4 < f->rows_padded ? (unsigned)end * 4 : f->rows_padded;
	for (unsigned r = (unsigned)begin * 4; r < r1; r++) {
		if (r >= f->rows) {
			scatter_row(f, f->precision == NPU_FP16 ? 2 : 1, NULL, r);
		} else if (f->precision == NPU_FP16) {
			ops->f32_to_fp16((uint16_t *)(void *)row, f->a + (size_t)r * f->cols, f->cols);
			scatter_row(f, 2, row, r);
		} else {
			/* scales [groups][rows], as the gather reads them */
			npu_quantize_groups_i8((int8_t *)row, f->scales + r, 1, f->rows, f->a + (size_t)r * f->cols, 1,
					       f->cols, f->group);
			scatter_row(f, 1, row, r);
		}
	}
}

int npu_feature_from_f32(const struct npu_f32_feature *f, unsigned threads)
{
	unsigned blocks = npu_div_up(f->rows_padded, 4);
	threads = threads < 1 ? 1 : threads > blocks ? blocks : threads; /* npu_set_threads caps it */
	struct feature_work work = {f, malloc((size_t)threads * f->cols * 2)};
	if (!work.rows)
		return npu_fail(NPU_ERR_NOMEM, "out of memory for %u row buffers of %u elements", threads, f->cols);
	npu_parallel_for(threads, blocks, convert_range, &work);
	free(work.rows);
	return NPU_OK;
}
