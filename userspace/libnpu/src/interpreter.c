/* SPDX-License-Identifier: MIT */
/*
 * The NPU interpreter behind the software model and the emulated rocket device: an NPU address space
 * of BOs (one per fd, 4 GiB, placed as the kernel's drm_mm places them), and jobs run by interpreting
 * each task's register-command stream the way the PC block fetches it. It knows the registers of a
 * direct convolution (CNA, CORE, DPU, and DPU_RDMA for the DPU's bias read; docs/npu-registers.md):
 * libnpu's GEMM (1x1 kernels over a W=1 map, raw int32/fp32 out) and Mesa's quantized int8
 * convolutions (kernels, strides, padding, bias, requantization to int8). It checks the hardware's
 * limits from the values it reads and refuses anything else with NPU_ERR_REFUSED and a message naming
 * the word, register and value, rather than guessing. With npu_job.only_listed_bos a task may only
 * read BOs listed as job inputs or outputs and only write job outputs (libnpu's own rule); without
 * it any BO of the fd, as the hardware's IOMMU domain allows.
 */
#define _POSIX_C_SOURCE 200809L /* sysconf */

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "npu_interpreter.h"
#include "npu_parallel.h"
#include "npu_precision.h"
#include "npu_regs.h"

#define SPACE_PAGE 4096u

/* First-fit placement, page aligned; the first BO gets address 0 like the kernel's drm_mm does, so
 * code treating 0 as "no address" fails here too. */
int npu_space_add(struct npu_space *space, uint32_t size, uint8_t *memory, struct npu_space_bo *placed)
{
	uint64_t span = ((uint64_t)size + SPACE_PAGE - 1) / SPACE_PAGE * SPACE_PAGE;
	uint64_t address = 0;
	unsigned slot = 0;
	for (; slot < space->count; slot++) {
		if (space->bos[slot].address >= address + span)
			break;
		uint64_t end = space->bos[slot].address + space->bos[slot].size;
		address = (end + SPACE_PAGE - 1) / SPACE_PAGE * SPACE_PAGE;
	}
	if (address + span > NPU_ADDRESS_WINDOW)
		return npu_fail(NPU_ERR_NOMEM, "no room for %u bytes in the 4 GiB NPU window", size);
	if (space->count == space->capacity) {
		unsigned capacity = space->capacity ? space->capacity * 2 : 16;
		struct npu_space_bo *bos = realloc(space->bos, capacity * sizeof *bos);
		if (!bos)
			return npu_fail(NPU_ERR_NOMEM, "out of memory");
		space->bos = bos;
		space->capacity = capacity;
	}
	memmove(&space->bos[slot + 1], &space->bos[slot], (space->count - slot) * sizeof *space->bos);
	space->count++;
	space->bos[slot] = (struct npu_space_bo){++space->next_handle, address, size, memory};
	*placed = space->bos[slot];
	return NPU_OK;
}

struct npu_space_bo *npu_space_find(struct npu_space *space, uint32_t handle)
{
	for (unsigned i = 0; i < space->count; i++)
		if (space->bos[i].handle == handle)
			return &space->bos[i];
	return NULL;
}

uint8_t *npu_space_remove(struct npu_space *space, uint32_t handle)
{
	struct npu_space_bo *bo = npu_space_find(space, handle);
	if (!bo)
		return NULL;
	uint8_t *memory = bo->memory;
	unsigned i = (unsigned)(bo - space->bos);
	memmove(&space->bos[i], &space->bos[i + 1], (space->count - i - 1) * sizeof *space->bos);
	space->count--;
	return memory;
}

void npu_space_release(struct npu_space *space)
{
	free(space->bos);
	memset(space, 0, sizeof *space);
}

struct job_view {
	const struct npu_space *space;
	const struct npu_job *job;
};

static int listed(const uint32_t *handles, unsigned count, uint32_t handle)
{
	for (unsigned i = 0; i < count; i++)
		if (handles[i] == handle)
			return 1;
	return 0;
}

/* Host pointer for [address, address + length) inside one BO of the job. */
static int resolve(const struct job_view *view, uint64_t address, uint64_t length, int write, const char *what,
		   uint8_t **pointer)
{
	const struct npu_job *job = view->job;
	for (unsigned i = 0; i < view->space->count; i++) {
		const struct npu_space_bo *bo = &view->space->bos[i];
		if (address < bo->address || address >= bo->address + bo->size)
			continue;
		if (address + length > bo->address + bo->size)
			return npu_fail(NPU_ERR_REFUSED, "model: %s [0x%llx, +%llu) runs past the end of its BO "
					"(0x%llx, %u bytes)", what, (unsigned long long)address,
					(unsigned long long)length, (unsigned long long)bo->address, bo->size);
		int may_write = !job->only_listed_bos || listed(job->out_handles, job->out_count, bo->handle);
		if (write && !may_write)
			return npu_fail(NPU_ERR_REFUSED, "model: %s at 0x%llx writes a BO not listed as a job output",
					what, (unsigned long long)address);
		if (!write && !may_write && !listed(job->in_handles, job->in_count, bo->handle))
			return npu_fail(NPU_ERR_REFUSED, "model: %s at 0x%llx reads a BO not listed as a job input",
					what, (unsigned long long)address);
		*pointer = bo->memory + (address - bo->address);
		return NPU_OK;
	}
	return npu_fail(NPU_ERR_REFUSED, "model: %s at NPU address 0x%llx is not inside any BO of this fd", what,
			(unsigned long long)address);
}

/* The registers every task writes (no state is assumed to survive from an earlier task): the CNA, CORE
 * and DPU registers of a direct convolution, which both peers write in full. */
static const struct {
	uint16_t reg;
	const char *name;
} known_registers[] = {
	{REG_DPU_S_POINTER, "DPU_S_POINTER"},
	{REG_CNA_CONV_CON1, "CNA_CONV_CON1"}, {REG_CNA_CONV_CON2, "CNA_CONV_CON2"},
	{REG_CNA_CONV_CON3, "CNA_CONV_CON3"}, {REG_CNA_DATA_SIZE0, "CNA_DATA_SIZE0"},
	{REG_CNA_DATA_SIZE1, "CNA_DATA_SIZE1"}, {REG_CNA_DATA_SIZE2, "CNA_DATA_SIZE2"},
	{REG_CNA_DATA_SIZE3, "CNA_DATA_SIZE3"}, {REG_CNA_WEIGHT_SIZE0, "CNA_WEIGHT_SIZE0"},
	{REG_CNA_WEIGHT_SIZE1, "CNA_WEIGHT_SIZE1"}, {REG_CNA_WEIGHT_SIZE2, "CNA_WEIGHT_SIZE2"},
	{REG_CNA_CBUF_CON0, "CNA_CBUF_CON0"}, {REG_CNA_CBUF_CON1, "CNA_CBUF_CON1"},
	{REG_CNA_CVT_CON0, "CNA_CVT_CON0"}, {REG_CNA_CVT_CON1, "CNA_CVT_CON1"}, {REG_CNA_CVT_CON2, "CNA_CVT_CON2"},
	{REG_CNA_CVT_CON3, "CNA_CVT_CON3"}, {REG_CNA_CVT_CON4, "CNA_CVT_CON4"}, {REG_CNA_FC_CON0, "CNA_FC_CON0"},
	{REG_CNA_FC_CON1, "CNA_FC_CON1"}, {REG_CNA_PAD_CON0, "CNA_PAD_CON0"},
	{REG_CNA_FEATURE_DATA_ADDR, "CNA_FEATURE_DATA_ADDR"}, {REG_CNA_FC_CON2, "CNA_FC_CON2"},
	{REG_CNA_DMA_CON0, "CNA_DMA_CON0"}, {REG_CNA_DMA_CON1, "CNA_DMA_CON1"}, {REG_CNA_DMA_CON2, "CNA_DMA_CON2"},
	{REG_CNA_FC_DATA_SIZE0, "CNA_FC_DATA_SIZE0"}, {REG_CNA_FC_DATA_SIZE1, "CNA_FC_DATA_SIZE1"},
	{REG_CNA_DCOMP_CTRL, "CNA_DCOMP_CTRL"}, {REG_CNA_DCOMP_REGNUM, "CNA_DCOMP_REGNUM"},
	{REG_CNA_DCOMP_ADDR0, "CNA_DCOMP_ADDR0"},
	{0x1140, "CNA_DCOMP_AMOUNT0"}, {0x1144, "CNA_DCOMP_AMOUNT1"}, {0x1148, "CNA_DCOMP_AMOUNT2"},
	{0x114c, "CNA_DCOMP_AMOUNT3"}, {0x1150, "CNA_DCOMP_AMOUNT4"}, {0x1154, "CNA_DCOMP_AMOUNT5"},
	{0x1158, "CNA_DCOMP_AMOUNT6"}, {0x115c, "CNA_DCOMP_AMOUNT7"}, {0x1160, "CNA_DCOMP_AMOUNT8"},
	{0x1164, "CNA_DCOMP_AMOUNT9"}, {0x1168, "CNA_DCOMP_AMOUNT10"}, {0x116c, "CNA_DCOMP_AMOUNT11"},
	{0x1170, "CNA_DCOMP_AMOUNT12"}, {0x1174, "CNA_DCOMP_AMOUNT13"}, {0x1178, "CNA_DCOMP_AMOUNT14"},
	{0x117c, "CNA_DCOMP_AMOUNT15"},
	{REG_CNA_CVT_CON5, "CNA_CVT_CON5"}, {REG_CNA_PAD_CON1, "CNA_PAD_CON1"},
	{REG_CORE_MISC_CFG, "CORE_MISC_CFG"}, {REG_CORE_DATAOUT_SIZE_0, "CORE_DATAOUT_SIZE_0"},
	{REG_CORE_DATAOUT_SIZE_1, "CORE_DATAOUT_SIZE_1"}, {REG_CORE_CLIP_TRUNCATE, "CORE_CLIP_TRUNCATE"},
	{REG_CORE_UNDOCUMENTED_3030, "CORE_0x3030"},
	{REG_DPU_FEATURE_MODE_CFG, "DPU_FEATURE_MODE_CFG"}, {REG_DPU_DATA_FORMAT, "DPU_DATA_FORMAT"},
	{REG_DPU_OFFSET_PEND, "DPU_OFFSET_PEND"}, {REG_DPU_DST_BASE_ADDR, "DPU_DST_BASE_ADDR"},
	{REG_DPU_DST_SURF_STRIDE, "DPU_DST_SURF_STRIDE"}, {REG_DPU_DATA_CUBE_WIDTH, "DPU_DATA_CUBE_WIDTH"},
	{REG_DPU_DATA_CUBE_HEIGHT, "DPU_DATA_CUBE_HEIGHT"}, {REG_DPU_DATA_CUBE_NOTCH_ADDR, "DPU_DATA_CUBE_NOTCH_ADDR"},
	{REG_DPU_DATA_CUBE_CHANNEL, "DPU_DATA_CUBE_CHANNEL"}, {REG_DPU_BS_CFG, "DPU_BS_CFG"},
	{REG_DPU_BS_ALU_CFG, "DPU_BS_ALU_CFG"}, {REG_DPU_BS_MUL_CFG, "DPU_BS_MUL_CFG"},
	{REG_DPU_BS_RELUX_CMP_VALUE, "DPU_BS_RELUX_CMP_VALUE"}, {REG_DPU_BS_OW_CFG, "DPU_BS_OW_CFG"},
	{REG_DPU_BS_OW_OP, "DPU_BS_OW_OP"}, {REG_DPU_WDMA_SIZE_0, "DPU_WDMA_SIZE_0"},
	{REG_DPU_WDMA_SIZE_1, "DPU_WDMA_SIZE_1"}, {REG_DPU_BN_CFG, "DPU_BN_CFG"},
	{REG_DPU_BN_ALU_CFG, "DPU_BN_ALU_CFG"}, {REG_DPU_BN_MUL_CFG, "DPU_BN_MUL_CFG"},
	{REG_DPU_BN_RELUX_CMP_VALUE, "DPU_BN_RELUX_CMP_VALUE"}, {REG_DPU_EW_CFG, "DPU_EW_CFG"},
	{REG_DPU_EW_CVT_OFFSET_VALUE, "DPU_EW_CVT_OFFSET_VALUE"}, {REG_DPU_EW_CVT_SCALE_VALUE, "DPU_EW_CVT_SCALE_VALUE"},
	{REG_DPU_EW_RELUX_CMP_VALUE, "DPU_EW_RELUX_CMP_VALUE"}, {REG_DPU_OUT_CVT_OFFSET, "DPU_OUT_CVT_OFFSET"},
	{REG_DPU_OUT_CVT_SCALE, "DPU_OUT_CVT_SCALE"}, {REG_DPU_OUT_CVT_SHIFT, "DPU_OUT_CVT_SHIFT"},
	{0x4090, "DPU_EW_OP_VALUE_0"}, {0x4094, "DPU_EW_OP_VALUE_1"}, {0x4098, "DPU_EW_OP_VALUE_2"},
	{0x409c, "DPU_EW_OP_VALUE_3"}, {0x40a0, "DPU_EW_OP_VALUE_4"}, {0x40a4, "DPU_EW_OP_VALUE_5"},
	{0x40a8, "DPU_EW_OP_VALUE_6"}, {0x40ac, "DPU_EW_OP_VALUE_7"},
	{REG_DPU_SURFACE_ADD, "DPU_SURFACE_ADD"}, {REG_DPU_UNDOCUMENTED_40C4, "DPU_0x40c4"},
	{0x4100, "DPU_LUT_ACCESS_CFG"}, {0x4104, "DPU_LUT_ACCESS_DATA"}, {0x4108, "DPU_LUT_CFG"},
	{0x410c, "DPU_LUT_INFO"}, {0x4110, "DPU_LUT_LE_START"}, {0x4114, "DPU_LUT_LE_END"},
	{0x4118, "DPU_LUT_LO_START"}, {0x411c, "DPU_LUT_LO_END"}, {0x4120, "DPU_LUT_LE_SLOPE_SCALE"},
	{0x4124, "DPU_LUT_LE_SLOPE_SHIFT"}, {0x4128, "DPU_LUT_LO_SLOPE_SCALE"}, {0x412c, "DPU_LUT_LO_SLOPE_SHIFT"},
	/* DPU_RDMA: written (all of them) only by streams whose op_en starts it, to read per-channel biases */
	{REG_DPU_RDMA_S_POINTER, "DPU_RDMA_S_POINTER"}, {REG_DPU_RDMA_CUBE_WIDTH, "DPU_RDMA_DATA_CUBE_WIDTH"},
	{REG_DPU_RDMA_CUBE_HEIGHT, "DPU_RDMA_DATA_CUBE_HEIGHT"}, {REG_DPU_RDMA_CUBE_CHANNEL, "DPU_RDMA_DATA_CUBE_CHANNEL"},
	{REG_DPU_RDMA_SRC_BASE_ADDR, "DPU_RDMA_SRC_BASE_ADDR"}, {REG_DPU_RDMA_BRDMA_CFG, "DPU_RDMA_BRDMA_CFG"},
	{REG_DPU_RDMA_BS_BASE_ADDR, "DPU_RDMA_BS_BASE_ADDR"}, {REG_DPU_RDMA_NRDMA_CFG, "DPU_RDMA_NRDMA_CFG"},
	{REG_DPU_RDMA_BN_BASE_ADDR, "DPU_RDMA_BN_BASE_ADDR"}, {REG_DPU_RDMA_ERDMA_CFG, "DPU_RDMA_ERDMA_CFG"},
	{REG_DPU_RDMA_EW_BASE_ADDR, "DPU_RDMA_EW_BASE_ADDR"}, {REG_DPU_RDMA_EW_SURF_STRIDE, "DPU_RDMA_EW_SURF_STRIDE"},
	{REG_DPU_RDMA_FEATURE_MODE_CFG, "DPU_RDMA_FEATURE_MODE_CFG"}, {REG_DPU_RDMA_SRC_DMA_CFG, "DPU_RDMA_SRC_DMA_CFG"},
	{REG_DPU_RDMA_SURF_NOTCH, "DPU_RDMA_SURF_NOTCH"}, {REG_DPU_RDMA_PAD_CFG, "DPU_RDMA_PAD_CFG"},
	{REG_DPU_RDMA_WEIGHT, "DPU_RDMA_WEIGHT"}, {REG_DPU_RDMA_EW_SURF_NOTCH, "DPU_RDMA_EW_SURF_NOTCH"},
};

#define KNOWN_COUNT (sizeof known_registers / sizeof known_registers[0])
#define REGISTER_SPACE 0x6000u
#define IS_RDMA_REGISTER(reg) ((reg) >> 12 == 5)
#define NPU_UNDEFINED_BYTE 0xa5 /* written where the hardware's result is not known */

struct register_file {
	uint32_t value[REGISTER_SPACE / 4];
	uint8_t written[REGISTER_SPACE / 4];
	uint32_t op_enable; /* the units the op_en word starts */
};

static int known_index(uint16_t reg)
{
	for (unsigned i = 0; i < KNOWN_COUNT; i++)
		if (known_registers[i].reg == reg)
			return (int)i;
	return -1;
}

static const char *block_name(unsigned block)
{
	static const char *names[16] = {"PC", "CNA", "(none)", "CORE", "DPU", "DPU_RDMA", "PPU", "PPU_RDMA", "DDMA",
					"SDMA", "?", "?", "?", "?", "?", "GLOBAL"};
	return names[block & 15];
}

/* The tail both peers end a stream with: 0, or the next stream's PC_BASE_ADDRESS (Mesa chains the tasks
 * of an operation so), then PC_REGISTER_AMOUNTS, the 0x0041 marker the TRM asks for, then op_en starting
 * CNA, CORE and DPU, and DPU_RDMA when the DPU reads an operand (Mesa's 0x1d; mtx512's and our GEMM's
 * 0x0d). The chain is not followed: rocket starts every task itself with TASK_NUMBER 1
 * (rocket_job.c), so the PC stops at the end of each stream whatever its tail points at. */
static int check_tail(const uint64_t *tail, unsigned task, uint32_t *op_enable)
{
	uint16_t pc_write = NPU_TARGET_PC | NPU_TARGET_WRITE_BIT;
	if (tail[0] != 0 && (tail[0] >> 48 != pc_write || (uint16_t)tail[0] != REG_PC_BASE_ADDRESS))
		return npu_fail(NPU_ERR_REFUSED, "model: task %u: tail word 0 is 0x%016llx; expected 0 or a "
				"PC_BASE_ADDRESS write", task, (unsigned long long)tail[0]);
	if (tail[1] >> 48 != pc_write || (uint16_t)tail[1] != REG_PC_REGISTER_AMOUNTS)
		return npu_fail(NPU_ERR_REFUSED, "model: task %u: tail word 1 is 0x%016llx, expected a "
				"PC_REGISTER_AMOUNTS write", task, (unsigned long long)tail[1]);
	if (tail[2] != npu_regcmd_word(NPU_TARGET_TAIL_MARKER, 0, 0))
		return npu_fail(NPU_ERR_REFUSED, "model: task %u: tail word 2 is 0x%016llx, expected the 0x0041 marker",
				task, (unsigned long long)tail[2]);
	for (unsigned units = NPU_OPEN_GEMM; units <= (NPU_OPEN_GEMM | NPU_OPEN_DPU_RDMA); units += NPU_OPEN_DPU_RDMA)
		if (tail[3] == npu_regcmd_word(NPU_TARGET_OP_ENABLE, REG_PC_OPERATION_ENABLE, units)) {
			*op_enable = units;
			return NPU_OK;
		}
	return npu_fail(NPU_ERR_REFUSED, "model: task %u: last word is 0x%016llx; the model runs only op_en with "
			"CNA|CORE|DPU (0x%x), optionally with DPU_RDMA (0x%x)", task, (unsigned long long)tail[3],
			NPU_OPEN_GEMM, NPU_OPEN_GEMM | NPU_OPEN_DPU_RDMA);
}

static int decode(const uint64_t *words, uint32_t count, unsigned task, struct register_file *file)
{
	if (count % 2)
		return npu_fail(NPU_ERR_REFUSED, "model: task %u regcmd_count %u is odd; the PC fetches 128-bit pairs "
				"((count + 1) / 2 - 1 amounts) and would run one word past the stream", task, count);
	if (count < 4)
		return npu_fail(NPU_ERR_REFUSED, "model: task %u has %u regcmd words, fewer than its tail", task, count);
	memset(file, 0, sizeof *file);
	int status = check_tail(words + count - 4, task, &file->op_enable);
	if (status)
		return status;
	int rdma = (file->op_enable & NPU_OPEN_DPU_RDMA) != 0;
	for (uint32_t i = 0; i + 4 < count; i++) {
		uint64_t word = words[i];
		uint16_t target = (uint16_t)(word >> 48);
		uint32_t value = (uint32_t)(word >> 16);
		uint16_t reg = (uint16_t)word;
		unsigned block = reg >> 12;
		if (word == 0)
			return npu_fail(NPU_ERR_REFUSED, "model: task %u word %u is an empty word inside the stream", task, i);
		int index = known_index(reg);
		if (index < 0 || (IS_RDMA_REGISTER(reg) && !rdma))
			return npu_fail(NPU_ERR_REFUSED, "model: task %u word %u writes register 0x%04x (%s block) = 0x%08x, "
					"which the model does not model%s", task, i, reg, block_name(block), value,
					index < 0 ? "" : " in a stream whose op_en does not start DPU_RDMA");
		static const uint16_t expected_target[8] = {0, NPU_TARGET_CNA, 0, NPU_TARGET_CORE, NPU_TARGET_DPU,
							     NPU_TARGET_DPU_RDMA, 0, 0};
		uint16_t expected = (uint16_t)(expected_target[block & 7] | NPU_TARGET_WRITE_BIT);
		if (target != expected)
			return npu_fail(NPU_ERR_REFUSED, "model: task %u word %u writes %s with target 0x%04x; the %s block "
					"is addressed as 0x%04x", task, i, known_registers[index].name, target,
					block_name(block), expected);
		file->value[reg / 4] = value;
		file->written[reg / 4] = 1;
	}
	for (unsigned i = 0; i < KNOWN_COUNT; i++)
		if (!file->written[known_registers[i].reg / 4] && (rdma || !IS_RDMA_REGISTER(known_registers[i].reg)))
			return npu_fail(NPU_ERR_REFUSED, "model: task %u never writes %s; every task must set it", task,
					known_registers[i].name);
	return NPU_OK;
}

static uint32_t reg(const struct register_file *file, uint16_t offset)
{
	return file->value[offset / 4];
}

/* Registers whose value selects a mode: only the value this model implements is accepted. */
static int expect(const struct register_file *file, uint16_t offset, uint32_t wanted, unsigned task,
		  const char *meaning)
{
	uint32_t value = reg(file, offset);
	if (value == wanted)
		return NPU_OK;
	return npu_fail(NPU_ERR_REFUSED, "model: task %u: %s = 0x%08x; only 0x%08x (%s) is modelled", task,
			known_registers[known_index(offset)].name, value, wanted, meaning);
}

/*
 * One direct convolution as the registers describe it (docs/npu-registers.md). A GEMM is the case
 * W = 1, 1x1 kernels, stride 1, no padding, raw int32/fp32 output; Mesa's quantized convolutions add
 * kernels, strides, padding and the DPU's bias add and output conversion to int8.
 */
struct conv_task {
	enum npu_precision precision;
	const struct npu_precision_info *info;
	unsigned bpe, c2;		 /* input bytes per element, channels per 16-byte atom */
	unsigned kernel_group;		 /* kernels per weight group: 32 int8, 16 fp16 */
	unsigned in_w, in_h, channels;	 /* channels as stored, a multiple of c2 */
	unsigned kernel_w, kernel_h, kernels, stride_x, stride_y, pad_left, pad_top;
	unsigned out_w, out_h, out_channels; /* out_channels >= kernels */
	uint32_t pad_bits;		 /* the value padded positions read, in the input's format */
	uint32_t feature_address, weight_address, output_address;
	uint32_t line_bytes, feature_surface, output_surface;
	int requantize;			 /* 1: int32 + bias, x OUT_CVT_SCALE >> OUT_CVT_SHIFT + offset, int8 out */
	unsigned out_bpe;		 /* 4 (int32 or fp32) or 1 (int8) */
	uint32_t bias_address;
	int32_t weight_offset;		 /* DPU_BS_OW_OP, added to every stored weight */
	int32_t cvt_offset;
	uint32_t cvt_scale, cvt_shift;
	uint32_t weight_bytes, weight_reuse;
};

/* A register whose value selects a mode, the one value the model implements, and what it means. */
struct register_mode {
	uint16_t reg;
	uint32_t value;
	const char *meaning;
};

static const struct register_mode fixed_modes[] = {
	{REG_DPU_S_POINTER, DPU_S_POINTER_PP, "ping-pong pointer mode"},
	{REG_CNA_CVT_CON0, CNA_CVT_CON0_SIGNED_BYPASS, "signed input, conversion bypassed"},
	{REG_CNA_CVT_CON1, CNA_CVT_SCALE_ONE, "scale 1"},
	{REG_CNA_CVT_CON2, CNA_CVT_SCALE_ONE, "scale 1"},
	{REG_CNA_CVT_CON3, CNA_CVT_SCALE_ONE, "scale 1"},
	{REG_CNA_CVT_CON4, CNA_CVT_SCALE_ONE, "scale 1"},
	{REG_CNA_CVT_CON5, 0, "no per-channel conversion"},
	{REG_CNA_FC_CON0, 0, "no FC mode"},
	{REG_CNA_FC_CON1, 0, "no FC mode"},
	{REG_CNA_FC_CON2, 0, "no weight offset"},
	{REG_CNA_DMA_CON0, CNA_DMA_CON0_BURST16, "burst 16"},
	{REG_CNA_DCOMP_CTRL, 0, "no weight decompression"},
	{REG_CNA_DCOMP_REGNUM, 0, "no weight decompression"},
	{REG_CORE_CLIP_TRUNCATE, 0, "no truncation"},
	{REG_CORE_UNDOCUMENTED_3030, 0, "as Mesa and [X] write it"},
	{REG_DPU_FEATURE_MODE_CFG, DPU_FEATURE_MODE_CFG_TO_MEMORY, "output to memory, burst 16"},
	{REG_DPU_OFFSET_PEND, 0, "no offset"},
	{REG_DPU_DATA_CUBE_NOTCH_ADDR, 0, "no notch"},
	{REG_DPU_BS_ALU_CFG, 0, "no ALU constant"},
	{REG_DPU_BS_MUL_CFG, 0, "BS multiplier bypassed"},
	{REG_DPU_BS_RELUX_CMP_VALUE, 0, "BS ReLU bypassed"},
	{REG_DPU_BN_CFG, DPU_BYPASS_ALL_BS_BN, "BN bypassed"},
	{REG_DPU_BN_ALU_CFG, 0, "BN bypassed"},
	{REG_DPU_BN_MUL_CFG, 0, "BN bypassed"},
	{REG_DPU_BN_RELUX_CMP_VALUE, 0, "BN bypassed"},
	{REG_DPU_EW_CFG, DPU_EW_CFG_BYPASS_ALL, "EW bypassed"},
	{REG_DPU_EW_CVT_OFFSET_VALUE, 0, "EW bypassed"},
	{REG_DPU_EW_CVT_SCALE_VALUE, 1, "EW bypassed"},
	{REG_DPU_EW_RELUX_CMP_VALUE, 0, "EW bypassed"},
	{REG_DPU_UNDOCUMENTED_40C4, 0, "as Mesa writes it"},
};

/* The DPU_RDMA values of Mesa's convolution, the only DPU_RDMA use modelled: BRDMA reads one int32 bias
 * per kernel from BS_BASE_ADDR; the feature (MRDMA) and element-wise (ERDMA) reads are off. */
static const struct register_mode bias_read_modes[] = {
	{REG_DPU_RDMA_S_POINTER, DPU_S_POINTER_PP, "ping-pong pointer mode"},
	{REG_DPU_RDMA_SRC_BASE_ADDR, 0, "no element-wise operand"},
	{REG_DPU_RDMA_BRDMA_CFG, DPU_RDMA_BRDMA_CFG_DATA_USE_ALU, "bias read for the BS ALU"},
	{REG_DPU_RDMA_NRDMA_CFG, 0, "no BN operand"},
	{REG_DPU_RDMA_BN_BASE_ADDR, 0, "no BN operand"},
	{REG_DPU_RDMA_ERDMA_CFG, DPU_RDMA_ERDMA_CFG_DISABLE, "no element-wise operand"},
	{REG_DPU_RDMA_EW_BASE_ADDR, 0, "no element-wise operand"},
	{REG_DPU_RDMA_EW_SURF_STRIDE, 0, "no element-wise operand"},
	{REG_DPU_RDMA_FEATURE_MODE_CFG, DPU_RDMA_FEATURE_MODE_CFG_BIAS_ONLY, "burst 15, MRDMA off"},
	{REG_DPU_RDMA_SRC_DMA_CFG, 0, "as Mesa writes it"},
	{REG_DPU_RDMA_SURF_NOTCH, 0, "no element-wise operand"},
	{REG_DPU_RDMA_PAD_CFG, 0, "as Mesa writes it"},
	{REG_DPU_RDMA_WEIGHT, DPU_RDMA_WEIGHT_ONES, "E/N/B/M weights 1"},
	{REG_DPU_RDMA_EW_SURF_NOTCH, 0, "no element-wise operand"},
};

#define EXPECT(offset, value, meaning)                                                \
	do {                                                                          \
		int status_ = expect(f, offset, value, task, meaning);               \
		if (status_)                                                          \
			return status_;                                               \
	} while (0)

static int expect_modes(const struct register_file *f, const struct register_mode *modes, unsigned count,
			unsigned task)
{
	for (unsigned i = 0; i < count; i++) {
		int status = expect(f, modes[i].reg, modes[i].value, task, modes[i].meaning);
		if (status)
			return status;
	}
	return NPU_OK;
}

#define REFUSE_IF(condition, ...)                                        \
	do {                                                             \
		if (condition)                                           \
			return npu_fail(NPU_ERR_REFUSED, __VA_ARGS__); \
	} while (0)

static int check_precision(const struct register_file *f, unsigned task, struct conv_task *c)
{
	uint32_t con1 = reg(f, REG_CNA_CONV_CON1);
	c->info = NULL;
	for (enum npu_precision p = 0; npu_precision_info(p); p++) {
		unsigned code = npu_precision_info(p)->in_code;
		if (con1 == (CNA_CONV_CON1_PROC_PRECISION(code) | CNA_CONV_CON1_IN_PRECISION(code))) {
			c->precision = p;
			c->info = npu_precision_info(p);
		}
	}
	if (!c->info)
		return npu_fail(NPU_ERR_REFUSED, "model: task %u: CNA_CONV_CON1 = 0x%08x; only direct convolution with "
				"int8 (0x0) or fp16 (0x120) input is modelled", task, con1);
	c->bpe = c->info->in_bytes;
	c->kernel_group = c->info->kernel_group;
	c->c2 = 16 / c->bpe;
	int status = expect_modes(f, fixed_modes, sizeof fixed_modes / sizeof fixed_modes[0], task);
	if (status)
		return status;
	for (unsigned i = 0; i < 16; i++)
		EXPECT((uint16_t)(REG_CNA_DCOMP_AMOUNT0 + 4 * i), 0, "no weight decompression");
	for (unsigned i = 0; i < 8; i++)
		EXPECT((uint16_t)(REG_DPU_EW_OP_VALUE_0 + 4 * i), 0, "EW bypassed");
	for (unsigned i = 0; i < NPU_DPU_LUT_REGISTERS; i++)
		EXPECT((uint16_t)(REG_DPU_LUT_ACCESS_CFG + 4 * i), 0, "no LUT (EW_CFG bypasses it)");
	return NPU_OK;
}

/*
 * The DPU path: raw accumulators (int32 for int8, fp32 for fp16: the GEMM the peers ran), or Mesa's
 * requantization of int8 convolutions: the BS ALU adds one int32 bias per kernel that DPU_RDMA reads,
 * BS_OW_OP is added to every weight (Mesa stores w - 0x80 and writes 0x80 - zero point, rkt_coefs.c),
 * and OUT_CVT multiplies by a 16-bit scale, shifts right, adds an offset and saturates to int8
 * (rkt_regcmd.c; docs/npu-registers.md says what is derived).
 */
static int check_dpu(const struct register_file *f, unsigned task, struct conv_task *c)
{
	unsigned in_prec = c->info->in_code;
	c->requantize = (f->op_enable & NPU_OPEN_DPU_RDMA) != 0;
	REFUSE_IF(c->requantize && c->precision != NPU_INT8, "model: task %u: op_en starts DPU_RDMA in an %s stream; "
		  "only int8 requantization reads a DPU operand in this model", task, c->info->name);
	if (!c->requantize) {
		c->out_bpe = c->info->out_bytes;
		EXPECT(REG_CORE_MISC_CFG, c->info->core_misc_cfg, c->info->processing);
		EXPECT(REG_DPU_DATA_FORMAT, DPU_DATA_FORMAT(c->info->out_code, in_prec, in_prec), c->info->formats);
		EXPECT(REG_DPU_BS_CFG, DPU_BYPASS_ALL_BS_BN, "BS bypassed");
		EXPECT(REG_DPU_BS_OW_OP, 0, "no weight offset");
		EXPECT(REG_DPU_OUT_CVT_OFFSET, 0, "no output conversion");
		EXPECT(REG_DPU_OUT_CVT_SCALE, 1, "no output conversion");
		EXPECT(REG_DPU_OUT_CVT_SHIFT, 0, "no output conversion");
	} else {
		c->out_bpe = 1;
		EXPECT(REG_CORE_MISC_CFG, CORE_MISC_CFG_QD_EN, "int8 processing with requantization (Mesa)");
		EXPECT(REG_DPU_DATA_FORMAT, DPU_DATA_FORMAT(NPU_PREC_INT8, NPU_PREC_INT8, NPU_PREC_INT8), "int8 out");
		EXPECT(REG_DPU_BS_CFG, DPU_BS_CFG_ADD_BIAS, "BS ALU adds the BRDMA operand; multiplier and ReLU bypassed");
		int status = expect_modes(f, bias_read_modes, sizeof bias_read_modes / sizeof bias_read_modes[0], task);
		if (status)
			return status;
		c->bias_address = reg(f, REG_DPU_RDMA_BS_BASE_ADDR);
		c->weight_offset = (int16_t)(reg(f, REG_DPU_BS_OW_OP) & 0xffffu);
		REFUSE_IF(reg(f, REG_DPU_RDMA_CUBE_WIDTH) != c->out_w - 1 || reg(f, REG_DPU_RDMA_CUBE_HEIGHT) != c->out_h - 1 ||
			  reg(f, REG_DPU_RDMA_CUBE_CHANNEL) != c->out_channels - 1,
			  "model: task %u: DPU_RDMA cube sizes disagree with %u x %u outputs of %u channels", task, c->out_w,
			  c->out_h, c->out_channels);
		REFUSE_IF(reg(f, REG_DPU_BS_OW_OP) >> 16, "model: task %u: DPU_BS_OW_OP = 0x%08x sets bits above OW_OP[15:0]",
			  task, reg(f, REG_DPU_BS_OW_OP));
		c->cvt_offset = (int32_t)reg(f, REG_DPU_OUT_CVT_OFFSET);
		c->cvt_scale = reg(f, REG_DPU_OUT_CVT_SCALE);
		c->cvt_shift = reg(f, REG_DPU_OUT_CVT_SHIFT);
		REFUSE_IF(c->cvt_scale >> 16 || c->cvt_shift >> 12 || c->cvt_shift == 0 || c->cvt_shift > 62,
			  "model: task %u: DPU_OUT_CVT_SCALE/SHIFT = 0x%08x/0x%08x; only a 16-bit scale and a right shift "
			  "of 1..62 (no FP32TOFP16, CVT_TYPE, CVT_ROUND or MINUS_EXP) are modelled", task, c->cvt_scale,
			  c->cvt_shift);
	}
	unsigned surfaces = c->kernel_group * c->out_bpe / 16; /* 16-byte output surfaces one kernel group fills */
	EXPECT(REG_DPU_BS_OW_CFG, c->requantize ? DPU_BS_OW_CFG_OD(surfaces - 1) : DPU_BS_OW_CFG(surfaces - 1),
	       "surfaces per kernel group");
	c->output_surface = reg(f, REG_DPU_DST_SURF_STRIDE);
	REFUSE_IF(c->output_surface % 16 || c->output_surface < c->out_w * c->out_h * 16u ||
		  reg(f, REG_DPU_SURFACE_ADD) != c->output_surface * surfaces,
		  "model: task %u: DPU_DST_SURF_STRIDE = 0x%x / SURFACE_ADD = 0x%x: expected a 16-byte multiple >= %u "
		  "atoms and SURFACE_ADD = %u x stride", task, c->output_surface, reg(f, REG_DPU_SURFACE_ADD),
		  c->out_w * c->out_h, surfaces);
	return NPU_OK;
}

/*
 * What the CNA buffers, from the values it reads (docs/npu-registers.md, "CBUF"): a row of the input
 * takes DATA_ENTRIES 64-byte units, rounded up to whole 128-byte entries (256 per bank); every row of
 * the task must fit the DATA_BANK banks, as both peers arrange (Mesa splits tasks, mtx512 refuses).
 * Weights must fit the WEIGHT_BANK banks, one kernel at most one bank; mtx512 ran larger weights in
 * one task, so this holds streams to what both peers' resident-weight path does, not to a known
 * hardware limit. WEIGHT_REUSE keeps the previous task's weights (Mesa, tasks after the first).
 * FEATURE_GRAINS stays within what a peer ran on an RK3588.
 */
static int check_cbuf(const struct register_file *f, unsigned task, struct conv_task *c)
{
	uint32_t con2 = reg(f, REG_CNA_CONV_CON2), cbuf = reg(f, REG_CNA_CBUF_CON0);
	uint32_t entries = reg(f, REG_CNA_CBUF_CON1), row_bytes = c->in_w * c->channels * c->bpe;
	uint32_t per_kernel = reg(f, REG_CNA_WEIGHT_SIZE1);
	unsigned grains = (con2 >> 4) & 0x3ffu, grains_max = c->info->task_max_rows + 1;
	unsigned data_banks = cbuf & 0xfu, weight_banks = (cbuf >> 4) & 0xfu;
	REFUSE_IF(con2 & ~(0x3ffu << 4) || grains == 0 || grains > grains_max,
		  "model: task %u: CNA_CONV_CON2 = 0x%08x: FEATURE_GRAINS %u, KERNEL_GROUP %u; a peer ran FEATURE_GRAINS "
		  "1..%u at %s on hardware, KERNEL_GROUP 0", task, con2, grains, con2 >> 16, grains_max,
		  c->info->name);
	REFUSE_IF(entries != (row_bytes + 63) / 64, "model: task %u: CNA_CBUF_CON1 = %u: a row of %u x %u channels x "
		  "%u bytes takes DATA_ENTRIES = %u 64-byte units", task, entries, c->in_w, c->channels, c->bpe,
		  (row_bytes + 63) / 64);
	c->weight_reuse = cbuf & CNA_CBUF_CON0_WEIGHT_REUSE;
	REFUSE_IF(cbuf & ~(0xffu | CNA_CBUF_CON0_WEIGHT_REUSE) || data_banks == 0 || weight_banks == 0 ||
		  data_banks + weight_banks > NPU_CBUF_BANKS,
		  "model: task %u: CNA_CBUF_CON0 = 0x%08x: DATA_BANK %u + WEIGHT_BANK %u must each be >= 1 and share "
		  "the %u banks (no bits but WEIGHT_REUSE)", task, cbuf, data_banks, weight_banks, NPU_CBUF_BANKS);
	unsigned row_entries = (entries * 64 + NPU_CBUF_ENTRY_BYTES - 1) / NPU_CBUF_ENTRY_BYTES;
	REFUSE_IF((uint64_t)c->in_h * row_entries > (uint64_t)data_banks * NPU_CBUF_ENTRIES_PER_BANK,
		  "model: task %u: CNA_CBUF_CON0 DATA_BANK = %u holds %u entries of %u bytes; %u rows of DATA_ENTRIES %u "
		  "(%u entries each) need %u", task, data_banks, data_banks * NPU_CBUF_ENTRIES_PER_BANK,
		  NPU_CBUF_ENTRY_BYTES, c->in_h, entries, row_entries, c->in_h * row_entries);
	REFUSE_IF(per_kernel > NPU_CBUF_BANK_BYTES || (uint64_t)c->weight_bytes > (uint64_t)weight_banks * NPU_CBUF_BANK_BYTES,
		  "model: task %u: CNA_WEIGHT_SIZE0/1 = %u/%u bytes: CBUF_CON0 WEIGHT_BANK = %u holds %u bytes, and a "
		  "kernel must fit one %u-byte bank", task, c->weight_bytes, per_kernel, weight_banks,
		  weight_banks * NPU_CBUF_BANK_BYTES, NPU_CBUF_BANK_BYTES);
	return NPU_OK;
}

/* Input cube, kernels, stride and padding (CNA), and the output cube (CNA, CORE, DPU must agree). */
static int check_convolution(const struct register_file *f, unsigned task, struct conv_task *c)
{
	uint32_t size0 = reg(f, REG_CNA_DATA_SIZE0), size1 = reg(f, REG_CNA_DATA_SIZE1);
	c->in_w = (size0 >> 16) & 0x7ffu;
	c->in_h = size0 & 0x7ffu;
	c->channels = size1 & 0xffffu;
	REFUSE_IF(size0 & 0xf800f800u || c->in_w == 0 || c->in_h == 0, "model: task %u: CNA_DATA_SIZE0 = 0x%08x: width "
		  "and height must be 1..2047 (11-bit fields)", task, size0);
	REFUSE_IF(c->channels == 0 || c->channels % c->c2 || (size1 >> 16) >= c->channels, "model: task %u: "
		  "CNA_DATA_SIZE1 = 0x%08x; channels must be a multiple of %u (one 16-byte atom) with CHANNEL_REAL < "
		  "channels", task, size1, c->c2);
	uint32_t con3 = reg(f, REG_CNA_CONV_CON3), pad0 = reg(f, REG_CNA_PAD_CON0);
	c->stride_x = con3 & 7u;
	c->stride_y = (con3 >> 3) & 7u;
	REFUSE_IF(con3 & ~0x3fu || c->stride_x == 0 || c->stride_y == 0, "model: task %u: CNA_CONV_CON3 = 0x%08x; only "
		  "strides 1..7 on one core (no NN_MODE, no dilation) are modelled", task, con3);
	uint32_t wsize2 = reg(f, REG_CNA_WEIGHT_SIZE2);
	c->kernel_w = (wsize2 >> 24) & 0x1fu;
	c->kernel_h = (wsize2 >> 16) & 0x1fu;
	c->kernels = wsize2 & 0x3fffu;
	REFUSE_IF(wsize2 & 0xe0e0c000u || c->kernel_w == 0 || c->kernel_h == 0 || c->kernels == 0,
		  "model: task %u: CNA_WEIGHT_SIZE2 = 0x%08x; kernels must be at least 1 x 1 and 1 of them", task, wsize2);
	c->pad_left = (pad0 >> 4) & 0xfu;
	c->pad_top = pad0 & 0xfu;
	REFUSE_IF(pad0 & ~0xffu || c->pad_left >= c->kernel_w || c->pad_top >= c->kernel_h, "model: task %u: "
		  "CNA_PAD_CON0 = 0x%08x: padding left %u / top %u must be smaller than the %u x %u kernel", task, pad0,
		  c->pad_left, c->pad_top, c->kernel_w, c->kernel_h);
	c->pad_bits = reg(f, REG_CNA_PAD_CON1);
	uint32_t per_kernel = c->kernel_w * c->kernel_h * c->channels * c->bpe;
	c->weight_bytes = per_kernel * c->kernels;
	REFUSE_IF(reg(f, REG_CNA_WEIGHT_SIZE1) != per_kernel || reg(f, REG_CNA_WEIGHT_SIZE0) != c->weight_bytes,
		  "model: task %u: CNA_WEIGHT_SIZE0/1 = %u/%u, expected %u/%u bytes", task,
		  reg(f, REG_CNA_WEIGHT_SIZE0), reg(f, REG_CNA_WEIGHT_SIZE1), c->weight_bytes, per_kernel);
	uint32_t out0 = reg(f, REG_CORE_DATAOUT_SIZE_0);
	c->out_w = (out0 & 0xffffu) + 1;
	c->out_h = (out0 >> 16) + 1;
	/* Output positions may read at most kernel - 1 padded columns/rows past the input's end. */
	REFUSE_IF((c->out_w - 1) * c->stride_x + c->kernel_w > c->in_w + c->pad_left + c->kernel_w - 1 ||
		  (c->out_h - 1) * c->stride_y + c->kernel_h > c->in_h + c->pad_top + c->kernel_h - 1,
		  "model: task %u: CORE_DATAOUT_SIZE_0 = 0x%08x: %u x %u outputs of a %u x %u kernel at stride %u x %u "
		  "read beyond the %u x %u input and its padding", task, out0, c->out_w, c->out_h, c->kernel_w,
		  c->kernel_h, c->stride_x, c->stride_y, c->in_w, c->in_h);
	REFUSE_IF(reg(f, REG_CNA_DATA_SIZE2) != c->out_w || reg(f, REG_CNA_DATA_SIZE3) != c->out_w * c->out_h,
		  "model: task %u: CNA_DATA_SIZE2/3 = %u/%u, expected output width %u and %u atomics", task,
		  reg(f, REG_CNA_DATA_SIZE2), reg(f, REG_CNA_DATA_SIZE3), c->out_w, c->out_w * c->out_h);
	REFUSE_IF((reg(f, REG_CNA_FC_DATA_SIZE0) & 0x7ffu) != c->in_h || reg(f, REG_CNA_FC_DATA_SIZE0) >> 16 < c->in_w ||
		  reg(f, REG_CNA_FC_DATA_SIZE1) != c->channels,
		  "model: task %u: CNA_FC_DATA_SIZE0/1 = 0x%08x/0x%08x disagree with DATA_SIZE0/1", task,
		  reg(f, REG_CNA_FC_DATA_SIZE0), reg(f, REG_CNA_FC_DATA_SIZE1));
	/* The output cube may have more channels than kernels: Mesa rounds it up to the kernel group and
	 * keeps the kernel count in ORIG_CHANNEL (rkt_regcmd.c); what lands in those channels is not known. */
	uint32_t wdma1 = ((c->out_h - 1) << 16) | (c->out_w - 1);
	uint32_t channel = reg(f, REG_DPU_DATA_CUBE_CHANNEL);
	c->out_channels = (channel & 0x1fffu) + 1;
	unsigned rounded = (c->kernels + c->kernel_group - 1) / c->kernel_group * c->kernel_group;
	REFUSE_IF(channel & 0xe000e000u || c->out_channels < c->kernels || c->out_channels > rounded ||
		  channel >> 16 != c->kernels - 1,
		  "model: task %u: DPU_DATA_CUBE_CHANNEL = 0x%08x: ORIG_CHANNEL must be the %u kernels - 1 and CHANNEL "
		  "the kernels or their count rounded up to %u, minus 1", task, channel, c->kernels, c->kernel_group);
	REFUSE_IF(reg(f, REG_CORE_DATAOUT_SIZE_1) != c->out_channels - 1 || reg(f, REG_DPU_DATA_CUBE_WIDTH) != c->out_w - 1 ||
		  reg(f, REG_DPU_DATA_CUBE_HEIGHT) != c->out_h - 1 || reg(f, REG_DPU_WDMA_SIZE_0) != c->out_channels - 1 ||
		  reg(f, REG_DPU_WDMA_SIZE_1) != wdma1,
		  "model: task %u: CORE_DATAOUT_SIZE_1 0x%x, DPU_DATA_CUBE_WIDTH/HEIGHT 0x%x/0x%x, DPU_WDMA_SIZE_0/1 "
		  "0x%x/0x%x disagree with %u x %u outputs of %u channels", task, reg(f, REG_CORE_DATAOUT_SIZE_1),
		  reg(f, REG_DPU_DATA_CUBE_WIDTH), reg(f, REG_DPU_DATA_CUBE_HEIGHT), reg(f, REG_DPU_WDMA_SIZE_0),
		  reg(f, REG_DPU_WDMA_SIZE_1), c->out_w, c->out_h, c->out_channels);
	/* LINE_STRIDE counts 4-byte words; SURF_STRIDE + LINE_STRIDE is a surface in 16-byte units. */
	uint32_t line = reg(f, REG_CNA_DMA_CON1), surface = reg(f, REG_CNA_DMA_CON2);
	c->line_bytes = line * 4;
	c->feature_surface = (surface + line) * 16;
	REFUSE_IF(line & ~0x0fffffffu || surface & ~0x0fffffffu || c->line_bytes < c->in_w * 16u ||
		  c->feature_surface < c->line_bytes * c->in_h,
		  "model: task %u: CNA_DMA_CON1/2 = 0x%08x/0x%08x give %u-byte lines and %u-byte surfaces, smaller than "
		  "%u x %u atoms", task, line, surface, c->line_bytes, c->feature_surface, c->in_w, c->in_h);
	c->feature_address = reg(f, REG_CNA_FEATURE_DATA_ADDR);
	c->weight_address = reg(f, REG_CNA_DCOMP_ADDR0);
	c->output_address = reg(f, REG_DPU_DST_BASE_ADDR);
	REFUSE_IF(c->output_address % 16 || c->feature_address % 16, "model: task %u: feature 0x%x / output 0x%x "
		  "not 16-byte aligned", task, c->feature_address, c->output_address);
	return NPU_OK;
}

#undef EXPECT

/* Element index of (kernel n, channel k, kernel position s) in the weight layout both peers write
 * (Mesa rkt_fill_weights, mtx512 weight_int8/weight_fp16): groups of kernel_group kernels, in each
 * group channel blocks of 32 (the last block holds what is left), then positions, then kernels. */
static size_t weight_element(const struct conv_task *c, unsigned n, unsigned k, unsigned s)
{
	unsigned positions = c->kernel_w * c->kernel_h, group = n / c->kernel_group;
	unsigned in_group = c->kernels - group * c->kernel_group < c->kernel_group ? c->kernels - group * c->kernel_group
										   : c->kernel_group;
	unsigned block = k / 32, in_block = c->channels - block * 32 < 32 ? c->channels - block * 32 : 32;
	return (size_t)group * c->kernel_group * c->channels * positions + (size_t)in_group * block * 32 * positions +
	       ((size_t)s * in_group + n % c->kernel_group) * in_block + k % 32;
}

/*
 * The multiply, blocked: PIXEL_BLOCK output positions by KERNEL_BLOCK kernels of accumulators at a time,
 * in vectors of 4 lanes across kernels, with the operands laid out for it. Every output element is still
 * one sum from zero in depth order d = s x channels + k (fp32 for fp16, whose products are exact in fp32;
 * int32 for int8), so the results are those of one dot product per (position, kernel), bit for bit; the
 * build's -ffp-contract=off keeps the fp32 multiplies and adds apart. The vectors are GCC's (and
 * Clang's) vector extension: the auto-vectorizer compiled the same loops written on scalars differently
 * with target and inlining, on aarch64 (under qemu) 5 times slower for int8.
 */
#define PIXEL_BLOCK 4u
#define KERNEL_BLOCK 8u /* 8 accumulator vectors: SSE2 has 16 vector registers, NEON 32 */
#define LANES 4u
typedef float f32x4 __attribute__((vector_size(16)));
typedef int32_t i32x4 __attribute__((vector_size(16)));

struct conv_operands {
	/* float (fp16 in) or int32, 4 bytes either way */
	void *a; /* [pixel block][depth][PIXEL_BLOCK]: the inputs; 0 past the last position */
	void *b; /* [kernel block][depth][KERNEL_BLOCK]: the weights (+ BS_OW_OP); 0 past the kernels */
	size_t a_bytes, b_bytes; /* allocated: the buffers serve every task of a job */
	unsigned depth, pixel_blocks, kernel_blocks;
};

/* fp16 to fp32 through a table of npu_f32_from_fp16's results (the same bits): the model converts every
 * operand of every task, and the function's branches per element cost more than the multiply. */
static float fp16_table[1u << 16];
static pthread_once_t fp16_table_once = PTHREAD_ONCE_INIT;

static void fill_fp16_table(void)
{
	for (uint32_t h = 0; h < 1u << 16; h++)
		fp16_table[h] = npu_f32_from_fp16((uint16_t)h);
}

static float fp16_at(const uint8_t *bytes)
{
	uint16_t h;
	memcpy(&h, bytes, 2);
	return fp16_table[h];
}

static void gather_atom(const struct conv_task *c, const uint8_t *feature, unsigned x, unsigned y, unsigned atom,
			uint8_t out[16])
{
	if (x < c->in_w && y < c->in_h) {
		memcpy(out, feature + (size_t)atom * c->feature_surface + (size_t)y * c->line_bytes + x * 16u, 16);
		return;
	}
	for (unsigned i = 0; i < 16; i += c->bpe) /* padding: the PAD_CON1 value in every element */
		memcpy(out + i, &c->pad_bits, c->bpe);
}

/* Depth d's element of row p (an output position) or column n (a kernel) in a's or b's layout. */
static size_t operand_at(const struct conv_operands *o, unsigned block, unsigned row, size_t d)
{
	return ((size_t)(row / block) * o->depth + d) * block + row % block;
}

/* One atom of output position p's inputs (depth d onwards) into a's layout. One loop per precision with
 * the atom's element count as a constant: an int32 store may alias c's unsigned fields, so a loop bounded
 * by c->c2 and branching on c->precision reloaded both for every element. */
static void store_atom(const struct conv_task *c, const struct conv_operands *o, unsigned p, size_t d,
		       const uint8_t bytes[16])
{
	size_t at = operand_at(o, PIXEL_BLOCK, p, d);
	if (c->precision == NPU_FP16) {
		float *a = (float *)o->a + at;
		for (unsigned i = 0; i < 8; i++)
			a[i * PIXEL_BLOCK] = fp16_at(bytes + 2 * i);
	} else {
		int32_t *a = (int32_t *)o->a + at;
		for (unsigned i = 0; i < 16; i++)
			a[i * PIXEL_BLOCK] = (int8_t)bytes[i];
	}
}

/* The im2col matrix, output position p's inputs in depth order d = s x channels + k, into a's layout;
 * atom by atom across all positions, the order a 1 x 1 kernel's feature map is stored in, so the reads
 * stream. Positions past the last are zero. */
static void gather_features(const struct conv_task *c, const uint8_t *feature, const struct conv_operands *o)
{
	unsigned pixels = c->out_w * c->out_h;
	static const uint8_t zero[16];
	for (unsigned s = 0; s < c->kernel_w * c->kernel_h; s++)
		for (unsigned atom = 0; atom < c->channels / c->c2; atom++) {
			size_t d = (size_t)s * c->channels + atom * c->c2;
			for (unsigned out_y = 0, p = 0; out_y < c->out_h; out_y++)
				for (unsigned out_x = 0; out_x < c->out_w; out_x++, p++) {
					/* unsigned wrap-around sends positions left of or above the input to the padding */
					unsigned x = out_x * c->stride_x + s % c->kernel_w - c->pad_left;
					unsigned y = out_y * c->stride_y + s / c->kernel_w - c->pad_top;
					uint8_t bytes[16];
					gather_atom(c, feature, x, y, atom, bytes);
					store_atom(c, o, p, d, bytes);
				}
			for (unsigned p = pixels; p < o->pixel_blocks * PIXEL_BLOCK; p++)
				store_atom(c, o, p, d, zero);
		}
}

/* The kernels' weights in depth order, into b's layout; kernels past the last are zero. The loops follow
 * the weight layout (in each kernel group: channel blocks of 32, positions, kernels), so the reads
 * stream, and a block's channels are contiguous in it, so weight_element is asked once per block. */
static void gather_weights(const struct conv_task *c, const uint8_t *weights, const struct conv_operands *o)
{
	unsigned positions = c->kernel_w * c->kernel_h;
	for (unsigned k0 = 0; k0 < c->channels; k0 += 32)
		for (unsigned s = 0; s < positions; s++)
			for (unsigned n = 0; n < o->kernel_blocks * KERNEL_BLOCK; n++) {
				/* locals and a pointer per precision, as in store_atom */
				unsigned count = c->channels - k0 < 32 ? c->channels - k0 : 32, real = n < c->kernels;
				size_t at = operand_at(o, KERNEL_BLOCK, n, (size_t)s * c->channels + k0);
				const uint8_t *from = weights + (real ? weight_element(c, n, k0, s) : 0) * c->bpe;
				int32_t offset = c->weight_offset;
				if (c->precision == NPU_FP16) {
					float *b = (float *)o->b + at;
					for (unsigned k = 0; k < count; k++)
						b[k * KERNEL_BLOCK] = real ? fp16_at(from + 2 * k) : 0.0f;
				} else { /* an int16 operand, as the unblocked model held it */
					int32_t *b = (int32_t *)o->b + at;
					for (unsigned k = 0; k < count; k++)
						b[k * KERNEL_BLOCK] = real ? (int16_t)((int8_t)from[k] + offset) : 0;
				}
			}
}

static int reserve(void **buffer, size_t *allocated, size_t bytes)
{
	if (bytes <= *allocated)
		return NPU_OK;
	void *grown = realloc(*buffer, bytes);
	if (!grown)
		return npu_fail(NPU_ERR_NOMEM, "model: out of memory for %zu bytes of operands", bytes);
	*buffer = grown;
	*allocated = bytes;
	return NPU_OK;
}

/* Both operands read before anything is written, as the unblocked model did: an output may overlap an
 * input. */
static int gather(const struct conv_task *c, const uint8_t *feature, const uint8_t *weights, struct conv_operands *o)
{
	o->depth = c->kernel_w * c->kernel_h * c->channels;
	o->pixel_blocks = (c->out_w * c->out_h + PIXEL_BLOCK - 1) / PIXEL_BLOCK;
	o->kernel_blocks = (c->kernels + KERNEL_BLOCK - 1) / KERNEL_BLOCK;
	int status = reserve(&o->a, &o->a_bytes, (size_t)o->pixel_blocks * PIXEL_BLOCK * o->depth * 4);
	if (!status)
		status = reserve(&o->b, &o->b_bytes, (size_t)o->kernel_blocks * KERNEL_BLOCK * o->depth * 4);
	if (status)
		return status;
	if (c->precision == NPU_FP16)
		pthread_once(&fp16_table_once, fill_fp16_table);
	gather_features(c, feature, o);
	gather_weights(c, weights, o);
	return NPU_OK;
}

/* OUT_CVT of Mesa's requantization: (sum x scale) >> shift, rounded half up (the rounding is derived:
 * docs/npu-registers.md), plus the offset, saturated to int8. */
static int8_t requantize(const struct conv_task *c, int64_t sum)
{
	int64_t scaled = (sum * (int64_t)c->cvt_scale + ((int64_t)1 << (c->cvt_shift - 1))) >> c->cvt_shift;
	scaled += c->cvt_offset;
	return (int8_t)(scaled < -128 ? -128 : scaled > 127 ? 127 : scaled);
}

/* The memory a task touches, each span checked against the job's BOs. */
struct conv_memory {
	uint8_t *feature, *weights, *output;
	const uint8_t *bias; /* requantization only */
};

static int resolve_memory(const struct job_view *job, const struct conv_task *c, unsigned task, struct conv_memory *m)
{
	unsigned pixels = c->out_w * c->out_h, per_atom = 16 / c->out_bpe;
	uint64_t feature_span = (uint64_t)(c->channels / c->c2 - 1) * c->feature_surface +
				(uint64_t)(c->in_h - 1) * c->line_bytes + (uint64_t)c->in_w * 16;
	uint64_t output_span = (uint64_t)((c->out_channels + per_atom - 1) / per_atom - 1) * c->output_surface +
			       (uint64_t)pixels * 16;
	char what[64];
	int status;
	m->bias = NULL;
	snprintf(what, sizeof what, "task %u feature read", task);
	if ((status = resolve(job, c->feature_address, feature_span, 0, what, &m->feature)))
		return status;
	snprintf(what, sizeof what, "task %u weight read", task);
	if ((status = resolve(job, c->weight_address, c->weight_bytes, 0, what, &m->weights)))
		return status;
	snprintf(what, sizeof what, "task %u output write", task);
	if ((status = resolve(job, c->output_address, output_span, 1, what, &m->output)))
		return status;
	if (c->requantize) {
		uint8_t *bias_bytes;
		snprintf(what, sizeof what, "task %u bias read", task);
		if ((status = resolve(job, c->bias_address, (uint64_t)c->kernels * 4, 0, what, &bias_bytes)))
			return status;
		m->bias = bias_bytes;
	}
	return NPU_OK;
}

/* One block's raw sums: fp32 (fp16 in) or int32 (int8 in), 4 bytes each either way. */
union block_sums {
	f32x4 fp32[PIXEL_BLOCK][KERNEL_BLOCK / LANES];
	i32x4 int32[PIXEL_BLOCK][KERNEL_BLOCK / LANES];
	uint8_t bytes[PIXEL_BLOCK][KERNEL_BLOCK][4];
};

/* The sums of one block: per depth step, the kernels' column times each position's input. fp16 products
 * are exact in fp32; the hardware's accumulation order/width is not documented: tests use an error
 * bound, not equality. */
#define DEFINE_MULTIPLY(name, element, vector, attributes)                                                 \
	attributes static void name(const element *a, const element *b, unsigned depth,                               \
			 vector sums[PIXEL_BLOCK][KERNEL_BLOCK / LANES])                                   \
	{                                                                                                  \
		vector acc[PIXEL_BLOCK][KERNEL_BLOCK / LANES] = {{{0}}};                                   \
		for (unsigned d = 0; d < depth; d++, a += PIXEL_BLOCK, b += KERNEL_BLOCK) {                \
			vector column[KERNEL_BLOCK / LANES];                                               \
			memcpy(column, b, sizeof column);                                                  \
			for (unsigned i = 0; i < PIXEL_BLOCK; i++)                                         \
				for (unsigned j = 0; j < KERNEL_BLOCK / LANES; j++)                         \
					acc[i][j] += column[j] * a[i];                                      \
		}                                                                                          \
		memcpy(sums, acc, sizeof acc);                                                             \
	}
#if defined(__x86_64__)
/* SSE2, x86-64's baseline, has no 32-bit lane multiply: a clone for CPUs with SSE4.1's, chosen when the
 * library loads, runs int8 twice as fast. */
#define INT32_MULTIPLY_CLONES __attribute__((target_clones("sse4.1", "default")))
#else
#define INT32_MULTIPLY_CLONES
#endif
DEFINE_MULTIPLY(multiply_fp16, float, f32x4, )
DEFINE_MULTIPLY(multiply_int8, int32_t, i32x4, INT32_MULTIPLY_CLONES)
#undef DEFINE_MULTIPLY

/* One output element: the raw sum (fp32 or int32), or Mesa's int8 requantization of sum + bias. */
static void store_output(const struct conv_task *c, const uint8_t *bias, unsigned n, const void *sum, uint8_t *at)
{
	if (!c->requantize) {
		memcpy(at, sum, 4);
		return;
	}
	int32_t sum_value, bias_value;
	memcpy(&sum_value, sum, 4);
	memcpy(&bias_value, bias + 4u * n, 4);
	int8_t value = requantize(c, (int64_t)sum_value + bias_value);
	memcpy(at, &value, 1);
}

/* What the threads of one task share; each runs the (pixel block, kernel block) pairs of its range, pixel
 * block major. */
struct conv_share {
	const struct conv_task *c;
	const struct conv_memory *m;
	const struct conv_operands *o;
};

static void run_block(const struct conv_share *w, unsigned pixel_block, unsigned kernel_block)
{
	const struct conv_task *c = w->c;
	const struct conv_operands *o = w->o;
	size_t a_at = (size_t)pixel_block * o->depth * PIXEL_BLOCK, b_at = (size_t)kernel_block * o->depth * KERNEL_BLOCK;
	union block_sums sums;
	if (c->precision == NPU_FP16)
		multiply_fp16((const float *)o->a + a_at, (const float *)o->b + b_at, o->depth, sums.fp32);
	else
		multiply_int8((const int32_t *)o->a + a_at, (const int32_t *)o->b + b_at, o->depth, sums.int32);
	unsigned pixels = c->out_w * c->out_h, per_atom = 16 / c->out_bpe;
	for (unsigned i = 0; i < PIXEL_BLOCK && pixel_block * PIXEL_BLOCK + i < pixels; i++)
		for (unsigned l = 0; l < KERNEL_BLOCK && kernel_block * KERNEL_BLOCK + l < c->kernels; l++) {
			unsigned p = pixel_block * PIXEL_BLOCK + i, n = kernel_block * KERNEL_BLOCK + l;
			store_output(c, w->m->bias, n, sums.bytes[i][l],
				     w->m->output + (size_t)(n / per_atom) * c->output_surface + p * 16u +
					     (n % per_atom) * c->out_bpe);
		}
}

static void run_share(void *context, unsigned index, size_t first, size_t end)
{
	const struct conv_share *w = context;
	(void)index;
	for (size_t item = first; item < end; item++)
		run_block(w, (unsigned)(item / w->o->kernel_blocks), (unsigned)(item % w->o->kernel_blocks));
}

#define MODEL_THREADS_MAX 8u
#define MODEL_THREAD_MIN_MACS (1u << 21) /* a thread's start costs about as much as this much multiplying */

/* Threads for one task: NPU_MODEL_THREADS if set to a count (1: the caller's thread alone), else the
 * online CPUs; at most MODEL_THREADS_MAX, and fewer when the task is too small to pay for them. */
static unsigned thread_count(const struct conv_task *c, const struct conv_operands *o)
{
	const char *setting = getenv("NPU_MODEL_THREADS");
	long wanted = setting && *setting ? strtol(setting, NULL, 10) : 0;
	if (wanted < 1)
		wanted = sysconf(_SC_NPROCESSORS_ONLN);
	uint64_t macs = (uint64_t)c->out_w * c->out_h * c->kernels * o->depth;
	uint64_t count = wanted < 1 ? 1 : (uint64_t)wanted, items = (uint64_t)o->pixel_blocks * o->kernel_blocks;
	count = count < MODEL_THREADS_MAX ? count : MODEL_THREADS_MAX;
	count = count < macs / MODEL_THREAD_MIN_MACS ? count : macs / MODEL_THREAD_MIN_MACS;
	count = count < items ? count : items;
	return count ? (unsigned)count : 1;
}

static int execute(const struct job_view *job, const struct conv_task *c, unsigned task, struct conv_operands *operands)
{
	unsigned pixels = c->out_w * c->out_h, per_atom = 16 / c->out_bpe;
	struct conv_memory m;
	int status;
	if ((status = resolve_memory(job, c, task, &m)) || (status = gather(c, m.feature, m.weights, operands)))
		return status;
	for (unsigned p = 0; p < pixels; p++)
		for (unsigned n = c->kernels; n < c->out_channels; n++) /* no source says what these hold */
			memset(m.output + (size_t)(n / per_atom) * c->output_surface + p * 16u + (n % per_atom) * c->out_bpe,
			       NPU_UNDEFINED_BYTE, c->out_bpe);
	/* The blocks split evenly over the threads; they write disjoint outputs and only read the operands. */
	struct conv_share share = {c, &m, operands};
	npu_parallel_for(thread_count(c, operands), (size_t)operands->pixel_blocks * operands->kernel_blocks, run_share,
			 &share);
	return NPU_OK;
}

static int interpret(const uint64_t *words, uint32_t count, unsigned index, struct register_file *file,
		     struct conv_task *conv)
{
	int status = decode(words, count, index, file);
	if (!status)
		status = check_precision(file, index, conv);
	if (!status)
		status = check_convolution(file, index, conv);
	if (!status)
		status = check_dpu(file, index, conv);
	if (!status)
		status = check_cbuf(file, index, conv);
	return status;
}

/* Cycles of one task at the MAC array's peak: 1024 int8 or 512 fp16 multiply-accumulates per cycle and core. */
static uint64_t task_cycles(const struct conv_task *c)
{
	uint64_t macs = (uint64_t)c->out_w * c->out_h * c->kernels * c->kernel_w * c->kernel_h * c->channels;
	return macs / c->info->macs_per_cycle;
}

/* The weights the CBUF holds after a task: what a WEIGHT_REUSE task in the same job computes with. */
struct cbuf_weights {
	uint32_t address, bytes;
	int valid;
};

static int check_reuse(const struct conv_task *c, unsigned index, struct cbuf_weights *held)
{
	if (c->weight_reuse && (!held->valid || held->address != c->weight_address || held->bytes != c->weight_bytes))
		return npu_fail(NPU_ERR_REFUSED, "model: task %u: CNA_CBUF_CON0 sets WEIGHT_REUSE but the CBUF holds %s "
				"(this task's weights: 0x%x, %u bytes)", index, held->valid ? "other weights" : "no weights "
				"of this job", c->weight_address, c->weight_bytes);
	*held = (struct cbuf_weights){c->weight_address, c->weight_bytes, 1};
	return NPU_OK;
}

/* Interprets and runs one task, unless its cycles take the job past its budget (the driver resets a
 * job at its timeout): then NPU_ERR_TIMEOUT and nothing of it runs. *used counts the job's cycles. */
static int run_task(const struct job_view *job, const struct npu_task *task, unsigned index, uint64_t *used,
		    struct cbuf_weights *held, struct conv_operands *operands)
{
	uint8_t *stream;
	char what[64];
	snprintf(what, sizeof what, "task %u regcmd", index);
	int status = resolve(job, task->regcmd, (uint64_t)task->regcmd_count * 8, 0, what, &stream);
	if (status)
		return status;
	if (task->regcmd % 16)
		return npu_fail(NPU_ERR_REFUSED, "model: task %u regcmd address 0x%x is not 16-byte aligned "
				"(PC_BASE_ADDRESS)", index, task->regcmd);
	uint64_t *words = malloc((size_t)task->regcmd_count * 8);
	struct register_file *file = malloc(sizeof *file);
	if (!words || !file) {
		free(words), free(file);
		return npu_fail(NPU_ERR_NOMEM, "model: out of memory");
	}
	memcpy(words, stream, (size_t)task->regcmd_count * 8); /* little-endian words, as the PC reads them */
	struct conv_task conv = {0};
	status = interpret(words, task->regcmd_count, index, file, &conv);
	if (!status)
		status = check_reuse(&conv, index, held);
	if (!status) {
		uint64_t cycles = task_cycles(&conv) + 1, budget = job->job->cycle_budget;
		if (budget && *used + cycles > budget)
			status = npu_fail(NPU_ERR_TIMEOUT, "model: task %u passes the job's cycle budget", index);
		else
			*used += cycles;
	}
	if (!status)
		status = execute(job, &conv, index, operands);
	free(words), free(file);
	return status;
}

int npu_model_check_task(const uint64_t *words, uint32_t count)
{
	struct register_file *file = malloc(sizeof *file);
	if (!file)
		return npu_fail(NPU_ERR_NOMEM, "model: out of memory");
	struct conv_task conv = {0};
	int status = interpret(words, count, 0, file, &conv);
	free(file);
	return status;
}

int npu_space_run_job(const struct npu_space *space, const struct npu_job *job, unsigned task_count,
		      uint64_t *cycles)
{
	struct job_view view = {space, job};
	struct cbuf_weights held = {0, 0, 0};
	struct conv_operands operands = {0};
	uint64_t used = 0;
	int status = NPU_OK;
	for (unsigned i = 0; i < task_count && !status; i++)
		status = run_task(&view, &job->tasks[i], i, &used, &held, &operands);
	free(operands.a), free(operands.b);
	if (cycles)
		*cycles = used;
	return status;
}
