/* SPDX-License-Identifier: MIT */
/*
 * CPU side of an NPU GEMM: layout conversion and activation quantization throughput as a ratio of
 * memcpy on the same buffers, and the expected CPU cost per prefill token for qwen2.5-1.5B shapes.
 * Not a test: prints figures measured in this run. Run through bench/npu-layout (x86 and qemu).
 *
 * Per GEMM of a prefill chunk of M tokens, the CPU does (INT8 path, npu_gemm_f32): quantize the f32
 * activations per row, convert them to NC1HWC2, then gather the int32 NC1HWC2 output back to f32
 * rows scaled by row x column scale (one fused pass). FP16 path: f32 -> fp16, NC1HWC2, gather f32.
 * K-tile partial sums (K > 4096 int8) add one int32 gather per extra tile; not in these figures.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "npu/jobs.h"
#include "npu/layout.h"
#include "npu/npu.h"

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double min_seconds = 0.15;
static volatile unsigned sink;

/* Seconds per call: best of repeated runs lasting min_seconds in total. */
#define MEASURE(result, statement)                                    \
	do {                                                          \
		double best_ = 1e30, start_ = now();                  \
		int runs_ = 0;                                        \
		while (runs_ < 3 || now() - start_ < min_seconds) {   \
			double t0_ = now();                           \
			statement;                                    \
			double t_ = now() - t0_;                      \
			best_ = t_ < best_ ? t_ : best_;              \
			runs_++;                                      \
		}                                                     \
		(result) = best_;                                     \
	} while (0)

struct costs {
	double in_int8, out_int8, in_fp16, out_fp16; /* seconds per call for M rows */
};

/* CPU work around one GEMM of m rows, K inputs, N outputs; prints the ratios to memcpy. */
static struct costs measure_gemm_io(unsigned m, unsigned k, unsigned n, int print)
{
	const struct npu_layout_ops *ops = npu_layout_ops();
	struct npu_weight_plan w8, w16;
	struct npu_row_plan r8, r16;
	if (npu_plan_weights(NPU_INT8, n, k, 1, &w8) || npu_plan_rows(&w8, m, &r8) ||
	    npu_plan_weights(NPU_FP16, n, k, 1, &w16) || npu_plan_rows(&w16, m, &r16)) {
		fprintf(stderr, "plan failed: %s\n", npu_error());
		exit(1);
	}
	size_t in_count = (size_t)m * k, out_count = (size_t)m * n;
	float *x = malloc(in_count * 4), *y = malloc(out_count * 4), *scales = malloc(m * 4), *cscale = malloc(n * 4);
	int8_t *q = malloc(in_count);
	uint16_t *h = malloc(in_count * 2);
	uint8_t *feature = malloc(npu_feature_bytes(&w16, &r16)), *copy = malloc(out_count * 4 + in_count * 4);
	uint8_t *output = malloc(npu_output_bytes(r8.mp, w8.np));
	for (size_t i = 0; i < in_count; i++)
		x[i] = (float)((int)(i * 2654435761u % 2001) - 1000) / 100.0f;
	for (unsigned j = 0; j < n; j++)
		cscale[j] = 0.01f;
	memset(output, 1, npu_output_bytes(r8.mp, w8.np));

	double t_copy_f32, t_copy_i8, t_copy_f16, t_copy_out, t_quant, t_layout8, t_f16, t_layout16, t_gather8,
		t_gather32;
	MEASURE(t_copy_f32, memcpy(copy, x, in_count * 4); sink += copy[7]);
	MEASURE(t_copy_i8, memcpy(copy, q, in_count); sink += copy[7]);
	MEASURE(t_copy_f16, memcpy(copy, h, in_count * 2); sink += copy[7]);
	MEASURE(t_copy_out, memcpy(copy, output, out_count * 4); sink += copy[7]);
	MEASURE(t_quant, ops->quantize_rows_i8(q, scales, x, m, k); sink += (unsigned)q[3]);
	MEASURE(t_layout8, ops->feature_from_rows_i8(feature, q, m, k, k, r8.mp, w8.kp); sink += feature[5]);
	MEASURE(t_f16, ops->f32_to_fp16(h, x, in_count); sink += h[3]);
	MEASURE(t_layout16, ops->feature_from_rows_f16(feature, h, m, k, k, r16.mp, w16.kp); sink += feature[5]);
	struct npu_partials partials = {output, 1, 0, m, n, r8.mp};
	struct npu_partial_scales output_scales = {scales, m, cscale, n};
	MEASURE(t_gather8, ops->rows_from_output_i32_scaled(y, n, &partials, &output_scales); sink += (unsigned)y[1]);
	MEASURE(t_gather32, ops->rows_from_output_f32(y, n, &partials); sink += (unsigned)y[1]);
	if (print) {
		printf("  M=%u K=%u N=%u (%s):\n", m, k, n, ops->name);
		printf("    %-44s %8.3f ms  %5.2fx memcpy of the f32 input\n", "quantize f32 -> int8 (per row)", t_quant * 1e3,
		       t_quant / t_copy_f32);
		printf("    %-44s %8.3f ms  %5.2fx memcpy of the int8 input\n", "int8 rows -> NC1HWC2", t_layout8 * 1e3,
		       t_layout8 / t_copy_i8);
		printf("    %-44s %8.3f ms  %5.2fx memcpy of the f32 input\n", "f32 -> fp16", t_f16 * 1e3, t_f16 / t_copy_f32);
		printf("    %-44s %8.3f ms  %5.2fx memcpy of the fp16 input\n", "fp16 rows -> NC1HWC2", t_layout16 * 1e3,
		       t_layout16 / t_copy_f16);
		printf("    %-44s %8.3f ms  %5.2fx memcpy of the output\n", "int32 NC1HWC2 -> f32 rows x row x col scale",
		       t_gather8 * 1e3, t_gather8 / t_copy_out);
		printf("    %-44s %8.3f ms  %5.2fx memcpy of the output\n", "fp32 NC1HWC2 -> rows", t_gather32 * 1e3,
		       t_gather32 / t_copy_out);
	}
	struct costs c = {t_quant + t_layout8, t_gather8, t_f16 + t_layout16, t_gather32};
	free(x), free(y), free(scales), free(cscale), free(q), free(h), free(feature), free(copy), free(output);
	return c;
}

int main(int argc, char **argv)
{
	unsigned m = 512;
	if (argc > 1)
		m = (unsigned)atoi(argv[1]);
	if (argc > 2)
		min_seconds = atof(argv[2]);
	if (m == 0 || min_seconds <= 0) {
		fprintf(stderr, "usage: npu-layout-bench [CHUNK_ROWS] [MIN_SECONDS]\n");
		return 2;
	}
	/* qwen2.5-1.5B (config.json): hidden 1536, intermediate 8960, 28 layers, 12 query heads and 2
	 * key/value heads of dimension 128 -> q/o 1536 x 1536, k and v 1536 x 256. */
	const unsigned hidden = 1536, ffn = 8960, layers = 28, kv = 2 * 128;
	struct {
		const char *name;
		unsigned k, n, per_layer;
	} gemms[] = {
		{"q_proj", hidden, hidden, 1}, {"k_proj", hidden, kv, 1},      {"v_proj", hidden, kv, 1},
		{"o_proj", hidden, hidden, 1}, {"gate_proj", hidden, ffn, 1},  {"up_proj", hidden, ffn, 1},
		{"down_proj", ffn, hidden, 1},
	};
	printf("npu-layout-bench: prefill chunk of %u tokens, layout ops '%s'\n", m, npu_layout_ops()->name);
	printf("conversion throughput relative to memcpy of the same buffer (lower is better; 1.00 = memcpy speed):\n");
	measure_gemm_io(m, hidden, ffn, 1);
	measure_gemm_io(m, ffn, hidden, 1);
	double int8_total = 0, fp16_total = 0, int8_shared = 0;
	for (unsigned i = 0; i < sizeof gemms / sizeof gemms[0]; i++) {
		struct costs c = measure_gemm_io(m, gemms[i].k, gemms[i].n, 0);
		int8_total += (c.in_int8 + c.out_int8) * gemms[i].per_layer;
		fp16_total += (c.in_fp16 + c.out_fp16) * gemms[i].per_layer;
		/* q/k/v share one input and gate/up another: convert once, reuse */
		int shared = strcmp(gemms[i].name, "k_proj") == 0 || strcmp(gemms[i].name, "v_proj") == 0 ||
			     strcmp(gemms[i].name, "up_proj") == 0;
		int8_shared += (shared ? 0 : c.in_int8) + c.out_int8;
	}
	printf("expected CPU cost per prefill token, qwen2.5-1.5B (%u layers, 7 GEMMs per layer, single thread):\n",
	       layers);
	printf("  INT8 path, activations converted per GEMM:        %8.1f us/token  (%.1f ms per %u-token chunk)\n",
	       int8_total * layers / m * 1e6, int8_total * layers * 1e3, m);
	printf("  INT8 path, q/k/v and gate/up inputs converted once: %6.1f us/token\n", int8_shared * layers / m * 1e6);
	printf("  FP16 path, activations converted per GEMM:        %8.1f us/token\n", fp16_total * layers / m * 1e6);
	return sink == 0xdeadbeef;
}
