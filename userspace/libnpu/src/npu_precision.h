/* SPDX-License-Identifier: MIT */
/*
 * What each precision means to the builder, the layouts and the model, as data: a new precision is
 * one entry in precision.c (plus the kernels that convert and compute it, which stay code).
 */
#ifndef NPU_PRECISION_H
#define NPU_PRECISION_H

#include <stdint.h>

#include "npu/npu.h"

struct npu_precision_info {
	const char *name;          /* "int8", "fp16" */
	unsigned in_bytes;         /* bytes per input (feature and weight) element */
	unsigned out_bytes;        /* bytes per raw accumulator written out (int32, fp32) */
	const char *out_type;      /* its C type in messages: "int32", "float" */
	int scaled;                /* integer sums of quantized values: column scales and K groups apply */
	unsigned kernel_group;     /* kernels per weight group: N is padded to it */
	unsigned task_max_k;       /* channels per task (bytes per kernel <= 4 KiB) */
	unsigned task_max_rows;    /* rows per task a peer ran on an RK3588 */
	unsigned in_code;          /* NPU_PREC_* of the input (CNA, DPU) */
	unsigned out_code;         /* NPU_PREC_* of the raw output (DPU) */
	uint32_t core_misc_cfg;    /* CORE_MISC_CFG of a raw-output task */
	unsigned macs_per_cycle;   /* MAC array peak per core (the model's timing) */
	const char *processing;    /* what CORE_MISC_CFG selects, in the model's messages */
	const char *formats;       /* what DPU_DATA_FORMAT selects, likewise */
};

/* NULL for a value that is no precision. */
const struct npu_precision_info *npu_precision_info(enum npu_precision precision);

#endif
