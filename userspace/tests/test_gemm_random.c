/* SPDX-License-Identifier: MIT */
/*
 * Randomized GEMMs through the whole library on the software model: weights prepared and placed
 * (split over lanes or on one lane), activations converted, register commands built, interpreted,
 * outputs gathered. INT8 must equal the plain C reference exactly; FP16 must stay within the fp32
 * accumulation bound (k + 2) * 2^-24 * sum |a b| (docs/npu-userspace.md). Group-wise INT8 (k_group) is
 * compared bit for bit too: per group the exact int32 sum, scaled and added in group order.
 * Shapes: fixed edge cases (tile boundaries, K and M splits), then random ones from 1 to a few
 * thousand per dimension until a multiply-accumulate budget (scaled by NPU_TEST_BUDGET) is spent.
 */
#include <math.h>
#include <string.h>

#include "npu/jobs.h"
#include "npu_internal.h" /* NPU_DEFAULT_WAVE_ROWS */
#include "support.h"

struct shape {
	enum npu_precision precision;
	unsigned m, n, k;
	unsigned k_group; /* INT8: quantization groups along K, 0 = one per row */
};

/* Exact int32 sums of K channels [k0, k0 + length) of A (m x k) and B (n x k). */
static void reference_group_sums(int32_t *sums, const int8_t *a, const int8_t *b, unsigned m, unsigned n, unsigned k,
				 unsigned k0, unsigned length)
{
	for (unsigned i = 0; i < m; i++)
		for (unsigned j = 0; j < n; j++) {
			int32_t acc = 0;
			for (unsigned c = k0; c < k0 + length; c++)
				acc += (int32_t)a[(size_t)i * k + c] * b[(size_t)j * k + c];
			sums[(size_t)i * n + j] = acc;
		}
}

/* npu_gemm_f32: f32 activations in, f32 out, converted by 1-5 threads. INT8: the library's own per-row
 * quantization, exact int32 sums, then (float)acc * row_scale * column_scale, so the result is compared
 * bit for bit; FP16: within the bound, and bit for bit with what one thread gives. */
static void check_f32_entry(struct npu_dev *dev, struct npu_weight *weight, const struct shape *s, const void *b,
			    unsigned index)
{
	size_t a_count = (size_t)s->m * s->k, c_count = (size_t)s->m * s->n;
	float *a = malloc(a_count * sizeof *a), *c = malloc(c_count * sizeof *c);
	for (size_t i = 0; i < a_count; i++)
		a[i] = (float)((int32_t)(test_random() >> 40) - (1 << 23)) / 65536.0f;
	unsigned threads = 1 + test_random_below(5);
	CHECK_OK(npu_set_threads(dev, threads));
	if (s->precision == NPU_INT8) {
		unsigned groups = npu_weight_k_groups(weight), group = s->k_group ? s->k_group : s->k;
		CHECK(groups == (s->k + group - 1) / group, "case %u: %u K groups for K=%u k_group=%u", index, groups, s->k,
		      s->k_group);
		float *column_scales = malloc((size_t)s->n * groups * sizeof(float)), *row_scales = malloc(s->m * sizeof(float));
		for (size_t j = 0; j < (size_t)s->n * groups; j++)
			column_scales[j] = (float)(1 + test_random_below(5000)) / 65536.0f;
		CHECK_OK(npu_weight_set_column_scales(weight, column_scales));
		CHECK_OK(npu_gemm_f32(dev, weight, s->m, a, c, NULL));
		int8_t *q = malloc(a_count);
		int32_t *sums = malloc(c_count * sizeof *sums);
		float *expected = malloc(c_count * sizeof *expected);
		for (unsigned g = 0; g < groups; g++) {
			unsigned k0 = g * group, length = s->k - k0 < group ? s->k - k0 : group;
			for (unsigned r = 0; r < s->m; r++)
				npu_quantize_rows_i8(q + (size_t)r * s->k + k0, &row_scales[r], a + (size_t)r * s->k + k0, 1, length);
			reference_group_sums(sums, q, b, s->m, s->n, s->k, k0, length);
			for (size_t i = 0; i < c_count; i++) {
				float value = (float)sums[i] * row_scales[i / s->n] * column_scales[(i % s->n) * groups + g];
				expected[i] = g ? expected[i] + value : value;
			}
		}
		for (size_t i = 0; i < c_count; i++)
			CHECK(memcmp(&c[i], &expected[i], 4) == 0, "case %u npu_gemm_f32 int8 M=%u N=%u K=%u k_group=%u threads=%u: "
			      "C[%zu] = %a, expected %a", index, s->m, s->n, s->k, s->k_group, threads, i, (double)c[i],
			      (double)expected[i]);
		free(column_scales), free(row_scales), free(q), free(sums), free(expected);
	} else {
		CHECK_OK(npu_gemm_f32(dev, weight, s->m, a, c, NULL));
		float *one_thread = malloc(c_count * sizeof *one_thread);
		CHECK_OK(npu_set_threads(dev, 1));
		CHECK_OK(npu_gemm_f32(dev, weight, s->m, a, one_thread, NULL));
		CHECK(memcmp(c, one_thread, c_count * sizeof *c) == 0, "case %u npu_gemm_f32 fp16 M=%u N=%u K=%u: %u threads "
		      "give another result than one", index, s->m, s->n, s->k, threads);
		free(one_thread);
		uint16_t *a16 = malloc(a_count * 2);
		double *expected = malloc(c_count * sizeof *expected), *bound = malloc(c_count * sizeof *bound);
		npu_f32_to_fp16_array(a16, a, a_count);
		reference_gemm_f16(expected, bound, a16, b, s->m, s->n, s->k);
		for (size_t i = 0; i < c_count; i++)
			CHECK(fabs(c[i] - expected[i]) <= bound[i], "case %u npu_gemm_f32 fp16 M=%u N=%u K=%u: C[%zu] = %g, "
			      "expected %g", index, s->m, s->n, s->k, i, (double)c[i], expected[i]);
		free(a16), free(expected), free(bound);
	}
	CHECK_OK(npu_set_threads(dev, 1));
	free(a), free(c);
}

static void run_case(struct npu_dev *devs[3], const struct shape *s, unsigned index)
{
	unsigned lanes = 1 + test_random_below(3);
	struct npu_dev *dev = devs[lanes - 1];
	struct npu_weight_options placement = {test_random_below(3) ? NPU_PLACE_SPLIT_N : NPU_PLACE_LANE,
					       test_random_below(lanes), s->k_group};
	size_t bpe = s->precision == NPU_INT8 ? 1 : 2;
	void *a = malloc((size_t)s->m * s->k * bpe), *b = malloc((size_t)s->n * s->k * bpe);
	void *c = malloc((size_t)s->m * s->n * 4);
	CHECK(a && b && c, "out of memory");
	if (s->precision == NPU_INT8) {
		test_fill_i8(a, (size_t)s->m * s->k);
		test_fill_i8(b, (size_t)s->n * s->k);
	} else {
		test_fill_f16(a, (size_t)s->m * s->k);
		test_fill_f16(b, (size_t)s->n * s->k);
	}
	struct npu_weight *weight = NULL;
	CHECK_OK(npu_weight_prepare(dev, s->precision, s->n, s->k, b, &placement, &weight));
	memset(c, 0x5a, (size_t)s->m * s->n * 4);
	/* waves of rows: one, the default's, or a few to many small ones; results must not change */
	static const unsigned wave_rows[] = {1u << 20, 128, 64, 17, 4};
	unsigned rows = wave_rows[test_random_below(5)];
	CHECK_OK(npu_set_wave_rows(dev, rows));
	struct npu_weight_plan plan; /* waves are whole M tiles */
	struct npu_row_plan row_plan;
	CHECK_OK(npu_plan_weights_grouped(s->precision, s->n, s->k, s->k_group,
					  placement.placement == NPU_PLACE_SPLIT_N ? lanes : 1, &plan));
	CHECK_OK(npu_plan_rows(&plan, s->m, &row_plan));
	unsigned per_wave = row_plan.mt <= rows ? rows / row_plan.mt * row_plan.mt : rows;
	unsigned waves = (s->m + per_wave - 1) / per_wave;
	struct npu_gemm_stats stats;
	int status = npu_gemm(dev, weight, s->m, a, c, &stats);
	CHECK(status == NPU_OK, "case %u %s M=%u N=%u K=%u k_group=%u lanes=%u placement=%d waves of %u rows: %s", index,
	      s->precision == NPU_INT8 ? "int8" : "fp16", s->m, s->n, s->k, s->k_group, lanes, (int)placement.placement,
	      rows, npu_error());
	unsigned used_lanes = 0;
	for (unsigned lane = 0; lane < lanes; lane++)
		used_lanes += npu_weight_lane_bytes(weight, lane) > 0;
	CHECK(stats.waves == waves && stats.jobs == waves * used_lanes, "case %u M=%u, waves of %u rows on %u lanes: "
	      "%u waves, %u jobs", index, s->m, rows, used_lanes, stats.waves, stats.jobs);
	CHECK(stats.exposed_seconds >= 0 && stats.exposed_seconds <= stats.seconds && stats.device_seconds <= stats.seconds,
	      "case %u: exposed %g s, device %g s of a %g s call", index, stats.exposed_seconds, stats.device_seconds,
	      stats.seconds);
	if (s->precision == NPU_INT8) {
		int32_t *expected = malloc((size_t)s->m * s->n * 4);
		reference_gemm_i8(expected, a, b, s->m, s->n, s->k);
		for (size_t i = 0; i < (size_t)s->m * s->n; i++)
			CHECK(((int32_t *)c)[i] == expected[i], "case %u int8 M=%u N=%u K=%u: C[%zu][%zu] = %d, expected %d",
			      index, s->m, s->n, s->k, i / s->n, i % s->n, ((int32_t *)c)[i], expected[i]);
		free(expected);
	} else {
		double *expected = malloc((size_t)s->m * s->n * sizeof *expected);
		double *bound = malloc((size_t)s->m * s->n * sizeof *bound);
		reference_gemm_f16(expected, bound, a, b, s->m, s->n, s->k);
		for (size_t i = 0; i < (size_t)s->m * s->n; i++) {
			double error = fabs(((float *)c)[i] - expected[i]);
			CHECK(error <= bound[i], "case %u fp16 M=%u N=%u K=%u: C[%zu][%zu] = %.9g, expected %.9g (bound %g)",
			      index, s->m, s->n, s->k, i / s->n, i % s->n, (double)((float *)c)[i], expected[i], bound[i]);
		}
		free(expected);
		free(bound);
	}
	if (index % 4 == 0 || s->k_group)
		check_f32_entry(dev, weight, s, b, index);
	CHECK_OK(npu_set_wave_rows(dev, NPU_DEFAULT_WAVE_ROWS));
	npu_weight_free(dev, weight);
	free(a);
	free(b);
	free(c);
}

static unsigned random_dimension(unsigned kind)
{
	switch (kind) {
	case 0: return 1 + test_random_below(40);
	case 1: return 1 + test_random_below(300);
	default: return 1 + test_random_below(3000);
	}
}

int main(void)
{
	test_seed("gemm_random");
	double budget = test_budget();
	struct npu_dev *devs[3] = {test_open(1), test_open(2), test_open(3)};
	static const struct shape fixed[] = {
		{NPU_INT8, 1, 1, 1, 0},        {NPU_FP16, 1, 1, 1, 0},
		{NPU_INT8, 64, 64, 256, 0},    {NPU_INT8, 5, 33, 40, 0},      /* padding in every dimension */
		{NPU_INT8, 4, 32, 4096, 0},    {NPU_INT8, 3, 31, 4097, 0},    /* one K tile / two K tiles */
		{NPU_FP16, 3, 17, 2049, 0},    {NPU_FP16, 8, 16, 2048, 0},
		{NPU_INT8, 1021, 40, 64, 0},   {NPU_INT8, 2050, 7, 33, 0},    /* M split into tasks */
		{NPU_INT8, 17, 4100, 32, 0},   {NPU_FP16, 9, 1000, 300, 0},   /* N split into tiles */
		{NPU_INT8, 2, 70, 9000, 0},    {NPU_FP16, 130, 130, 130, 0},
		{NPU_INT8, 5, 40, 640, 128}, {NPU_INT8, 3, 33, 1000, 256}, /* K groups, a short last one */
		{NPU_INT8, 2, 20, 100, 4096}, {NPU_INT8, 7, 64, 4100, 32},
		{NPU_INT8, 1021, 32, 96, 32}, {NPU_FP16, 389, 16, 64, 0},  /* row caps, 128-byte CBUF entries */
	};
	unsigned cases = 0;
	double macs = 0;
	for (unsigned i = 0; i < sizeof fixed / sizeof fixed[0]; i++, cases++) {
		run_case(devs, &fixed[i], cases);
		macs += (double)fixed[i].m * fixed[i].n * fixed[i].k;
	}
	/* random shapes: mostly small, some medium, a few with dimensions in the thousands */
	double limit = 1.2e9 * budget;
	while (macs < limit) {
		struct shape s;
		s.precision = test_random_below(3) ? NPU_INT8 : NPU_FP16;
		unsigned kind = test_random_below(10);
		unsigned size_class = kind < 6 ? 0 : (kind < 9 ? 1 : 2);
		s.m = random_dimension(size_class);
		s.n = random_dimension(size_class == 2 ? test_random_below(3) : size_class);
		s.k = random_dimension(size_class == 2 ? test_random_below(3) : size_class);
		s.k_group = s.precision == NPU_INT8 && test_random_below(3) == 0 ? 32u << test_random_below(4) : 0;
		double cost = (double)s.m * s.n * s.k;
		if (cost > 0.25 * limit || cost > 4e8)
			continue;
		run_case(devs, &s, cases++);
		macs += cost;
	}
	struct npu_dev_info info;
	CHECK_OK(npu_get_info(devs[2], &info));
	printf("gemm_random: ok, %u GEMMs, %.3g multiply-accumulates, backend %s (%s)\n", cases, macs, info.backend,
	       info.driver_desc);
	for (int i = 0; i < 3; i++)
		npu_close(devs[i]);
	return 0;
}
