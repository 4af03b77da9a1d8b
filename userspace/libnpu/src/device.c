/* SPDX-License-Identifier: MIT */
/* Device open (backend chosen explicitly), error messages, BO and submit entry points. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "npu_internal.h"

static _Thread_local char error_message[512];

int npu_fail(int status, const char *format, ...)
{
	va_list args;
	va_start(args, format);
	vsnprintf(error_message, sizeof error_message, format, args);
	va_end(args);
	return status;
}

const char *npu_error(void)
{
	return error_message;
}

const char *npu_status_name(int status)
{
	switch (status) {
	case NPU_OK: return "ok";
	case NPU_ERR_INVALID: return "invalid";
	case NPU_ERR_NOMEM: return "out-of-memory";
	case NPU_ERR_IO: return "io";
	case NPU_ERR_NO_DEVICE: return "no-device";
	case NPU_ERR_TIMEOUT: return "timeout";
	case NPU_ERR_JOB_LOST: return "job-lost";
	case NPU_ERR_REFUSED: return "refused-by-model";
	case NPU_ERR_LIMIT: return "limit";
	default: return "unknown";
	}
}

int64_t npu_monotonic_ns(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

static int backend_from_environment(enum npu_backend *backend)
{
	const char *name = getenv(NPU_BACKEND_ENV);
	if (!name || !*name || strcmp(name, "rocket") == 0) {
		*backend = NPU_BACKEND_ROCKET;
		return NPU_OK;
	}
	if (strcmp(name, "model") == 0) {
		*backend = NPU_BACKEND_MODEL;
		return NPU_OK;
	}
	return npu_fail(NPU_ERR_INVALID, "%s=%s: expected 'rocket' or 'model'", NPU_BACKEND_ENV, name);
}

int npu_open(struct npu_dev **out, const struct npu_open_options *options)
{
	if (!out)
		return npu_fail(NPU_ERR_INVALID, "npu_open: NULL result pointer");
	*out = NULL;
	struct npu_open_options defaults = {.backend_from_env = 1};
	if (!options)
		options = &defaults;
	enum npu_backend backend = options->backend;
	if (options->backend_from_env) {
		int status = backend_from_environment(&backend);
		if (status)
			return status;
	}
	if (options->lanes > NPU_MAX_LANES)
		return npu_fail(NPU_ERR_INVALID, "lanes=%u: at most %u (one per NPU core)", options->lanes,
				NPU_MAX_LANES);
	struct npu_dev *dev = calloc(1, sizeof *dev);
	if (!dev)
		return npu_fail(NPU_ERR_NOMEM, "npu_open: out of memory");
	for (unsigned i = 0; i < NPU_MAX_LANES; i++)
		dev->fds[i] = -1;
	int status;
	if (backend == NPU_BACKEND_MODEL)
		status = npu_model_open(dev, options->lanes ? options->lanes : NPU_MAX_LANES);
	else if (backend == NPU_BACKEND_ROCKET)
		status = npu_rocket_open(dev, options);
	else
		status = npu_fail(NPU_ERR_INVALID, "backend %d unknown", (int)backend);
	if (status) {
		free(dev);
		return status;
	}
	*out = dev;
	return NPU_OK;
}

static void destroy_scratch(struct npu_dev *dev)
{
	for (unsigned lane = 0; lane < dev->info.lanes; lane++) {
		struct npu_lane_scratch *s = &dev->scratch[lane];
		if (s->has_feature)
			npu_bo_destroy(dev, &s->feature);
		if (s->has_output)
			npu_bo_destroy(dev, &s->output);
		if (s->has_regcmd)
			npu_bo_destroy(dev, &s->regcmd);
		if (s->has_canary)
			npu_bo_destroy(dev, &s->canary_input);
	}
}

void npu_close(struct npu_dev *dev)
{
	if (!dev)
		return;
	destroy_scratch(dev);
	dev->ops->close(dev);
	free(dev);
}

void npu_get_info(const struct npu_dev *dev, struct npu_dev_info *info)
{
	*info = dev->info;
}

static int check_lane(const struct npu_dev *dev, unsigned lane)
{
	if (!dev)
		return npu_fail(NPU_ERR_INVALID, "device is NULL");
	if (lane >= dev->info.lanes)
		return npu_fail(NPU_ERR_INVALID, "lane %u: the device has %u lanes", lane, dev->info.lanes);
	return NPU_OK;
}

int npu_bo_create(struct npu_dev *dev, unsigned lane, size_t size, struct npu_bo *bo)
{
	int status = check_lane(dev, lane);
	if (status)
		return status;
	if (!bo || size == 0 || size > UINT32_MAX)
		return npu_fail(NPU_ERR_INVALID, "BO size %zu: must be 1..4 GiB-1 (the UAPI size is 32-bit)", size);
	memset(bo, 0, sizeof *bo);
	bo->lane = lane;
	return dev->ops->bo_create(dev, lane, size, bo);
}

void npu_bo_destroy(struct npu_dev *dev, struct npu_bo *bo)
{
	if (dev && bo && bo->map)
		dev->ops->bo_destroy(dev, bo);
	if (bo)
		memset(bo, 0, sizeof *bo);
}

int npu_bo_cpu_begin(struct npu_dev *dev, const struct npu_bo *bo, int64_t timeout_ns)
{
	int status = check_lane(dev, bo ? bo->lane : 0);
	if (status)
		return status;
	if (timeout_ns < 0)
		return npu_fail(NPU_ERR_INVALID, "timeout %lld ns is negative", (long long)timeout_ns);
	/* The driver takes an absolute CLOCK_MONOTONIC deadline (drm_timeout_abs_to_jiffies). */
	return dev->ops->bo_cpu_begin(dev, bo, npu_monotonic_ns() + timeout_ns);
}

int npu_bo_cpu_end(struct npu_dev *dev, const struct npu_bo *bo)
{
	int status = check_lane(dev, bo ? bo->lane : 0);
	if (status)
		return status;
	return dev->ops->bo_cpu_end(dev, bo);
}

int npu_submit(struct npu_dev *dev, unsigned lane, const struct npu_task *tasks, unsigned task_count,
	       const struct npu_bo *const *in_bos, unsigned in_count,
	       const struct npu_bo *const *out_bos, unsigned out_count)
{
	int status = check_lane(dev, lane);
	if (status)
		return status;
	/* The driver would accept these and silently drop the job: refuse them here. */
	if (!tasks || task_count == 0)
		return npu_fail(NPU_ERR_INVALID, "job without tasks");
	for (unsigned i = 0; i < task_count; i++)
		if (tasks[i].regcmd_count == 0)
			return npu_fail(NPU_ERR_INVALID, "task %u has regcmd_count 0", i);
	for (unsigned i = 0; i < in_count; i++)
		if (!in_bos[i] || in_bos[i]->lane != lane)
			return npu_fail(NPU_ERR_INVALID, "input BO %u belongs to another lane (BOs are per fd)", i);
	for (unsigned i = 0; i < out_count; i++)
		if (!out_bos[i] || out_bos[i]->lane != lane)
			return npu_fail(NPU_ERR_INVALID, "output BO %u belongs to another lane (BOs are per fd)", i);
	return dev->ops->submit(dev, lane, tasks, task_count, in_bos, in_count, out_bos, out_count);
}
