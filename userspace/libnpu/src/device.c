/* SPDX-License-Identifier: MIT */
/* Device open (backend chosen explicitly), BO and submit entry points. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "npu_internal.h"
#include "npu_parallel.h"

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
	dev->threads = 1;
	dev->wave_rows = NPU_DEFAULT_WAVE_ROWS;
	*out = dev;
	return NPU_OK;
}

int npu_set_threads(struct npu_dev *dev, unsigned threads)
{
	if (!dev || threads == 0)
		return npu_fail(NPU_ERR_INVALID, "npu_set_threads: %s", dev ? "0 threads" : "NULL device");
	dev->threads = threads > NPU_MAX_THREADS ? NPU_MAX_THREADS : threads;
	return NPU_OK;
}

int npu_set_wave_rows(struct npu_dev *dev, unsigned rows)
{
	if (!dev || rows == 0)
		return npu_fail(NPU_ERR_INVALID, "npu_set_wave_rows: %s", dev ? "0 rows" : "NULL device");
	dev->wave_rows = rows;
	return NPU_OK;
}

static void destroy_scratch(struct npu_dev *dev)
{
	for (unsigned lane = 0; lane < dev->info.lanes; lane++) {
		for (unsigned slot = 0; slot < NPU_JOB_SLOTS; slot++) {
			struct npu_job_buffers *b = &dev->scratch[lane].slots[slot];
			if (b->has_feature)
				npu_bo_destroy(dev, &b->feature);
			if (b->has_output)
				npu_bo_destroy(dev, &b->output);
			if (b->has_regcmd)
				npu_bo_destroy(dev, &b->regcmd);
			if (b->has_canary)
				npu_bo_destroy(dev, &b->canary_input);
		}
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

int npu_get_info(const struct npu_dev *dev, struct npu_dev_info *info)
{
	if (!dev || !info)
		return npu_fail(NPU_ERR_INVALID, "npu_get_info: NULL argument");
	*info = dev->info;
	return NPU_OK;
}

static int check_lane(const struct npu_dev *dev, unsigned lane)
{
	if (!dev)
		return npu_fail(NPU_ERR_INVALID, "device is NULL");
	if (lane >= dev->info.lanes)
		return npu_fail(NPU_ERR_INVALID, "lane %u: the device has %u lanes", lane, dev->info.lanes);
	return NPU_OK;
}

/* A BO of this device and lane: a handle of another fd names someone else's memory. */
static int check_bo(const struct npu_dev *dev, const struct npu_bo *bo, unsigned lane, const char *what)
{
	if (!bo)
		return npu_fail(NPU_ERR_INVALID, "%s is NULL", what);
	if (bo->dev != dev || !bo->map)
		return npu_fail(NPU_ERR_INVALID, "%s (handle %u) was not made by this device (or was destroyed)", what,
				bo->handle);
	if (bo->lane != lane)
		return npu_fail(NPU_ERR_INVALID, "%s belongs to lane %u, not lane %u (BOs are per fd)", what, bo->lane,
				lane);
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
	status = dev->ops->bo_create(dev, lane, size, bo);
	if (status)
		memset(bo, 0, sizeof *bo);
	else
		bo->dev = dev;
	return status;
}

/* Only the device that made a BO frees it; anything else is left alone. */
void npu_bo_destroy(struct npu_dev *dev, struct npu_bo *bo)
{
	if (!dev || !bo || bo->dev != dev)
		return;
	if (bo->map)
		dev->ops->bo_destroy(dev, bo);
	memset(bo, 0, sizeof *bo);
}

/* A BO the CPU is to take or give back: a lane of this device, a BO made by it. */
static int check_cpu_access(const struct npu_dev *dev, const struct npu_bo *bo)
{
	int status = check_lane(dev, bo ? bo->lane : 0);
	return status ? status : check_bo(dev, bo, bo ? bo->lane : 0, "BO");
}

int npu_bo_cpu_begin(struct npu_dev *dev, const struct npu_bo *bo, int64_t timeout_ns)
{
	int status = check_cpu_access(dev, bo);
	if (status)
		return status;
	if (timeout_ns < 0)
		return npu_fail(NPU_ERR_INVALID, "timeout %lld ns is negative", (long long)timeout_ns);
	/* The driver takes an absolute CLOCK_MONOTONIC deadline (drm_timeout_abs_to_jiffies). */
	return dev->ops->bo_cpu_begin(dev, bo, npu_monotonic_ns() + timeout_ns);
}

int npu_bo_cpu_end(struct npu_dev *dev, const struct npu_bo *bo)
{
	int status = check_cpu_access(dev, bo);
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
	if ((in_count && !in_bos) || (out_count && !out_bos))
		return npu_fail(NPU_ERR_INVALID, "%u input / %u output BOs but a NULL list", in_count, out_count);
	char what[32];
	for (unsigned i = 0; i < in_count; i++) {
		snprintf(what, sizeof what, "input BO %u", i);
		if ((status = check_bo(dev, in_bos[i], lane, what)))
			return status;
	}
	for (unsigned i = 0; i < out_count; i++) {
		snprintf(what, sizeof what, "output BO %u", i);
		if ((status = check_bo(dev, out_bos[i], lane, what)))
			return status;
	}
	return dev->ops->submit(dev, lane, tasks, task_count, in_bos, in_count, out_bos, out_count);
}

#ifndef NPU_HAVE_MODEL
/* Without the model (NPU_MODEL=OFF) no device is a model device. */
int npu_model_inject_fault(struct npu_dev *dev, unsigned lane, enum npu_model_fault fault)
{
	(void)dev, (void)lane, (void)fault;
	return npu_fail(NPU_ERR_INVALID, "fault injection needs the software model backend");
}
#endif
