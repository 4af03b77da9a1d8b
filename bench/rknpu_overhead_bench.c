/* SPDX-License-Identifier: MIT */
/*
 * The CPU's share of ggml-rknpu's work per prefill token, for the weight matmuls of one qwen2.5-1.5B
 * layer, as a ratio of what the CPU backend spends on the same matmuls itself (Q4_K weights, f32
 * activations, all threads). The CPU's share is what npu_gemm_f32 spends outside SUBMIT and the wait for
 * the jobs: activation quantization (INT8 in K groups, as the backend's default), the feature layout,
 * register commands, gathering and dequantizing the partial sums. The software model stands in for the
 * NPU; its own time is excluded, and compared with the CPU backend's as the model's throughput. The
 * conversion runs on as many threads as the CPU backend (npu_set_threads).
 * Of that share, the part left exposed (no job in flight: npu_gemm_stats.exposed_seconds) is measured
 * twice, the call in one wave of rows and in waves of WAVE_ROWS (npu_set_wave_rows), where the CPU
 * converts and gathers one wave while the NPU has another. Not a test.
 * Usage: rknpu-overhead-bench [ROWS (512)] [REPEATS (3)] [INT8 K group (0 = per row) or "fp16" (256)]
 *        [WAVE_ROWS (128)]
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ggml-backend.h"
#include "ggml-cpu.h"
#include "ggml.h"
#include "npu/npu.h"


struct shape {
	const char *name;
	unsigned n, k; /* output channels, input channels */
};

/* qwen2.5-1.5B: hidden 1536, 2 KV heads of 128, FFN 8960. */
static const struct shape shapes[] = {
	{"attn_q", 1536, 1536}, {"attn_k", 256, 1536},   {"attn_v", 256, 1536},  {"attn_output", 1536, 1536},
	{"ffn_gate", 8960, 1536}, {"ffn_up", 8960, 1536}, {"ffn_down", 1536, 8960},
};

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void fill(float *x, size_t count, unsigned seed)
{
	for (size_t i = 0; i < count; i++) {
		seed = seed * 1103515245u + 12345u;
		x[i] = (float)((seed >> 9) & 0xffff) / 32768.0f - 1.0f;
	}
}

/* Best wall time of the CPU backend's MUL_MAT with Q4_K weights. */
static double cpu_matmul_seconds(ggml_backend_t cpu, const struct shape *s, unsigned rows, const float *w,
				 const float *x, int repeats)
{
	struct ggml_init_params params = {.mem_size = 8 * ggml_tensor_overhead() + ggml_graph_overhead(),
					  .no_alloc = true};
	struct ggml_context *ctx = ggml_init(params);
	struct ggml_tensor *weight = ggml_new_tensor_2d(ctx, GGML_TYPE_Q4_K, s->k, s->n);
	struct ggml_tensor *input = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, s->k, rows);
	struct ggml_tensor *output = ggml_mul_mat(ctx, weight, input);
	struct ggml_cgraph *graph = ggml_new_graph(ctx);
	ggml_build_forward_expand(graph, output);
	ggml_backend_buffer_t buffer = ggml_backend_alloc_ctx_tensors(ctx, cpu);
	void *quantized = malloc(ggml_nbytes(weight));
	ggml_quantize_chunk(GGML_TYPE_Q4_K, w, quantized, 0, s->n, s->k, NULL);
	ggml_backend_tensor_set(weight, quantized, 0, ggml_nbytes(weight));
	ggml_backend_tensor_set(input, x, 0, ggml_nbytes(input));
	double best = 1e30;
	for (int r = 0; r < repeats; r++) {
		double start = now();
		ggml_backend_graph_compute(cpu, graph);
		double took = now() - start;
		best = took < best ? took : best;
	}
	free(quantized);
	ggml_backend_buffer_free(buffer);
	ggml_free(ctx);
	return best;
}

/* Best of `repeats` calls of npu_gemm_f32 on the software model. */
struct npu_figures {
	double host;    /* CPU share: wall minus device time */
	double exposed; /* of which with no wave in flight */
	double device;  /* the model's time */
};

static void keep_best(struct npu_figures *best, const struct npu_gemm_stats *stats, int first)
{
	double host = stats->seconds - stats->device_seconds;
	best->host = first || host < best->host ? host : best->host;
	best->exposed = first || stats->exposed_seconds < best->exposed ? stats->exposed_seconds : best->exposed;
	best->device = first || stats->device_seconds < best->device ? stats->device_seconds : best->device;
}

/* The call in one wave, then in waves of wave_rows: figures of each. */
static void npu_figures(struct npu_dev *dev, const struct shape *s, unsigned rows, int fp16, unsigned group_size,
			unsigned wave_rows, const float *w, const float *x, int repeats, struct npu_figures out[2])
{
	const unsigned group = group_size ? group_size : s->k, groups = (s->k + group - 1) / group;
	int8_t *q = malloc((size_t)s->n * s->k * 2); /* int8, or fp16 bits */
	float *scales = malloc((size_t)s->n * groups * sizeof(float)), *c = malloc((size_t)rows * s->n * sizeof(float));
	struct npu_weight_options options = {.placement = NPU_PLACE_SPLIT_N, .k_group = fp16 ? 0 : group_size};
	struct npu_weight *weight;
	if (fp16)
		npu_f32_to_fp16_array((uint16_t *)(void *)q, w, (size_t)s->n * s->k);
	else
		npu_quantize_groups_i8(q, scales, groups, 1, w, s->n, s->k, group);
	if (npu_weight_prepare(dev, fp16 ? NPU_FP16 : NPU_INT8, s->n, s->k, q, &options, &weight) ||
	    (!fp16 && npu_weight_set_column_scales(weight, scales))) {
		fprintf(stderr, "%s: %s\n", s->name, npu_error());
		exit(1);
	}
	const unsigned waves[2] = {rows, wave_rows};
	for (int v = 0; v < 2; v++) {
		npu_set_wave_rows(dev, waves[v]);
		for (int r = 0; r < repeats; r++) {
			struct npu_gemm_stats stats;
			if (npu_gemm_f32(dev, weight, rows, x, c, &stats)) {
				fprintf(stderr, "%s: %s\n", s->name, npu_error());
				exit(1);
			}
			keep_best(&out[v], &stats, r == 0);
		}
	}
	npu_weight_free(dev, weight);
	free(q), free(scales), free(c);
}

int main(int argc, char **argv)
{
	unsigned rows = argc > 1 ? (unsigned)atoi(argv[1]) : 512;
	int repeats = argc > 2 ? atoi(argv[2]) : 3;
	int fp16 = argc > 3 && strcmp(argv[3], "fp16") == 0;
	unsigned group = argc > 3 && !fp16 ? (unsigned)atoi(argv[3]) : 256;
	unsigned wave_rows = argc > 4 ? (unsigned)atoi(argv[4]) : 128;
	if (!wave_rows) {
		fprintf(stderr, "WAVE_ROWS must be at least 1\n");
		return 2;
	}
	int threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
	struct npu_open_options open = {.backend = NPU_BACKEND_MODEL};
	struct npu_dev *dev;
	ggml_backend_t cpu = ggml_backend_cpu_init();

	if (!cpu || npu_open(&dev, &open)) {
		fprintf(stderr, "cannot open the CPU backend or the software NPU model: %s\n", npu_error());
		return 1;
	}
	ggml_backend_cpu_set_n_threads(cpu, threads);
	npu_set_threads(dev, (unsigned)threads);
	printf("one qwen2.5-1.5B layer, %u rows (prefill tokens), best of %d; CPU backend: Q4_K, %d threads; "
	       "ggml-rknpu: %s on the software model\n", rows, repeats, threads,
	       fp16 ? "FP16" : group ? "INT8 in K groups" : "INT8, one scale per row");
	printf("%-12s %6s %6s %9s %13s %7s %20s %10s\n", "matmul", "N", "K", "CPU ms", "rknpu CPU ms", "ratio",
	       "exposed ms 1 wave/N", "model ms");
	double cpu_total = 0, host_total = 0, model_total = 0, exposed_total[2] = {0, 0};
	for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
		const struct shape *s = &shapes[i];
		float *w = malloc((size_t)s->n * s->k * sizeof(float)), *x = malloc((size_t)rows * s->k * sizeof(float));
		struct npu_figures npu[2];
		fill(w, (size_t)s->n * s->k, 1 + (unsigned)i);
		fill(x, (size_t)rows * s->k, 100 + (unsigned)i);
		double cpu_seconds = cpu_matmul_seconds(cpu, s, rows, w, x, repeats);
		npu_figures(dev, s, rows, fp16, group, wave_rows, w, x, repeats, npu);
		printf("%-12s %6u %6u %9.2f %13.2f %7.3f %9.2f / %8.2f %10.0f\n", s->name, s->n, s->k, cpu_seconds * 1e3,
		       npu[1].host * 1e3, npu[1].host / cpu_seconds, npu[0].exposed * 1e3, npu[1].exposed * 1e3,
		       npu[1].device * 1e3);
		cpu_total += cpu_seconds;
		host_total += npu[1].host;
		model_total += npu[1].device;
		exposed_total[0] += npu[0].exposed;
		exposed_total[1] += npu[1].exposed;
		free(w), free(x);
	}
	printf("per prefill token: CPU backend %.1f us, ggml-rknpu's CPU share %.1f us: ratio %.3f (goal <= 0.15)\n",
	       cpu_total / rows * 1e6, host_total / rows * 1e6, host_total / cpu_total);
	printf("not hidden behind the NPU: one wave %.1f us per token (ratio %.3f), waves of %u rows %.1f us (ratio %.3f; "
	       "goal <= 0.10)\n", exposed_total[0] / rows * 1e6, exposed_total[0] / cpu_total, wave_rows,
	       exposed_total[1] / rows * 1e6, exposed_total[1] / cpu_total);
	printf("software model: %.1f us per token, %.3f of the CPU backend's matmul throughput (goal >= 0.25)\n",
	       model_total / rows * 1e6, cpu_total / model_total);
	npu_close(dev);
	ggml_backend_free(cpu);
	return 0;
}
