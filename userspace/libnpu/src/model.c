/* SPDX-License-Identifier: MIT */
/*
 * Software NPU model backend: each lane is an NPU address space of the interpreter (interpreter.c) in
 * this process, and a job runs synchronously at submit. Chosen explicitly (NPU_BACKEND=model), never
 * in place of a missing device.
 *
 * It can reproduce the 7.2 driver's silent failures: a rejected job (SUBMIT returns 0, nothing
 * runs) and a job reset after its 500 ms timeout (partly run, outputs left as garbage).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "npu_interpreter.h"

#define MODEL_PAGE 4096u
#define MODEL_GARBAGE 0xa5u

struct model_lane {
	struct npu_space space;
	enum npu_model_fault fault;
};

struct model {
	struct model_lane lanes[NPU_MAX_LANES];
};

static struct model_lane *lane_of(struct npu_dev *dev, unsigned lane)
{
	return &((struct model *)dev->backend)->lanes[lane];
}

static int model_bo_create(struct npu_dev *dev, unsigned lane_index, size_t size, struct npu_bo *bo)
{
	uint8_t *memory = calloc(1, (size + MODEL_PAGE - 1) / MODEL_PAGE * MODEL_PAGE);
	if (!memory)
		return npu_fail(NPU_ERR_NOMEM, "model: cannot allocate a %zu-byte BO", size);
	struct npu_space_bo placed;
	int status = npu_space_add(&lane_of(dev, lane_index)->space, (uint32_t)size, memory, &placed);
	if (status) {
		free(memory);
		return npu_fail(status, "model: lane %u: %s", lane_index, npu_error());
	}
	bo->handle = placed.handle;
	bo->size = (uint32_t)size;
	bo->dma_address = placed.address;
	bo->mmap_offset = placed.address;
	bo->map = memory;
	return NPU_OK;
}

static void model_bo_destroy(struct npu_dev *dev, struct npu_bo *bo)
{
	free(npu_space_remove(&lane_of(dev, bo->lane)->space, bo->handle));
}

/* Jobs run synchronously at submit, so the CPU always owns finished buffers. */
static int model_bo_cpu_begin(struct npu_dev *dev, const struct npu_bo *bo, int64_t deadline_ns)
{
	(void)dev, (void)bo, (void)deadline_ns;
	return NPU_OK;
}

static int model_bo_cpu_end(struct npu_dev *dev, const struct npu_bo *bo)
{
	(void)dev, (void)bo;
	return NPU_OK;
}

static int model_submit(struct npu_dev *dev, unsigned lane_index, const struct npu_task *tasks, unsigned task_count,
			const struct npu_bo *const *in_bos, unsigned in_count,
			const struct npu_bo *const *out_bos, unsigned out_count)
{
	struct model_lane *lane = lane_of(dev, lane_index);
	enum npu_model_fault fault = lane->fault;
	lane->fault = NPU_FAULT_NONE;
	if (fault == NPU_FAULT_REJECT)
		return NPU_OK; /* like rocket_ioctl_submit(): the job is dropped, the ioctl returns 0 */
	uint32_t in_handles[in_count + 1], out_handles[out_count + 1];
	for (unsigned i = 0; i < in_count; i++)
		in_handles[i] = in_bos[i]->handle;
	for (unsigned i = 0; i < out_count; i++)
		out_handles[i] = out_bos[i]->handle;
	struct npu_job job = {tasks, in_handles, in_count, out_handles, out_count, 0, 1};
	int status = npu_space_run_job(&lane->space, &job, fault == NPU_FAULT_TIMEOUT ? task_count / 2 : task_count,
				       NULL);
	if (!status && fault == NPU_FAULT_TIMEOUT) /* reset mid-job: outputs hold whatever was in flight */
		for (unsigned i = 0; i < out_count; i++)
			memset(out_bos[i]->map, MODEL_GARBAGE, out_bos[i]->size);
	return status;
}

static void model_close(struct npu_dev *dev)
{
	struct model *model = dev->backend;
	for (unsigned l = 0; l < NPU_MAX_LANES; l++) {
		struct npu_space *space = &model->lanes[l].space;
		for (unsigned i = 0; i < space->count; i++)
			free(space->bos[i].memory);
		npu_space_release(space);
	}
	free(model);
}

static const struct npu_backend_ops model_ops = {
	.bo_create = model_bo_create,
	.bo_destroy = model_bo_destroy,
	.bo_cpu_begin = model_bo_cpu_begin,
	.bo_cpu_end = model_bo_cpu_end,
	.submit = model_submit,
	.close = model_close,
};

int npu_model_open(struct npu_dev *dev, unsigned lanes)
{
	dev->backend = calloc(1, sizeof(struct model));
	if (!dev->backend)
		return npu_fail(NPU_ERR_NOMEM, "model: out of memory");
	dev->ops = &model_ops;
	dev->info.backend = "model";
	dev->info.lanes = lanes;
	dev->info.cores = NPU_MAX_LANES;
	snprintf(dev->info.device_path, sizeof dev->info.device_path, "in-process");
	snprintf(dev->info.driver_name, sizeof dev->info.driver_name, "rocket-model");
	snprintf(dev->info.driver_version, sizeof dev->info.driver_version, "0.0.0");
	snprintf(dev->info.driver_desc, sizeof dev->info.driver_desc, "libnpu software NPU model");
	return NPU_OK;
}

int npu_model_inject_fault(struct npu_dev *dev, unsigned lane, enum npu_model_fault fault)
{
	if (!dev || dev->ops != &model_ops)
		return npu_fail(NPU_ERR_INVALID, "fault injection needs the software model backend");
	if (lane >= dev->info.lanes)
		return npu_fail(NPU_ERR_INVALID, "lane %u: the device has %u lanes", lane, dev->info.lanes);
	if (fault != NPU_FAULT_NONE && fault != NPU_FAULT_REJECT && fault != NPU_FAULT_TIMEOUT)
		return npu_fail(NPU_ERR_INVALID, "fault %d unknown: NPU_FAULT_NONE, _REJECT or _TIMEOUT", (int)fault);
	lane_of(dev, lane)->fault = fault;
	return NPU_OK;
}
