/* SPDX-License-Identifier: MIT */
/* The NPU interpreter (interpreter.c): one fd's NPU address space and jobs run on it. Shared by the
 * software model backend (model.c) and the emulated rocket device (userspace/rocket-emu). */
#ifndef NPU_INTERPRETER_H
#define NPU_INTERPRETER_H

#include "npu_internal.h"

struct npu_space_bo {
	uint32_t handle;
	uint64_t address; /* NPU address */
	uint32_t size;
	uint8_t *memory;  /* the host memory behind it (the caller owns it) */
};

/* One fd's 4 GiB NPU address space: BOs sorted by address, handles from 1. */
struct npu_space {
	struct npu_space_bo *bos;
	unsigned count, capacity;
	uint32_t next_handle;
};

/* Places size bytes of memory at the first free page-aligned address (the first BO at 0). */
int npu_space_add(struct npu_space *space, uint32_t size, uint8_t *memory, struct npu_space_bo *placed);
struct npu_space_bo *npu_space_find(struct npu_space *space, uint32_t handle);
/* Forgets a BO; returns its memory for the caller to free (NULL: no such handle). */
uint8_t *npu_space_remove(struct npu_space *space, uint32_t handle);
void npu_space_release(struct npu_space *space);

/* One job: tasks in order, and the BOs it lists as read (in) and written (out), by handle. */
struct npu_job {
	const struct npu_task *tasks;
	const uint32_t *in_handles;
	unsigned in_count;
	const uint32_t *out_handles;
	unsigned out_count;
	uint64_t cycle_budget; /* NPU cycles before the job's timeout (0: none); tasks past it do not run */
	/* 1: the tasks may touch only the listed BOs: libnpu's own rule, checked by its model backend.
	 * 0: any BO of the fd, as on the hardware: the kernel maps every BO of the file into its IOMMU
	 * domain and uses the lists only for fencing (Mesa does not list its register-command BOs). */
	int only_listed_bos;
};

/* Runs the job's first task_count tasks; NPU_ERR_REFUSED names the register, NPU_ERR_TIMEOUT says the
 * cycle budget ran out (the tasks before it ran). *cycles (if not NULL): the NPU cycles of the tasks
 * that ran, as the hardware would take them. */
int npu_space_run_job(const struct npu_space *space, const struct npu_job *job, unsigned task_count,
		      uint64_t *cycles);

/* The checks of one task's stream without running it. */
int npu_model_check_task(const uint64_t *words, uint32_t count);

#endif
