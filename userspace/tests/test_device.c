/* SPDX-License-Identifier: MIT */
/* Device layer: explicit backend selection (never a silent fallback to the model), argument checks
 * that stop jobs the driver would silently drop, per-lane address windows, weight placement cost. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "npu/jobs.h"
#include "support.h"

int main(void)
{
	struct npu_dev *dev = NULL;
	/* rocket requested, no such node: an error that says how to get the model, not the model */
	struct npu_open_options rocket = {.backend = NPU_BACKEND_ROCKET, .device_path = "/nonexistent/accel9"};
	int status = npu_open(&dev, &rocket);
	CHECK(status == NPU_ERR_NO_DEVICE && dev == NULL, "opening a missing rocket node gave %s",
	      npu_status_name(status));
	setenv(NPU_BACKEND_ENV, "rocket", 1);
	struct npu_open_options from_env = {.backend_from_env = 1, .device_path = "/nonexistent/accel9"};
	status = npu_open(&dev, &from_env);
	CHECK(status == NPU_ERR_NO_DEVICE, "NPU_BACKEND=rocket without a device gave %s", npu_status_name(status));
	setenv(NPU_BACKEND_ENV, "bogus", 1);
	status = npu_open(&dev, NULL);
	CHECK(status == NPU_ERR_INVALID && strstr(npu_error(), "bogus"), "NPU_BACKEND=bogus: %s", npu_error());
	setenv(NPU_BACKEND_ENV, "model", 1);
	CHECK_OK(npu_open(&dev, NULL));
	struct npu_dev_info info;
	npu_get_info(dev, &info);
	CHECK(strcmp(info.backend, "model") == 0 && info.lanes == 3, "backend %s lanes %u", info.backend, info.lanes);
	unsetenv(NPU_BACKEND_ENV);

	struct npu_open_options too_many = {.backend = NPU_BACKEND_MODEL, .lanes = 4};
	struct npu_dev *other = NULL;
	CHECK(npu_open(&other, &too_many) == NPU_ERR_INVALID, "4 lanes accepted");

	/* each lane is its own address window: both first BOs sit at 0 */
	struct npu_bo lane0, lane1, small;
	CHECK_OK(npu_bo_create(dev, 0, 100, &lane0));
	CHECK_OK(npu_bo_create(dev, 1, 100, &lane1));
	CHECK(lane0.dma_address == 0 && lane1.dma_address == 0, "lane windows are not independent");
	CHECK(npu_bo_create(dev, 0, 0, &small) == NPU_ERR_INVALID, "empty BO accepted");
	CHECK(npu_bo_create(dev, 3, 16, &small) == NPU_ERR_INVALID, "BO on lane 3 accepted");
	CHECK(npu_bo_cpu_begin(dev, &lane0, -1) == NPU_ERR_INVALID, "negative timeout accepted");
	CHECK_OK(npu_bo_cpu_begin(dev, &lane0, 1000000));
	CHECK_OK(npu_bo_cpu_end(dev, &lane0));

	/* jobs the 7.2 driver would drop while SUBMIT returns 0 are refused up front */
	struct npu_task task = {(uint32_t)lane0.dma_address, 0};
	const struct npu_bo *in[] = {&lane0}, *foreign[] = {&lane1};
	CHECK(npu_submit(dev, 0, &task, 0, in, 1, NULL, 0) == NPU_ERR_INVALID, "job without tasks accepted");
	CHECK(npu_submit(dev, 0, &task, 1, in, 1, NULL, 0) == NPU_ERR_INVALID, "regcmd_count 0 accepted");
	task.regcmd_count = 2;
	status = npu_submit(dev, 0, &task, 1, foreign, 1, NULL, 0);
	CHECK(status == NPU_ERR_INVALID && strstr(npu_error(), "belongs to lane 1, not lane 0"), "BO of another fd accepted");
	npu_bo_destroy(dev, &lane0);
	npu_bo_destroy(dev, &lane1);

	/* weight placement: split = one copy over the lanes; lane = all in one lane */
	unsigned n = 8960, k = 1536;
	int8_t *b = calloc((size_t)n * k, 1);
	struct npu_weight *split, *single;
	CHECK_OK(npu_weight_prepare(dev, NPU_INT8, n, k, b, NULL, &split));
	struct npu_weight_options lane2 = {.placement = NPU_PLACE_LANE, .lane = 2};
	CHECK_OK(npu_weight_prepare(dev, NPU_INT8, n, k, b, &lane2, &single));
	size_t padded = (size_t)n * k; /* 8960 and 1536 are multiples of 32 */
	CHECK(npu_weight_total_bytes(split) == padded && npu_weight_total_bytes(single) == padded,
	      "weight bytes %zu / %zu, expected %zu", npu_weight_total_bytes(split), npu_weight_total_bytes(single), padded);
	for (unsigned lane = 0; lane < 3; lane++) {
		size_t bytes = npu_weight_lane_bytes(split, lane);
		CHECK(bytes > padded / 4 && bytes < padded / 2, "split lane %u holds %zu of %zu bytes", lane, bytes, padded);
		CHECK(npu_weight_lane_bytes(single, lane) == (lane == 2 ? padded : 0), "lane placement leaked to lane %u", lane);
	}
	npu_weight_free(dev, split);
	npu_weight_free(dev, single);
	free(b);
	npu_close(dev);
	printf("device: ok\n");
	return 0;
}
