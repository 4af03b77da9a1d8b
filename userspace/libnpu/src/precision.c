/* SPDX-License-Identifier: MIT */
/* The precisions the GEMM runs in (npu_precision.h); register values from docs/npu-registers.md. */
#include "npu_internal.h"
#include "npu_precision.h"
#include "npu_regs.h"

static const struct npu_precision_info precisions[] = {
	[NPU_INT8] = {
		.name = "int8", .in_bytes = 1, .out_bytes = 4, .out_type = "int32", .kernel_group = 32, .scaled = 1,
		.task_max_k = NPU_TASK_MAX_K_INT8, .task_max_rows = NPU_TASK_MAX_ROWS_INT8,
		.in_code = NPU_PREC_INT8, .out_code = NPU_PREC_INT32, .core_misc_cfg = 0,
		.macs_per_cycle = 1024, .processing = "int8 processing", .formats = "int8 in, int32 out",
	},
	[NPU_FP16] = {
		.name = "fp16", .in_bytes = 2, .out_bytes = 4, .out_type = "float", .kernel_group = 16,
		.task_max_k = NPU_TASK_MAX_K_FP16, .task_max_rows = NPU_TASK_MAX_ROWS_FP16,
		.in_code = NPU_PREC_FP16, .out_code = NPU_PREC_FP32,
		.core_misc_cfg = CORE_MISC_CFG_PROC_PRECISION(NPU_PREC_FP16) | CORE_MISC_CFG_QD_EN,
		.macs_per_cycle = 512, .processing = "fp16 processing", .formats = "fp16 in, fp32 out",
	},
};

const struct npu_precision_info *npu_precision_info(enum npu_precision precision)
{
	if ((unsigned)precision >= sizeof precisions / sizeof precisions[0] || !precisions[precision].name)
		return NULL;
	return &precisions[precision];
}

unsigned npu_task_max_rows(enum npu_precision precision)
{
	const struct npu_precision_info *info = npu_precision_info(precision);
	return info ? info->task_max_rows : NPU_TASK_MAX_ROWS_INT8;
}

const char *npu_precision_name(enum npu_precision precision)
{
	const struct npu_precision_info *info = npu_precision_info(precision);
	return info ? info->name : NULL;
}

size_t npu_precision_element_bytes(enum npu_precision precision)
{
	const struct npu_precision_info *info = npu_precision_info(precision);
	return info ? info->in_bytes : 0;
}
