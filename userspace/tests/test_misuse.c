/* SPDX-License-Identifier: MIT */
/* Misuse of the public API is refused with a message naming it, never a crash or garbage: NULL
 * arguments and results, lists and getters, misaligned arrays, unknown fault values, a BO or a weight of
 * one device used with another; and NaN/infinities in activations propagate as the CPU's would. */
#include <math.h>
#include <string.h>

#include "support.h"

#define M 6u
#define N 32u
#define K 64u

static void check_null_arguments(struct npu_dev *dev)
{
	struct npu_dev_info info;
	CHECK_FAILS(npu_get_info(NULL, &info), NPU_ERR_INVALID, "NULL");
	CHECK_FAILS(npu_get_info(dev, NULL), NPU_ERR_INVALID, "NULL");
	CHECK_FAILS(npu_set_threads(NULL, 2), NPU_ERR_INVALID, "NULL device");
	CHECK_FAILS(npu_set_threads(dev, 0), NPU_ERR_INVALID, "0 threads");
	CHECK_FAILS(npu_set_wave_rows(NULL, 64), NPU_ERR_INVALID, "NULL device");
	CHECK_FAILS(npu_set_wave_rows(dev, 0), NPU_ERR_INVALID, "0 rows");
	CHECK(npu_weight_lane_bytes(NULL, 0) == 0 && npu_weight_total_bytes(NULL) == 0 && npu_weight_k_groups(NULL) == 0,
	      "getters of a NULL weight must return 0");
	CHECK_FAILS(npu_bo_cpu_begin(dev, NULL, 0), NPU_ERR_INVALID, "BO is NULL");
	CHECK_FAILS(npu_bo_cpu_end(dev, NULL), NPU_ERR_INVALID, "BO is NULL");
	struct npu_bo bo;
	CHECK_OK(npu_bo_create(dev, 0, 4096, &bo));
	struct npu_task task = {(uint32_t)bo.dma_address, 2};
	CHECK_FAILS(npu_submit(dev, 0, &task, 1, NULL, 1, NULL, 0), NPU_ERR_INVALID, "NULL list");
	const struct npu_bo *none[] = {NULL};
	CHECK_FAILS(npu_submit(dev, 0, &task, 1, none, 1, NULL, 0), NPU_ERR_INVALID, "input BO 0 is NULL");
	struct npu_bo forged = bo;
	forged.dev = NULL;
	const struct npu_bo *list[] = {&forged};
	CHECK_FAILS(npu_submit(dev, 0, &task, 1, list, 1, NULL, 0), NPU_ERR_INVALID, "not made by this device");
	npu_bo_destroy(dev, &bo);
	CHECK_FAILS(npu_bo_cpu_end(dev, &bo), NPU_ERR_INVALID, "not made by this device");
	CHECK_FAILS(npu_model_inject_fault(dev, 0, (enum npu_model_fault)7), NPU_ERR_INVALID, "fault 7");
}

static void check_alignment(struct npu_dev *dev)
{
	static int8_t b[N * K];
	static uint16_t b16[N * K + 1];
	static int32_t c_storage[M * N + 1];
	static float a32_storage[M * K + 1], c32_storage[M * N + 1];
	struct npu_weight *w8 = NULL, *w16 = NULL;
	CHECK_FAILS(npu_weight_prepare(dev, NPU_FP16, N, K, (const uint8_t *)b16 + 1, NULL, &w16), NPU_ERR_INVALID,
		    "b_nk");
	CHECK_OK(npu_weight_prepare(dev, NPU_INT8, N, K, b, NULL, &w8));
	CHECK_OK(npu_weight_prepare(dev, NPU_FP16, N, K, b16, NULL, &w16));
	void *c_odd = (uint8_t *)c_storage + 2;
	CHECK_FAILS(npu_gemm(dev, w8, M, b, c_odd, NULL), NPU_ERR_INVALID, "int32 results c_mn");
	CHECK_FAILS(npu_gemm(dev, w16, M, (const uint8_t *)b16 + 1, c_storage, NULL), NPU_ERR_INVALID, "fp16 activations");
	CHECK_FAILS(npu_gemm_f32(dev, w8, M, (const float *)(void *)((uint8_t *)a32_storage + 1), c32_storage, NULL),
		    NPU_ERR_INVALID, "float activations");
	CHECK_FAILS(npu_gemm_f32(dev, w8, M, a32_storage, (float *)(void *)((uint8_t *)c32_storage + 2), NULL),
		    NPU_ERR_INVALID, "float results");
	npu_weight_free(dev, w8);
	npu_weight_free(dev, w16);
}

/* A weight lives in its device's lanes: used with another device, its handles and addresses would name
 * the other device's memory (the model compared handle numbers only and returned wrong results). */
static void check_ownership(struct npu_dev *dev)
{
	struct npu_dev *other = test_open_model(3);
	static int8_t a[M * K], b[N * K];
	static int32_t c[M * N];
	test_fill_i8(a, sizeof a);
	test_fill_i8(b, sizeof b);
	struct npu_weight *w = NULL;
	CHECK_OK(npu_weight_prepare(dev, NPU_INT8, N, K, b, NULL, &w));
	CHECK_FAILS(npu_gemm(other, w, M, a, c, NULL), NPU_ERR_INVALID, "prepared on another device");
	float *a32 = calloc(M * K, sizeof *a32), *c32 = calloc(M * N, sizeof *c32);
	CHECK_FAILS(npu_gemm_f32(other, w, M, a32, c32, NULL), NPU_ERR_INVALID, "prepared on another device");
	struct npu_bo bo;
	CHECK_OK(npu_bo_create(dev, 0, 4096, &bo));
	struct npu_task task = {(uint32_t)bo.dma_address, 2};
	const struct npu_bo *list[] = {&bo};
	CHECK_FAILS(npu_submit(other, 0, &task, 1, list, 1, NULL, 0), NPU_ERR_INVALID, "not made by this device");
	npu_bo_destroy(other, &bo); /* not its BO: left alone */
	CHECK(bo.map != NULL, "another device destroyed the BO");
	npu_bo_destroy(dev, &bo);
	CHECK_OK(npu_gemm(dev, w, M, a, c, NULL));
	int32_t expected[M * N];
	reference_gemm_i8(expected, a, b, M, N, K);
	CHECK(memcmp(expected, c, sizeof c) == 0, "the owning device computes a wrong result");
	npu_weight_free(other, w); /* the tiles go back to their own device (ASan reports a leak otherwise) */
	free(a32), free(c32);
	npu_close(other);
}

/* Rows 1 and 3 hold a NaN and an infinity: their outputs are NaN (INT8) or non-finite (FP16), the other
 * rows equal a run without them. */
static void check_non_finite(struct npu_dev *dev, enum npu_precision precision)
{
	static float a[M * K], c[M * N], clean[M * N];
	static int8_t b8[N * K];
	static uint16_t b16[N * K];
	test_fill_i8(b8, sizeof b8);
	test_fill_f16(b16, N * K);
	for (unsigned i = 0; i < M * K; i++)
		a[i] = (float)((int)(i % 17) - 8) / 4.0f;
	struct npu_weight *w = NULL;
	CHECK_OK(npu_weight_prepare(dev, precision, N, K, precision == NPU_INT8 ? (const void *)b8 : b16, NULL, &w));
	CHECK_OK(npu_gemm_f32(dev, w, M, a, clean, NULL));
	a[1 * K + 5] = NAN;
	a[3 * K + 40] = -INFINITY;
	CHECK_OK(npu_gemm_f32(dev, w, M, a, c, NULL));
	for (unsigned m = 0; m < M; m++)
		for (unsigned n = 0; n < N; n++) {
			float got = c[m * N + n];
			if (m == 1 || (m == 3 && precision == NPU_INT8))
				CHECK(isnan(got), "%s row %u col %u: %g, expected NaN", precision ? "fp16" : "int8", m, n,
				      (double)got);
			else if (m == 3)
				CHECK(!isfinite(got), "fp16 row 3 col %u: %g, expected non-finite", n, (double)got);
			else
				CHECK(memcmp(&got, &clean[m * N + n], 4) == 0, "row %u col %u changed: %g vs %g", m, n,
				      (double)got, (double)clean[m * N + n]);
		}
	npu_weight_free(dev, w);
	int8_t q[4] = {1, 1, 1, 1};
	float scale = 0.0f, x[4] = {1.0f, INFINITY, 2.0f, 3.0f};
	npu_quantize_rows_i8(q, &scale, x, 1, 4);
	CHECK(isnan(scale) && q[0] == 0 && q[3] == 0, "a row with +inf: scale %g, q %d %d", (double)scale, q[0], q[3]);
}

int main(void)
{
	test_seed("misuse");
	struct npu_dev *dev = test_open_model(3);
	check_null_arguments(dev);
	check_alignment(dev);
	check_ownership(dev);
	check_non_finite(dev, NPU_INT8);
	check_non_finite(dev, NPU_FP16);
	npu_close(dev);
	printf("misuse: ok\n");
	return 0;
}
