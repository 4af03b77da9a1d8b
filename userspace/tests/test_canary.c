/* SPDX-License-Identifier: MIT */
/* The driver's silent failures, reproduced by the model, are caught by the completion canaries:
 * a rejected job (SUBMIT returned 0, nothing ran) and a job reset after its timeout (garbage). */
#include <string.h>

#include "support.h"

#define M 37u
#define N 200u
#define K 100u

static void run(struct npu_dev *dev, const struct npu_weight *weight, const int8_t *a, int32_t *c,
		const int32_t *expected, unsigned faulty_lane, enum npu_model_fault fault)
{
	if (fault != NPU_FAULT_NONE)
		CHECK_OK(npu_model_inject_fault(dev, faulty_lane, fault));
	for (size_t i = 0; i < (size_t)M * N; i++)
		c[i] = 0x11111111;
	struct npu_gemm_stats stats;
	memset(&stats, 0, sizeof stats);
	int status = npu_gemm(dev, weight, M, a, c, &stats);
	if (fault == NPU_FAULT_NONE) {
		CHECK(status == NPU_OK, "clean run failed: %s", npu_error());
		CHECK(memcmp(c, expected, (size_t)M * N * 4) == 0, "clean run computed a wrong result");
		return;
	}
	CHECK(status == NPU_ERR_JOB_LOST, "%s on lane %u not detected: %s (%s)",
	      fault == NPU_FAULT_REJECT ? "rejected job" : "timed-out job", faulty_lane, npu_status_name(status), npu_error());
	char lane_text[16];
	snprintf(lane_text, sizeof lane_text, "lane %u", faulty_lane);
	CHECK(strstr(npu_error(), lane_text) && strstr(npu_error(), "canary"), "message '%s'", npu_error());
	for (unsigned lane = 0; lane < 3; lane++)
		CHECK(stats.lane_status[lane] == (lane == faulty_lane ? NPU_ERR_JOB_LOST : NPU_OK), "lane %u status %d", lane,
		      stats.lane_status[lane]);
	/* the healthy lanes' columns are delivered, the faulty lane's garbage never reaches C */
	for (size_t i = 0; i < (size_t)M * N; i++)
		CHECK(c[i] == expected[i] || c[i] == 0x11111111, "garbage leaked into C[%zu] = 0x%08x", i, (uint32_t)c[i]);
}

int main(void)
{
	test_seed("canary");
	struct npu_dev *dev = test_open_model(3);
	int8_t *a = malloc(M * K), *b = malloc(N * K);
	int32_t *c = malloc((size_t)M * N * 4), *expected = malloc((size_t)M * N * 4);
	test_fill_i8(a, M * K);
	test_fill_i8(b, N * K);
	reference_gemm_i8(expected, a, b, M, N, K);
	struct npu_weight *weight;
	CHECK_OK(npu_weight_prepare(dev, NPU_INT8, N, K, b, NULL, &weight));
	run(dev, weight, a, c, expected, 0, NPU_FAULT_NONE);
	/* a rejected job right after a good one: the old canary output must not pass for the new job */
	run(dev, weight, a, c, expected, 1, NPU_FAULT_REJECT);
	run(dev, weight, a, c, expected, 0, NPU_FAULT_NONE);
	run(dev, weight, a, c, expected, 2, NPU_FAULT_TIMEOUT);
	run(dev, weight, a, c, expected, 0, NPU_FAULT_TIMEOUT);
	run(dev, weight, a, c, expected, 0, NPU_FAULT_NONE);
	npu_weight_free(dev, weight);
	npu_close(dev);
	free(a), free(b), free(c), free(expected);
	printf("canary: ok\n");
	return 0;
}
