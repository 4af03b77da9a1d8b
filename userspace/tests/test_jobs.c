/* SPDX-License-Identifier: MIT */
/* Job builder: tiling invariants over random shapes, and every impossible request rejected with an
 * error naming the bad value. */
#include <string.h>

#include "npu/jobs.h"
#include "npu_interpreter.h"
#include "support.h"

static void check_plan_invariants(void)
{
	uint64_t *words = malloc(NPU_TASK_WORDS * sizeof *words);
	for (int round = 0; round < 3000; round++) {
		enum npu_precision precision = round % 2 ? NPU_FP16 : NPU_INT8;
		unsigned n = 1 + test_random_below(round % 3 ? 300 : 20000);
		unsigned k = 1 + test_random_below(round % 5 ? 400 : 20000);
		unsigned m = 1 + test_random_below(round % 7 ? 100 : 5000);
		unsigned lanes = 1 + test_random_below(3);
		struct npu_weight_plan w;
		struct npu_row_plan r;
		CHECK_OK(npu_plan_weights(precision, n, k, lanes, &w));
		int status = npu_plan_rows(&w, m, &r);
		if (status == NPU_ERR_LIMIT) { /* only when a buffer really passes 1 GiB of the window */
			uint64_t output = (uint64_t)w.k_tiles * ((m + 3) / 4 * 4) * w.np * 4;
			CHECK(output > (UINT64_C(1) << 30), "M=%u N=%u K=%u refused: %s", m, n, k, npu_error());
			continue;
		}
		CHECK(status == NPU_OK, "npu_plan_rows: %s", npu_error());
		unsigned group = precision == NPU_INT8 ? 32 : 16;
		CHECK(w.np >= n && w.np % group == 0 && w.np - n < group, "np %u for n %u", w.np, n);
		CHECK(w.kp >= k && w.kp % 32 == 0 && w.kp - k < 32, "kp %u for k %u", w.kp, k);
		CHECK(r.mp >= m && r.mp % 4 == 0 && r.mp - m < 4, "mp %u for m %u", r.mp, m);
		CHECK(w.n_tiles >= (lanes < w.np / group ? lanes : w.np / group), "n=%u split in %u tiles for %u lanes", n,
		      w.n_tiles, lanes);
		unsigned covered = 0;
		for (unsigned j = 0; j < w.n_tiles; j++) {
			unsigned n0, nt = npu_plan_n_tile(&w, j, &n0);
			CHECK(n0 == covered && nt > 0 && nt % group == 0, "n tile %u: %u at %u", j, nt, n0);
			covered += nt;
		}
		CHECK(covered == w.np, "n tiles cover %u of %u", covered, w.np);
		covered = 0;
		for (unsigned i = 0; i < w.k_tiles; i++) {
			unsigned k0, kt = npu_plan_k_tile(&w, i, &k0);
			CHECK(k0 == covered && kt > 0 && kt % 32 == 0, "k tile %u", i);
			covered += kt;
		}
		CHECK(covered == w.kp, "k tiles cover %u of %u", covered, w.kp);
		covered = 0;
		for (unsigned i = 0; i < r.m_tiles; i++) {
			unsigned m0, mt = npu_plan_m_tile(&r, i, &m0);
			CHECK(m0 == covered && mt > 0 && mt % 4 == 0 && mt <= npu_task_max_rows(precision), "m tile %u", i);
			covered += mt;
		}
		CHECK(covered == r.mp, "m tiles cover %u of %u", covered, r.mp);
		/* the largest task of the plan must pass the emitter's CBUF and field checks */
		struct npu_task_geometry g = {precision, r.mt, w.nt, w.kt, r.mp, r.mp, 0x1000, 0x2000, 0x3000};
		CHECK_OK(npu_emit_gemm_task(&g, words));
		CHECK(npu_model_check_task(words, NPU_TASK_WORDS) == NPU_OK, "M=%u N=%u K=%u: the model refuses the "
		      "plan's largest task: %s", m, n, k, npu_error());
	}
	free(words);
}

/* Every task shape a plan can give, checked by the model's own reading of the registers: each K group
 * the backend accepts (32 to 4096 in steps of 32) and plain K tiling in both precisions, rows around
 * the CBUF entry and bank boundaries and the row caps, N from one kernel group to several tiles. */
static unsigned check_tasks_of(enum npu_precision precision, unsigned n, unsigned k, unsigned k_group, unsigned m,
			       uint64_t *words)
{
	struct npu_weight_plan w;
	struct npu_row_plan r;
	CHECK_OK(npu_plan_weights_grouped(precision, n, k, k_group, 1, &w));
	CHECK_OK(npu_plan_rows(&w, m, &r));
	unsigned checked = 0;
	/* first and last tile of each dimension: the only distinct sizes a plan has */
	unsigned n_tiles[2] = {0, w.n_tiles - 1}, k_tiles[2] = {0, w.k_tiles - 1}, m_tiles[2] = {0, r.m_tiles - 1};
	for (unsigned a = 0; a < 2; a++)
		for (unsigned b = 0; b < 2; b++)
			for (unsigned c = 0; c < 2; c++) {
				unsigned nt = npu_plan_n_tile(&w, n_tiles[a], NULL), kt = npu_plan_k_tile(&w, k_tiles[b], NULL);
				unsigned mt = npu_plan_m_tile(&r, m_tiles[c], NULL);
				struct npu_task_geometry g = {precision, mt, nt, kt, r.mp, r.mp, 0x1000, 0x2000, 0x3000};
				CHECK(npu_emit_gemm_task(&g, words) == NPU_OK, "%s N=%u K=%u k_group=%u M=%u: task M=%u N=%u "
				      "K=%u: %s", precision == NPU_INT8 ? "int8" : "fp16", n, k, k_group, m, mt, nt, kt,
				      npu_error());
				CHECK(npu_model_check_task(words, NPU_TASK_WORDS) == NPU_OK, "%s N=%u K=%u k_group=%u M=%u: "
				      "the model refuses task M=%u N=%u K=%u: %s", precision == NPU_INT8 ? "int8" : "fp16", n,
				      k, k_group, m, mt, nt, kt, npu_error());
				checked++;
			}
	return checked;
}

static void check_every_k_group_against_the_model(void)
{
	static const unsigned rows[] = {1, 4, 255, 256, 257, 383, 384, 385, 543, 544, 545, 1020, 1021, 3001};
	static const unsigned kernels[] = {32, 96, 1536, 8960};
	uint64_t *words = malloc(NPU_TASK_WORDS * sizeof *words);
	unsigned tasks = 0;
	for (unsigned group = 32; group <= 4096; group += 32)
		for (unsigned i = 0; i < sizeof rows / sizeof rows[0]; i++)
			for (unsigned j = 0; j < sizeof kernels / sizeof kernels[0]; j++) {
				/* one full group and a short last one; K not a multiple of 64 when the group is not */
				tasks += check_tasks_of(NPU_INT8, kernels[j], group + 32, group, rows[i], words);
				tasks += check_tasks_of(NPU_FP16, kernels[j], group + 32, 0, rows[i], words);
			}
	free(words);
	printf("jobs: the model accepts all %u tasks of 128 K groups x %zu row counts x %zu N in both precisions\n",
	       tasks, sizeof rows / sizeof rows[0], sizeof kernels / sizeof kernels[0]);
}

static void check_rejections(void)
{
	struct npu_weight_plan w;
	struct npu_row_plan r;
	CHECK_FAILS(npu_plan_weights((enum npu_precision)7, 4, 4, 1, &w), NPU_ERR_INVALID, "precision 7");
	CHECK_FAILS(npu_plan_weights(NPU_INT8, 0, 64, 1, &w), NPU_ERR_INVALID, "N=0");
	CHECK_FAILS(npu_plan_weights(NPU_FP16, 64, 0, 1, &w), NPU_ERR_INVALID, "K=0");
	CHECK_FAILS(npu_plan_weights(NPU_INT8, 64, (1u << 20) + 1, 1, &w), NPU_ERR_LIMIT, "K=1048577");
	CHECK_FAILS(npu_plan_weights(NPU_INT8, 65536, 65536, 1, &w), NPU_ERR_LIMIT, "N=65536 K=65536");
	CHECK_FAILS(npu_plan_weights_grouped(NPU_INT8, 64, 640, 100, 1, &w), NPU_ERR_INVALID, "K group 100");
	CHECK_FAILS(npu_plan_weights_grouped(NPU_INT8, 64, 640, 8192, 1, &w), NPU_ERR_INVALID, "at most 4096");
	CHECK_OK(npu_plan_weights_grouped(NPU_INT8, 64, 1000, 128, 1, &w));
	CHECK(w.k_grouped && w.kt == 128 && w.k_tiles == 8 && npu_plan_k_tile(&w, 7, NULL) == 1024 - 7 * 128,
	      "grouped plan K=1000 group 128: kt %u, %u tiles", w.kt, w.k_tiles);
	CHECK_OK(npu_plan_weights(NPU_INT8, 64, 64, 1, &w));
	CHECK_FAILS(npu_plan_rows(&w, 0, &r), NPU_ERR_INVALID, "M=0");
	CHECK_OK(npu_plan_weights(NPU_FP16, 4096, 65536, 1, &w));
	CHECK_FAILS(npu_plan_rows(&w, 9000, &r), NPU_ERR_LIMIT, "M=9000");

	uint64_t words[NPU_TASK_WORDS];
	struct npu_task_geometry good = {NPU_INT8, 64, 64, 256, 64, 64, 0, 0x10000, 0x20000}, bad;
	CHECK_OK(npu_emit_gemm_task(&good, words));
	bad = good, bad.mt = 0;
	CHECK_FAILS(npu_emit_gemm_task(&bad, words), NPU_ERR_INVALID, "rows 0");
	bad = good, bad.mt = 1024, bad.feature_rows = bad.output_rows = 1024;
	CHECK_FAILS(npu_emit_gemm_task(&bad, words), NPU_ERR_INVALID, "rows 1024");
	bad = good, bad.kt = 33;
	CHECK_FAILS(npu_emit_gemm_task(&bad, words), NPU_ERR_INVALID, "K=33");
	bad = good, bad.kt = 4128;
	CHECK_FAILS(npu_emit_gemm_task(&bad, words), NPU_ERR_INVALID, "K=4128");
	bad = good, bad.precision = NPU_FP16, bad.kt = 2080;
	CHECK_FAILS(npu_emit_gemm_task(&bad, words), NPU_ERR_INVALID, "K=2080");
	bad = good, bad.nt = 48;
	CHECK_FAILS(npu_emit_gemm_task(&bad, words), NPU_ERR_INVALID, "N=48");
	bad = good, bad.nt = 4128;
	CHECK_FAILS(npu_emit_gemm_task(&bad, words), NPU_ERR_INVALID, "N=4128");
	bad = good, bad.output_address = 0x20008;
	CHECK_FAILS(npu_emit_gemm_task(&bad, words), NPU_ERR_INVALID, "output 0x20008");
	bad = good, bad.feature_rows = 66;
	CHECK_FAILS(npu_emit_gemm_task(&bad, words), NPU_ERR_INVALID, "66");
	bad = good, bad.mt = 545, bad.feature_rows = bad.output_rows = 548;
	CHECK_FAILS(npu_emit_gemm_task(&bad, words), NPU_ERR_INVALID, "rows 545");
	bad = good, bad.precision = NPU_FP16, bad.nt = 64, bad.mt = 388, bad.feature_rows = bad.output_rows = 388;
	CHECK_FAILS(npu_emit_gemm_task(&bad, words), NPU_ERR_INVALID, "rows 388");
	bad = good, bad.mt = 544, bad.kt = 4096, bad.feature_rows = bad.output_rows = 544;
	CHECK_FAILS(npu_emit_gemm_task(&bad, words), NPU_ERR_LIMIT, "does not fit CBUF");
	bad = good, bad.nt = 1024, bad.kt = 1024;
	CHECK_FAILS(npu_emit_gemm_task(&bad, words), NPU_ERR_LIMIT, "1048576 weight bytes");

	struct npu_dev *dev = test_open_model(3);
	int8_t b[64 * 64] = {0};
	struct npu_weight *weight = NULL;
	CHECK_FAILS(npu_weight_prepare(dev, NPU_INT8, 0, 64, b, NULL, &weight), NPU_ERR_INVALID, "N=0");
	struct npu_weight_options lane5 = {.placement = NPU_PLACE_LANE, .lane = 5};
	CHECK_FAILS(npu_weight_prepare(dev, NPU_INT8, 64, 64, b, &lane5, &weight), NPU_ERR_INVALID, "lane 5");
	struct npu_weight_options fp16_groups = {.placement = NPU_PLACE_SPLIT_N, .k_group = 64};
	CHECK_FAILS(npu_weight_prepare(dev, NPU_FP16, 64, 64, b, &fp16_groups, &weight), NPU_ERR_INVALID,
		    "apply to INT8 weights only");
	CHECK_OK(npu_weight_prepare(dev, NPU_INT8, 64, 64, b, NULL, &weight));
	int32_t c[64];
	CHECK_FAILS(npu_gemm(dev, weight, 0, b, c, NULL), NPU_ERR_INVALID, "M=0");
	CHECK_FAILS(npu_gemm(dev, weight, 1, NULL, c, NULL), NPU_ERR_INVALID, "NULL");
	npu_weight_free(dev, weight);
	npu_close(dev);
}

int main(void)
{
	test_seed("jobs");
	check_rejections();
	check_every_k_group_against_the_model();
	check_plan_invariants();
	printf("jobs: ok\n");
	return 0;
}
