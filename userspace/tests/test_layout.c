/* SPDX-License-Identifier: MIT */
/* Layout converters: round trips, padding, the offset formulas written out independently, fp16
 * conversion, quantization; on aarch64 the NEON versions must match the portable ones byte for byte. */
#include <math.h>
#include <string.h>

#include "npu/layout.h"
#include "support.h"

static const struct npu_layout_ops *variants[2];
static unsigned variant_count;

/* Every 4099th bit pattern of the 2^32 (all exponents, both signs, NaNs and subnormals among them) and
 * each half's round-to-nearest-even boundaries: every variant's array conversion against the scalar one
 * (the portable array conversion is a branch-free rewrite of it). */
static void check_fp16_sweep(void)
{
	enum { CHUNK = 4096 };
	float *in = malloc(CHUNK * sizeof *in);
	uint16_t *out = malloc(CHUNK * 2);
	uint64_t next = test_random_below(4099);
	for (int boundaries = 0; boundaries < 2; boundaries++) {
		for (uint64_t done = 0, total = boundaries ? 0x10000u * 3 : (1ull << 32) / 4099; done < total;) {
			unsigned count = total - done < CHUNK ? (unsigned)(total - done) : CHUNK;
			for (unsigned i = 0; i < count; i++, done++) {
				uint32_t bits = (uint32_t)next;
				if (boundaries) { /* halfway below each half, and one ulp either side of it */
					float value = npu_f32_from_fp16((uint16_t)(done / 3));
					memcpy(&bits, &value, 4);
					bits = bits - 0x1000u + (uint32_t)(done % 3) - 1u;
				}
				next += 4099;
				memcpy(&in[i], &bits, 4);
			}
			for (unsigned v = 0; v < variant_count; v++) {
				variants[v]->f32_to_fp16(out, in, count);
				for (unsigned i = 0; i < count; i++)
					CHECK(out[i] == npu_fp16_from_f32(in[i]), "%s f32_to_fp16(%a) = 0x%04x, scalar 0x%04x",
					      variants[v]->name, (double)in[i], out[i], npu_fp16_from_f32(in[i]));
			}
		}
	}
	free(in);
	free(out);
}

static void check_fp16_conversion(void)
{
	for (uint32_t h = 0; h < 0x10000u; h++) {
		float f = npu_f32_from_fp16((uint16_t)h);
		int nan = (h & 0x7c00u) == 0x7c00u && (h & 0x3ffu);
		if (nan) {
			CHECK(isnan(f), "half 0x%04x should be NaN", h);
			continue;
		}
		CHECK(npu_fp16_from_f32(f) == h, "half 0x%04x -> %g -> 0x%04x", h, (double)f, npu_fp16_from_f32(f));
	}
	/* Rounding: the result is the nearest half, ties to even; compared on random floats incl. tiny ones. */
	for (int i = 0; i < 200000; i++) {
		float x = ldexpf((float)(test_random() >> 40) / (float)(1 << 24) * (test_random() & 1 ? 1 : -1),
				 (int)test_random_below(44) - 28);
		uint16_t h = npu_fp16_from_f32(x);
		double error = fabs((double)x - npu_f32_from_fp16(h));
		if ((h & 0x7c00u) == 0x7c00u)
			continue; /* overflow to infinity */
		for (int step = -1; step <= 1; step += 2) {
			uint16_t other = (uint16_t)(h + step);
			if ((other & 0x7fffu) >= 0x7c00u || ((h & 0x7fffu) == 0 && step < 0))
				continue;
			double other_error = fabs((double)x - npu_f32_from_fp16(other));
			CHECK(error < other_error || (error == other_error && !(h & 1)),
			      "%a -> 0x%04x (error %g) but 0x%04x is closer/even (%g)", (double)x, h, error, other, other_error);
		}
	}
	float specials[] = {0.0f, -0.0f, 65504.0f, 65520.0f, 1e-8f, 5.9604645e-08f, 2.9802322e-08f, 1.0009766f,
			    1.00048828125f, 1.00146484375f, INFINITY, -INFINITY};
	for (unsigned v = 0; v < variant_count; v++) {
		uint16_t got[12];
		variants[v]->f32_to_fp16(got, specials, 12);
		for (unsigned i = 0; i < 12; i++)
			CHECK(got[i] == npu_fp16_from_f32(specials[i]), "%s f32_to_fp16(%a) = 0x%04x, scalar 0x%04x",
			      variants[v]->name, (double)specials[i], got[i], npu_fp16_from_f32(specials[i]));
		unsigned count = 1000 + test_random_below(100);
		float *in = malloc(count * sizeof *in);
		uint16_t *out = malloc(count * 2);
		for (unsigned i = 0; i < count; i++)
			in[i] = ldexpf((float)(int32_t)(test_random() >> 32) / 2147483648.0f, (int)test_random_below(40) - 24);
		variants[v]->f32_to_fp16(out, in, count);
		for (unsigned i = 0; i < count; i++)
			CHECK(out[i] == npu_fp16_from_f32(in[i]), "%s f32_to_fp16 differs at %u", variants[v]->name, i);
		free(in);
		free(out);
	}
	check_fp16_sweep();
}

static void check_feature(int fp16)
{
	for (int round = 0; round < 60; round++) {
		unsigned rows = 1 + test_random_below(round < 30 ? 40 : 300);
		unsigned cols = 1 + test_random_below(round < 30 ? 70 : 600);
		size_t lda = cols + test_random_below(5);
		unsigned rows_padded = (rows + 3) / 4 * 4 + 4 * test_random_below(2);
		unsigned cols_padded = (cols + 31) / 32 * 32;
		unsigned bpe = fp16 ? 2 : 1, c2 = 16 / bpe;
		size_t src_bytes = (size_t)rows * lda * bpe, dst_bytes = (size_t)cols_padded / c2 * rows_padded * 16;
		uint8_t *src = malloc(src_bytes), *dst[2], *back = malloc(src_bytes);
		for (size_t i = 0; i < src_bytes; i++)
			src[i] = (uint8_t)(test_random() >> 56);
		for (unsigned v = 0; v < variant_count; v++) {
			dst[v] = malloc(dst_bytes);
			memset(dst[v], 0xcc, dst_bytes);
			if (fp16)
				variants[v]->feature_from_rows_f16(dst[v], (const uint16_t *)(void *)src, rows, cols, lda,
								   rows_padded, cols_padded);
			else
				variants[v]->feature_from_rows_i8(dst[v], (const int8_t *)src, rows, cols, lda, rows_padded,
								  cols_padded);
			/* every byte: the element at the written-out NC1HWC2 position, or zero padding */
			for (size_t byte = 0; byte < dst_bytes; byte++) {
				size_t atom = byte / 16, within = byte % 16;
				unsigned m = (unsigned)(atom % rows_padded), c = (unsigned)(atom / rows_padded * c2 + within / bpe);
				uint8_t expected = m < rows && c < cols ? src[((size_t)m * lda + c) * bpe + within % bpe] : 0;
				CHECK(dst[v][byte] == expected, "%s %s feature %ux%u: byte %zu = 0x%02x, expected 0x%02x",
				      variants[v]->name, fp16 ? "fp16" : "int8", rows, cols, byte, dst[v][byte], expected);
			}
			memset(back, 0, src_bytes);
			if (fp16)
				variants[v]->rows_from_feature_f16((uint16_t *)(void *)back, dst[v], rows, cols, lda, rows_padded);
			else
				variants[v]->rows_from_feature_i8((int8_t *)back, dst[v], rows, cols, lda, rows_padded);
			for (unsigned m = 0; m < rows; m++)
				CHECK(memcmp(back + (size_t)m * lda * bpe, src + (size_t)m * lda * bpe, (size_t)cols * bpe) == 0,
				      "%s round trip differs in row %u of %ux%u", variants[v]->name, m, rows, cols);
		}
		for (unsigned v = 0; v < variant_count; v++)
			free(dst[v]);
		free(src);
		free(back);
	}
}

/* Partials of tiles x (cols padded to 4) x rows_padded random 4-byte elements, tile_bytes apart. */
static uint8_t *random_partials(int fp32, unsigned tiles, unsigned cols, unsigned rows_padded, size_t *tile_bytes)
{
	*tile_bytes = (size_t)(cols + 3) / 4 * rows_padded * 16 + 16 * test_random_below(3);
	uint8_t *src = malloc(*tile_bytes * tiles);
	for (size_t i = 0; i < *tile_bytes * tiles; i += 4) {
		if (fp32) { /* eighths, with signed zeros among them */
			float value = (float)(int)(test_random_below(201) - 100) / 8.0f;
			value = test_random_below(16) ? value : -0.0f;
			memcpy(src + i, &value, 4);
		} else {
			uint32_t value = (uint32_t)(test_random() >> 32);
			memcpy(src + i, &value, 4);
		}
	}
	return src;
}

static uint32_t partial_element(const uint8_t *src, size_t tile_bytes, unsigned t, unsigned m, unsigned n,
				unsigned rows_padded)
{
	uint32_t element;
	memcpy(&element, src + t * tile_bytes + ((size_t)(n / 4) * rows_padded + m) * 16 + (n % 4) * 4, 4);
	return element;
}

/* The sum in tile order, as K tiles add up: int32 with two's complement wrap, or fp32 from the first. */
static uint32_t expected_sum(int fp32, const uint8_t *src, size_t tile_bytes, unsigned tiles, unsigned m, unsigned n,
			     unsigned rows_padded)
{
	uint32_t sum = partial_element(src, tile_bytes, 0, m, n, rows_padded);
	for (unsigned t = 1; t < tiles; t++) {
		uint32_t element = partial_element(src, tile_bytes, t, m, n, rows_padded);
		if (fp32) {
			float a, b;
			memcpy(&a, &sum, 4), memcpy(&b, &element, 4);
			a += b;
			memcpy(&sum, &a, 4);
		} else {
			sum += element;
		}
	}
	return sum;
}

static void check_output(int fp32)
{
	for (int round = 0; round < 60; round++) {
		unsigned rows = 1 + test_random_below(200), cols = 1 + test_random_below(300), tiles = 1 + round % 4;
		unsigned rows_padded = (rows + 3) / 4 * 4;
		size_t ldd = cols + test_random_below(7), tile_bytes;
		uint8_t *src = random_partials(fp32, tiles, cols, rows_padded, &tile_bytes);
		struct npu_partials partials = {src, tiles, tile_bytes, rows, cols, rows_padded};
		for (unsigned v = 0; v < variant_count; v++) {
			uint32_t *dst = malloc((size_t)rows * ldd * 4);
			for (size_t i = 0; i < (size_t)rows * ldd; i++)
				dst[i] = 7; /* checks nothing past cols is written */
			if (fp32)
				variants[v]->rows_from_output_f32((float *)(void *)dst, ldd, &partials);
			else
				variants[v]->rows_from_output_i32((int32_t *)(void *)dst, ldd, &partials);
			for (unsigned m = 0; m < rows; m++)
				for (unsigned n = 0; n < ldd; n++) {
					uint32_t got = dst[(size_t)m * ldd + n];
					uint32_t expected = n < cols ? expected_sum(fp32, src, tile_bytes, tiles, m, n, rows_padded) : 7u;
					CHECK(got == expected, "%s output (%u,%u) of %u partials = 0x%08x, expected 0x%08x",
					      variants[v]->name, m, n, tiles, got, expected);
				}
			free(dst);
		}
		free(src);
	}
}

static void check_scaled_output(void)
{
	for (int round = 0; round < 40; round++) {
		unsigned rows = 1 + test_random_below(100), cols = 1 + test_random_below(200), tiles = 1 + round % 4;
		unsigned rows_padded = (rows + 3) / 4 * 4;
		size_t tile_bytes;
		uint8_t *src = random_partials(0, tiles, cols, rows_padded, &tile_bytes);
		float *row_scales = malloc(tiles * rows * sizeof(float)), *column_scales = malloc(tiles * cols * sizeof(float));
		for (unsigned i = 0; i < tiles * rows; i++)
			row_scales[i] = (float)(1 + test_random_below(1000)) / 3000.0f;
		for (unsigned i = 0; i < tiles * cols; i++)
			column_scales[i] = (float)(1 + test_random_below(1000)) / 7000.0f;
		struct npu_partials partials = {src, tiles, tile_bytes, rows, cols, rows_padded};
		struct npu_partial_scales scales = {row_scales, rows, column_scales, cols};
		for (unsigned v = 0; v < variant_count; v++) {
			float *dst = malloc((size_t)rows * cols * sizeof(float));
			variants[v]->rows_from_output_i32_scaled(dst, cols, &partials, &scales);
			for (unsigned m = 0; m < rows; m++)
				for (unsigned n = 0; n < cols; n++) {
					float expected = 0.0f;
					for (unsigned t = 0; t < tiles; t++) {
						int32_t acc = (int32_t)partial_element(src, tile_bytes, t, m, n, rows_padded);
						float value = (float)acc * row_scales[t * rows + m] * column_scales[t * cols + n];
						expected = t ? expected + value : value;
					}
					CHECK(memcmp(&dst[(size_t)m * cols + n], &expected, 4) == 0,
					      "%s scaled output (%u,%u) of %u partials = %a, expected %a", variants[v]->name, m, n,
					      tiles, (double)dst[(size_t)m * cols + n], (double)expected);
				}
			free(dst);
		}
		free(src), free(row_scales), free(column_scales);
	}
}

static void check_weights(void)
{
	for (int round = 0; round < 80; round++) {
		int fp16 = round % 2;
		unsigned g = fp16 ? 16 : 32;
		unsigned n = 1 + test_random_below(200), k = 1 + test_random_below(300);
		unsigned np = (n + g - 1) / g * g, kp = (k + 31) / 32 * 32;
		unsigned nt = g * (1 + test_random_below(np / g)), kt = 32 * (1 + test_random_below(kp / 32));
		unsigned n0 = nt * test_random_below((np + nt - 1) / nt), k0 = kt * test_random_below((kp + kt - 1) / kt);
		size_t bpe = fp16 ? 2 : 1;
		uint8_t *b = malloc((size_t)n * k * bpe), *tile = malloc((size_t)nt * kt * bpe), *back = calloc((size_t)n * k, bpe);
		for (size_t i = 0; i < (size_t)n * k * bpe; i++)
			b[i] = (uint8_t)(test_random() >> 56);
		if (fp16)
			npu_weight_tile_from_rows_f16((uint16_t *)(void *)tile, (const uint16_t *)(void *)b, k, n, k, n0, nt, k0, kt);
		else
			npu_weight_tile_from_rows_i8((int8_t *)tile, (const int8_t *)b, k, n, k, n0, nt, k0, kt);
		for (unsigned i = 0; i < nt; i++)
			for (unsigned j = 0; j < kt; j++) {
				/* [nt / g][kt / 32][g][32] written out by hand */
				size_t index = (size_t)(i / g) * (kt / 32) * g * 32 + (size_t)(j / 32) * g * 32 + (i % g) * 32 + j % 32;
				unsigned row = n0 + i, col = k0 + j;
				for (size_t byte = 0; byte < bpe; byte++) {
					uint8_t expected = row < n && col < k ? b[((size_t)row * k + col) * bpe + byte] : 0;
					CHECK(tile[index * bpe + byte] == expected, "weight tile (%u,%u) of %ux%u at %u,%u", i, j, nt, kt,
					      n0, k0);
				}
			}
		if (fp16)
			npu_weight_rows_from_tile_f16((uint16_t *)(void *)back, k, (const uint16_t *)(void *)tile, n, k, n0, nt, k0, kt);
		else
			npu_weight_rows_from_tile_i8((int8_t *)back, k, (const int8_t *)tile, n, k, n0, nt, k0, kt);
		for (unsigned row = n0; row < n0 + nt && row < n; row++)
			for (unsigned col = k0; col < k0 + kt && col < k; col++)
				CHECK(memcmp(back + ((size_t)row * k + col) * bpe, b + ((size_t)row * k + col) * bpe, bpe) == 0,
				      "weight round trip (%u,%u)", row, col);
		free(b);
		free(tile);
		free(back);
	}
}

static void check_quantize(void)
{
	for (int round = 0; round < 40; round++) {
		unsigned rows = 1 + test_random_below(20), cols = 1 + test_random_below(500);
		float *x = malloc((size_t)rows * cols * sizeof *x);
		for (size_t i = 0; i < (size_t)rows * cols; i++)
			x[i] = (float)(int32_t)(test_random() >> 32) / 1e8f;
		if (round == 0)
			memset(x, 0, cols * sizeof *x); /* an all-zero row */
		int8_t *q[2];
		float *scales[2];
		for (unsigned v = 0; v < variant_count; v++) {
			q[v] = malloc((size_t)rows * cols);
			scales[v] = malloc(rows * sizeof(float));
			variants[v]->quantize_rows_i8(q[v], scales[v], x, rows, cols);
			for (unsigned m = 0; m < rows; m++) {
				int peak = 0;
				for (unsigned c = 0; c < cols; c++) {
					float value = x[(size_t)m * cols + c], s = scales[v][m];
					int8_t got = q[v][(size_t)m * cols + c];
					CHECK(fabsf(value - got * s) <= s * 0.5001f + 1e-30f, "%s quantize row %u col %u: %g -> %d x %g",
					      variants[v]->name, m, c, (double)value, got, (double)s);
					peak = abs(got) > peak ? abs(got) : peak;
				}
				CHECK(peak == (scales[v][m] > 0 ? 127 : 0), "%s row %u peak %d", variants[v]->name, m, peak);
			}
		}
		if (variant_count == 2) {
			CHECK(memcmp(q[0], q[1], (size_t)rows * cols) == 0, "NEON and portable quantization differ");
			CHECK(memcmp(scales[0], scales[1], rows * sizeof(float)) == 0, "NEON and portable scales differ");
		}
		for (unsigned v = 0; v < variant_count; v++) {
			free(q[v]);
			free(scales[v]);
		}
		free(x);
	}
}

int main(void)
{
	test_seed("layout");
	variants[variant_count++] = npu_layout_ops_portable();
	if (npu_layout_ops_neon())
		variants[variant_count++] = npu_layout_ops_neon();
	printf("layout: variants:");
	for (unsigned v = 0; v < variant_count; v++)
		printf(" %s", variants[v]->name);
	printf("\n");
#if defined(__aarch64__)
	CHECK(variant_count == 2 && npu_layout_ops() == npu_layout_ops_neon(), "aarch64 build must use NEON");
#endif
	check_fp16_conversion();
	check_feature(0);
	check_feature(1);
	check_output(0);
	check_output(1);
	check_scaled_output();
	check_weights();
	check_quantize();
	printf("layout: ok\n");
	return 0;
}
