/* SPDX-License-Identifier: MIT */
/*
 * The NPU interpreter behind the software model and the emulated rocket device: an NPU address space
 * of BOs (one per fd, 4 GiB, placed as the kernel's drm_mm places them), and jobs run by interpreting
 * each task's register-command stream the way the PC block fetches it. It knows the registers of the
 * 1x1-convolution GEMM subset (CNA, CORE, DPU; docs/npu-registers.md), checks the hardware's limits
 * from the values it reads, and refuses anything else with NPU_ERR_REFUSED and a message naming the
 * word, register and value, rather than guessing. A task may only read BOs listed as job inputs or
 * outputs and only write job outputs (the driver's implicit fencing covers exactly those).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "npu_interpreter.h"
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
		int is_out = listed(job->out_handles, job->out_count, bo->handle);
		if (write && !is_out)
			return npu_fail(NPU_ERR_REFUSED, "model: %s at 0x%llx writes a BO not listed as a job output",
					what, (unsigned long long)address);
		if (!write && !is_out && !listed(job->in_handles, job->in_count, bo->handle))
			return npu_fail(NPU_ERR_REFUSED, "model: %s at 0x%llx reads a BO not listed as a job input",
					what, (unsigned long long)address);
		*pointer = bo->memory + (address - bo->address);
		return NPU_OK;
	}
	return npu_fail(NPU_ERR_REFUSED, "model: %s at NPU address 0x%llx is not inside any BO of this fd", what,
			(unsigned long long)address);
}

/* The registers a GEMM task writes; each task must write every one of them (no state is assumed
 * to survive from an earlier task). */
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
};

#define KNOWN_COUNT (sizeof known_registers / sizeof known_registers[0])
#define REGISTER_SPACE 0x5000u

struct register_file {
	uint32_t value[REGISTER_SPACE / 4];
	uint8_t written[REGISTER_SPACE / 4];
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

static int decode(const uint64_t *words, uint32_t count, unsigned task, struct register_file *file)
{
	if (count % 2)
		return npu_fail(NPU_ERR_REFUSED, "model: task %u regcmd_count %u is odd; the PC fetches 128-bit pairs "
				"((count + 1) / 2 - 1 amounts) and would run one word past the stream", task, count);
	if (count < 4 + KNOWN_COUNT)
		return npu_fail(NPU_ERR_REFUSED, "model: task %u has %u regcmd words; a GEMM task needs %u", task, count,
				(unsigned)(4 + KNOWN_COUNT));
	memset(file, 0, sizeof *file);
	for (uint32_t i = 0; i + 4 < count; i++) {
		uint64_t word = words[i];
		uint16_t target = (uint16_t)(word >> 48);
		uint32_t value = (uint32_t)(word >> 16);
		uint16_t reg = (uint16_t)word;
		unsigned block = reg >> 12;
		if (word == 0)
			return npu_fail(NPU_ERR_REFUSED, "model: task %u word %u is an empty word inside the stream", task, i);
		int index = known_index(reg);
		if (index < 0)
			return npu_fail(NPU_ERR_REFUSED, "model: task %u word %u writes register 0x%04x (%s block) = 0x%08x, "
					"which the model does not model", task, i, reg, block_name(block), value);
		static const uint16_t expected_target[8] = {0, NPU_TARGET_CNA, 0, NPU_TARGET_CORE, NPU_TARGET_DPU,
							     0, 0, 0};
		uint16_t expected = (uint16_t)(expected_target[block & 7] | NPU_TARGET_WRITE_BIT);
		if (target != expected)
			return npu_fail(NPU_ERR_REFUSED, "model: task %u word %u writes %s with target 0x%04x; the %s block "
					"is addressed as 0x%04x", task, i, known_registers[index].name, target,
					block_name(block), expected);
		file->value[reg / 4] = value;
		file->written[reg / 4] = 1;
	}
	const uint64_t *tail = words + count - 4;
	if (tail[0] != 0)
		return npu_fail(NPU_ERR_REFUSED, "model: task %u: tail word 0 is 0x%016llx; only single tasks (0, no "
				"PC_BASE_ADDRESS chaining) are modelled", task, (unsigned long long)tail[0]);
	if (tail[1] != npu_regcmd_word(NPU_TARGET_PC | NPU_TARGET_WRITE_BIT, REG_PC_REGISTER_AMOUNTS, 0))
		return npu_fail(NPU_ERR_REFUSED, "model: task %u: tail word 1 is 0x%016llx, expected PC_REGISTER_AMOUNTS "
				"= 0", task, (unsigned long long)tail[1]);
	if (tail[2] != npu_regcmd_word(NPU_TARGET_TAIL_MARKER, 0, 0))
		return npu_fail(NPU_ERR_REFUSED, "model: task %u: tail word 2 is 0x%016llx, expected the 0x0041 marker",
				task, (unsigned long long)tail[2]);
	if (tail[3] != npu_regcmd_word(NPU_TARGET_OP_ENABLE, REG_PC_OPERATION_ENABLE, NPU_OPEN_GEMM))
		return npu_fail(NPU_ERR_REFUSED, "model: task %u: last word is 0x%016llx; the model runs only op_en "
				"with CNA|CORE|DPU (value 0x%x)", task, (unsigned long long)tail[3], NPU_OPEN_GEMM);
	for (unsigned i = 0; i < KNOWN_COUNT; i++)
		if (!file->written[known_registers[i].reg / 4])
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

struct gemm_task {
	enum npu_precision precision;
	unsigned mt, kt, nt, bpe, group, c2;
	uint32_t feature_address, weight_address, output_address;
	uint32_t feature_surface, output_surface;
};

static const struct {
	uint16_t reg;
	uint32_t value;
	const char *meaning;
} fixed_modes[] = {
	{REG_DPU_S_POINTER, DPU_S_POINTER_PP, "ping-pong pointer mode"},
	{REG_CNA_CONV_CON3, CNA_CONV_CON3_STRIDE_1X1, "stride 1, single-core NN mode, no dilation"},
	{REG_CNA_DATA_SIZE2, 1, "output width 1"},
	{REG_CNA_CVT_CON0, CNA_CVT_CON0_SIGNED_BYPASS, "signed input, conversion bypassed"},
	{REG_CNA_CVT_CON1, CNA_CVT_SCALE_ONE, "scale 1"},
	{REG_CNA_CVT_CON2, CNA_CVT_SCALE_ONE, "scale 1"},
	{REG_CNA_CVT_CON3, CNA_CVT_SCALE_ONE, "scale 1"},
	{REG_CNA_CVT_CON4, CNA_CVT_SCALE_ONE, "scale 1"},
	{REG_CNA_CVT_CON5, 0, "no per-channel conversion"},
	{REG_CNA_FC_CON0, 0, "no FC mode"},
	{REG_CNA_FC_CON1, 0, "no FC mode"},
	{REG_CNA_FC_CON2, 0, "no weight offset"},
	{REG_CNA_PAD_CON0, 0, "no padding"},
	{REG_CNA_PAD_CON1, 0, "pad value 0"},
	{REG_CNA_DMA_CON0, CNA_DMA_CON0_BURST16, "burst 16"},
	{REG_CNA_DMA_CON1, 4, "line stride of a W=1 feature map"},
	{REG_CNA_DCOMP_CTRL, 0, "no weight decompression"},
	{REG_CNA_DCOMP_REGNUM, 0, "no weight decompression"},
	{REG_CORE_CLIP_TRUNCATE, 0, "no truncation"},
	{REG_CORE_UNDOCUMENTED_3030, 0, "as Mesa and [X] write it"},
	{REG_DPU_FEATURE_MODE_CFG, DPU_FEATURE_MODE_CFG_TO_MEMORY, "output to memory, burst 16"},
	{REG_DPU_OFFSET_PEND, 0, "no offset"},
	{REG_DPU_DATA_CUBE_WIDTH, 0, "width 1"},
	{REG_DPU_DATA_CUBE_NOTCH_ADDR, 0, "no notch"},
	{REG_DPU_BS_CFG, DPU_BYPASS_ALL_BS_BN, "BS bypassed"},
	{REG_DPU_BS_ALU_CFG, 0, "BS bypassed"},
	{REG_DPU_BS_MUL_CFG, 0, "BS bypassed"},
	{REG_DPU_BS_RELUX_CMP_VALUE, 0, "BS bypassed"},
	{REG_DPU_BS_OW_OP, 0, "no weight offset"},
	{REG_DPU_BN_CFG, DPU_BYPASS_ALL_BS_BN, "BN bypassed"},
	{REG_DPU_BN_ALU_CFG, 0, "BN bypassed"},
	{REG_DPU_BN_MUL_CFG, 0, "BN bypassed"},
	{REG_DPU_BN_RELUX_CMP_VALUE, 0, "BN bypassed"},
	{REG_DPU_EW_CFG, DPU_EW_CFG_BYPASS_ALL, "EW bypassed"},
	{REG_DPU_EW_CVT_OFFSET_VALUE, 0, "EW bypassed"},
	{REG_DPU_EW_CVT_SCALE_VALUE, 1, "EW bypassed"},
	{REG_DPU_EW_RELUX_CMP_VALUE, 0, "EW bypassed"},
	{REG_DPU_OUT_CVT_OFFSET, 0, "no output conversion"},
	{REG_DPU_OUT_CVT_SCALE, 1, "no output conversion"},
	{REG_DPU_OUT_CVT_SHIFT, 0, "no output conversion"},
	{REG_DPU_UNDOCUMENTED_40C4, 0, "as Mesa writes it"},
};

static int check_modes(const struct register_file *f, unsigned task, struct gemm_task *g)
{
	uint32_t con1 = reg(f, REG_CNA_CONV_CON1);
	if (con1 == 0)
		g->precision = NPU_INT8;
	else if (con1 == (CNA_CONV_CON1_PROC_PRECISION(NPU_PREC_FP16) | CNA_CONV_CON1_IN_PRECISION(NPU_PREC_FP16)))
		g->precision = NPU_FP16;
	else
		return npu_fail(NPU_ERR_REFUSED, "model: task %u: CNA_CONV_CON1 = 0x%08x; only direct convolution with "
				"int8 (0x0) or fp16 (0x120) input is modelled", task, con1);
	int fp16 = g->precision == NPU_FP16;
	unsigned in_prec = fp16 ? NPU_PREC_FP16 : NPU_PREC_INT8;
	unsigned out_prec = fp16 ? NPU_PREC_FP32 : NPU_PREC_INT32;
	g->bpe = fp16 ? 2 : 1;
	g->group = fp16 ? 16 : 32;
	g->c2 = 16 / g->bpe;
	unsigned size_e = g->group * 4 / 16 - 1;
	int status = 0;
#define EXPECT(offset, value, meaning)                                        \
	do {                                                                  \
		if ((status = expect(f, offset, value, task, meaning)) != 0) \
			return status;                                        \
	} while (0)
	for (unsigned i = 0; i < sizeof fixed_modes / sizeof fixed_modes[0]; i++)
		EXPECT(fixed_modes[i].reg, fixed_modes[i].value, fixed_modes[i].meaning);
	for (unsigned i = 0; i < 16; i++)
		EXPECT((uint16_t)(REG_CNA_DCOMP_AMOUNT0 + 4 * i), 0, "no weight decompression");
	for (unsigned i = 0; i < 8; i++)
		EXPECT((uint16_t)(REG_DPU_EW_OP_VALUE_0 + 4 * i), 0, "EW bypassed");
	for (unsigned i = 0; i < NPU_DPU_LUT_REGISTERS; i++)
		EXPECT((uint16_t)(REG_DPU_LUT_ACCESS_CFG + 4 * i), 0, "no LUT (EW_CFG bypasses it)");
	EXPECT(REG_CORE_MISC_CFG, fp16 ? CORE_MISC_CFG_PROC_PRECISION(NPU_PREC_FP16) | CORE_MISC_CFG_QD_EN : 0,
	       fp16 ? "fp16 processing" : "int8 processing");
	EXPECT(REG_DPU_DATA_FORMAT, DPU_DATA_FORMAT(out_prec, in_prec, in_prec),
	       fp16 ? "fp16 in, fp32 out" : "int8 in, int32 out");
	EXPECT(REG_DPU_BS_OW_CFG, DPU_BS_OW_CFG(size_e), "surfaces per kernel group, OD bypassed");
#undef EXPECT
	return NPU_OK;
}

#define REFUSE_IF(condition, ...)                                        \
	do {                                                             \
		if (condition)                                           \
			return npu_fail(NPU_ERR_REFUSED, __VA_ARGS__); \
	} while (0)

/*
 * What the CNA buffers, from the values it reads (docs/npu-registers.md, "CBUF"): a row takes
 * DATA_ENTRIES 64-byte units, rounded up to whole 128-byte entries (256 per bank); every row of the
 * task must fit the DATA_BANK banks, as both peers arrange (Mesa splits tasks, mtx512 refuses). Weights
 * must fit the WEIGHT_BANK banks, one kernel at most one bank; mtx512 ran larger weights in one task,
 * so this holds streams to what both peers' resident-weight path does, not to a known hardware limit.
 * FEATURE_GRAINS stays within what a peer ran on an RK3588.
 */
static int check_cbuf(const struct register_file *f, unsigned task, const struct gemm_task *g)
{
	uint32_t con2 = reg(f, REG_CNA_CONV_CON2), cbuf = reg(f, REG_CNA_CBUF_CON0);
	uint32_t entries = reg(f, REG_CNA_CBUF_CON1), row_bytes = g->kt * g->bpe;
	uint32_t per_kernel = reg(f, REG_CNA_WEIGHT_SIZE1), weight_bytes = reg(f, REG_CNA_WEIGHT_SIZE0);
	unsigned grains = (con2 >> 4) & 0x3ffu, grains_max = npu_task_max_rows(g->precision) + 1;
	unsigned data_banks = cbuf & 0xfu, weight_banks = (cbuf >> 4) & 0xfu;
	REFUSE_IF(con2 & ~(0x3ffu << 4) || grains == 0 || grains > grains_max,
		  "model: task %u: CNA_CONV_CON2 = 0x%08x: FEATURE_GRAINS %u, KERNEL_GROUP %u; a peer ran FEATURE_GRAINS "
		  "1..%u at %s on hardware, KERNEL_GROUP 0", task, con2, grains, con2 >> 16, grains_max,
		  g->precision == NPU_FP16 ? "fp16" : "int8");
	REFUSE_IF(entries != (row_bytes + 63) / 64, "model: task %u: CNA_CBUF_CON1 = %u: a row of %u channels x %u "
		  "bytes takes DATA_ENTRIES = %u 64-byte units", task, entries, g->kt, g->bpe, (row_bytes + 63) / 64);
	REFUSE_IF(cbuf & ~0xffu || data_banks == 0 || weight_banks == 0 || data_banks + weight_banks > NPU_CBUF_BANKS,
		  "model: task %u: CNA_CBUF_CON0 = 0x%08x: DATA_BANK %u + WEIGHT_BANK %u must each be >= 1 and share "
		  "the %u banks (no reuse bits)", task, cbuf, data_banks, weight_banks, NPU_CBUF_BANKS);
	unsigned row_entries = (entries * 64 + NPU_CBUF_ENTRY_BYTES - 1) / NPU_CBUF_ENTRY_BYTES;
	REFUSE_IF((uint64_t)g->mt * row_entries > (uint64_t)data_banks * NPU_CBUF_ENTRIES_PER_BANK,
		  "model: task %u: CNA_CBUF_CON0 DATA_BANK = %u holds %u entries of %u bytes; %u rows of DATA_ENTRIES %u "
		  "(%u entries each) need %u", task, data_banks, data_banks * NPU_CBUF_ENTRIES_PER_BANK,
		  NPU_CBUF_ENTRY_BYTES, g->mt, entries, row_entries, g->mt * row_entries);
	REFUSE_IF(per_kernel > NPU_CBUF_BANK_BYTES || (uint64_t)weight_bytes > (uint64_t)weight_banks * NPU_CBUF_BANK_BYTES,
		  "model: task %u: CNA_WEIGHT_SIZE0/1 = %u/%u bytes: CBUF_CON0 WEIGHT_BANK = %u holds %u bytes, and a "
		  "kernel must fit one %u-byte bank", task, weight_bytes, per_kernel, weight_banks,
		  weight_banks * NPU_CBUF_BANK_BYTES, NPU_CBUF_BANK_BYTES);
	return NPU_OK;
}

static int check_geometry(const struct register_file *f, unsigned task, struct gemm_task *g)
{
	uint32_t size0 = reg(f, REG_CNA_DATA_SIZE0), size1 = reg(f, REG_CNA_DATA_SIZE1);
	g->mt = size0 & 0x7ffu;
	g->kt = size1 & 0xffffu;
	REFUSE_IF(size0 >> 16 != 1 || g->mt == 0, "model: task %u: CNA_DATA_SIZE0 = 0x%08x; only width 1 and "
		  "height >= 1 are modelled", task, size0);
	REFUSE_IF(g->kt == 0 || g->kt % 32 || (size1 >> 16) != g->kt - 1, "model: task %u: CNA_DATA_SIZE1 = 0x%08x; "
		  "channels must be a multiple of 32 with CHANNEL_REAL = channels - 1", task, size1);
	REFUSE_IF(size0 & 0xf800u, "model: task %u: CNA_DATA_SIZE0 = 0x%08x sets bits above the 11-bit height", task,
		  size0);
	REFUSE_IF(reg(f, REG_CNA_DATA_SIZE3) != g->mt, "model: task %u: CNA_DATA_SIZE3 = %u, expected %u atomics",
		  task, reg(f, REG_CNA_DATA_SIZE3), g->mt);
	REFUSE_IF(reg(f, REG_CNA_FC_DATA_SIZE0) != ((1u << 16) | g->mt) || reg(f, REG_CNA_FC_DATA_SIZE1) != g->kt,
		  "model: task %u: CNA_FC_DATA_SIZE0/1 = 0x%08x/0x%08x disagree with DATA_SIZE0/1", task,
		  reg(f, REG_CNA_FC_DATA_SIZE0), reg(f, REG_CNA_FC_DATA_SIZE1));
	uint32_t wsize2 = reg(f, REG_CNA_WEIGHT_SIZE2);
	g->nt = wsize2 & 0x3fffu;
	REFUSE_IF((wsize2 & ~0x3fffu) != ((1u << 24) | (1u << 16)) || g->nt == 0 || g->nt % g->group,
		  "model: task %u: CNA_WEIGHT_SIZE2 = 0x%08x; only 1x1 kernels, a multiple of %u of them, are modelled",
		  task, wsize2, g->group);
	uint32_t weight_bytes = g->nt * g->kt * g->bpe;
	REFUSE_IF(reg(f, REG_CNA_WEIGHT_SIZE1) != g->kt * g->bpe || reg(f, REG_CNA_WEIGHT_SIZE0) != weight_bytes,
		  "model: task %u: CNA_WEIGHT_SIZE0/1 = %u/%u, expected %u/%u bytes", task,
		  reg(f, REG_CNA_WEIGHT_SIZE0), reg(f, REG_CNA_WEIGHT_SIZE1), weight_bytes, g->kt * g->bpe);
	int status = check_cbuf(f, task, g);
	if (status)
		return status;
	/* SURF_STRIDE = LINE_STRIDE * (H / 4 - 1) with LINE_STRIDE 4: the surface is (field + 4) * 16 bytes. */
	g->feature_surface = (reg(f, REG_CNA_DMA_CON2) + 4) * 16;
	REFUSE_IF(reg(f, REG_CNA_DMA_CON2) & ~0x0fffffffu || g->feature_surface < g->mt * 16,
		  "model: task %u: CNA_DMA_CON2 = 0x%08x gives %u-byte surfaces, smaller than the %u rows read", task,
		  reg(f, REG_CNA_DMA_CON2), g->feature_surface, g->mt);
	REFUSE_IF(reg(f, REG_CORE_DATAOUT_SIZE_0) != (g->mt - 1) << 16 || reg(f, REG_CORE_DATAOUT_SIZE_1) != g->nt - 1,
		  "model: task %u: CORE_DATAOUT_SIZE_0/1 = 0x%08x/0x%08x disagree with %u rows x %u kernels", task,
		  reg(f, REG_CORE_DATAOUT_SIZE_0), reg(f, REG_CORE_DATAOUT_SIZE_1), g->mt, g->nt);
	REFUSE_IF(reg(f, REG_DPU_DATA_CUBE_HEIGHT) != g->mt - 1 ||
		  reg(f, REG_DPU_DATA_CUBE_CHANNEL) != (((g->nt - 1) << 16) | (g->nt - 1)) ||
		  reg(f, REG_DPU_WDMA_SIZE_0) != g->nt - 1 || reg(f, REG_DPU_WDMA_SIZE_1) != (g->mt - 1) << 16,
		  "model: task %u: DPU cube/WDMA sizes disagree with %u rows x %u kernels", task, g->mt, g->nt);
	g->output_surface = reg(f, REG_DPU_DST_SURF_STRIDE);
	unsigned surfaces_per_group = g->group * 4 / 16;
	REFUSE_IF(g->output_surface % 16 || g->output_surface < g->mt * 16 ||
		  reg(f, REG_DPU_SURFACE_ADD) != g->output_surface * surfaces_per_group,
		  "model: task %u: DPU_DST_SURF_STRIDE = 0x%x / SURFACE_ADD = 0x%x: expected a 16-byte multiple >= "
		  "%u rows and SURFACE_ADD = %u x stride", task, g->output_surface, reg(f, REG_DPU_SURFACE_ADD), g->mt,
		  surfaces_per_group);
	g->feature_address = reg(f, REG_CNA_FEATURE_DATA_ADDR);
	g->weight_address = reg(f, REG_CNA_DCOMP_ADDR0);
	g->output_address = reg(f, REG_DPU_DST_BASE_ADDR);
	REFUSE_IF(g->output_address % 16 || g->feature_address % 16, "model: task %u: feature 0x%x / output 0x%x "
		  "not 16-byte aligned", task, g->feature_address, g->output_address);
	return NPU_OK;
}

static int execute(const struct job_view *job, const struct gemm_task *g, unsigned task)
{
	uint8_t *feature, *weights, *output;
	uint64_t feature_span = (uint64_t)(g->kt / g->c2 - 1) * g->feature_surface + (uint64_t)g->mt * 16;
	uint64_t output_span = (uint64_t)(g->nt / 4 - 1) * g->output_surface + (uint64_t)g->mt * 16;
	char what[64];
	int status;
	snprintf(what, sizeof what, "task %u feature read", task);
	if ((status = resolve(job, g->feature_address, feature_span, 0, what, &feature)))
		return status;
	snprintf(what, sizeof what, "task %u weight read", task);
	if ((status = resolve(job, g->weight_address, (uint64_t)g->nt * g->kt * g->bpe, 0, what, &weights)))
		return status;
	snprintf(what, sizeof what, "task %u output write", task);
	if ((status = resolve(job, g->output_address, output_span, 1, what, &output)))
		return status;

	size_t a_count = (size_t)g->mt * g->kt, b_count = (size_t)g->nt * g->kt;
	if (g->precision == NPU_INT8) {
		int8_t *a = malloc(a_count), *b = malloc(b_count);
		if (!a || !b) {
			free(a), free(b);
			return npu_fail(NPU_ERR_NOMEM, "model: out of memory");
		}
		for (unsigned m = 0; m < g->mt; m++)
			for (unsigned k = 0; k < g->kt; k += 16)
				memcpy(a + (size_t)m * g->kt + k, feature + (size_t)(k / 16) * g->feature_surface + m * 16u, 16);
		for (unsigned n = 0; n < g->nt; n++)
			for (unsigned k = 0; k < g->kt; k += 32)
				memcpy(b + (size_t)n * g->kt + k, weights + npu_weight_index(n, k, g->kt, 32), 32);
		for (unsigned m = 0; m < g->mt; m++) {
			const int8_t *row = a + (size_t)m * g->kt;
			for (unsigned n = 0; n < g->nt; n++) {
				const int8_t *column = b + (size_t)n * g->kt;
				int32_t sum = 0;
				for (unsigned k = 0; k < g->kt; k++)
					sum += (int32_t)row[k] * column[k];
				memcpy(output + (size_t)(n / 4) * g->output_surface + m * 16u + (n % 4) * 4u, &sum, 4);
			}
		}
		free(a), free(b);
	} else {
		float *a = malloc(a_count * sizeof *a), *b = malloc(b_count * sizeof *b);
		if (!a || !b) {
			free(a), free(b);
			return npu_fail(NPU_ERR_NOMEM, "model: out of memory");
		}
		for (unsigned m = 0; m < g->mt; m++)
			for (unsigned k = 0; k < g->kt; k++) {
				uint16_t h;
				memcpy(&h, feature + npu_feature_offset(m, k, g->feature_surface / 16, 8, 2), 2);
				a[(size_t)m * g->kt + k] = npu_f32_from_fp16(h);
			}
		for (unsigned n = 0; n < g->nt; n++)
			for (unsigned k = 0; k < g->kt; k++) {
				uint16_t h;
				memcpy(&h, weights + 2 * npu_weight_index(n, k, g->kt, 16), 2);
				b[(size_t)n * g->kt + k] = npu_f32_from_fp16(h);
			}
		/* fp16 products are exact in fp32; the sum is fp32 in channel order. The hardware's
		 * accumulation order/width is not documented: tests use an error bound, not equality. */
		for (unsigned m = 0; m < g->mt; m++) {
			const float *row = a + (size_t)m * g->kt;
			for (unsigned n = 0; n < g->nt; n++) {
				const float *column = b + (size_t)n * g->kt;
				float sum = 0.0f;
				for (unsigned k = 0; k < g->kt; k++)
					sum += row[k] * column[k];
				memcpy(output + (size_t)(n / 4) * g->output_surface + m * 16u + (n % 4) * 4u, &sum, 4);
			}
		}
		free(a), free(b);
	}
	return NPU_OK;
}

static int interpret(const uint64_t *words, uint32_t count, unsigned index, struct register_file *file,
		     struct gemm_task *gemm)
{
	int status = decode(words, count, index, file);
	if (!status)
		status = check_modes(file, index, gemm);
	if (!status)
		status = check_geometry(file, index, gemm);
	return status;
}

/* Cycles of one task at the MAC array's peak: 1024 int8 or 512 fp16 multiply-accumulates per cycle and core. */
static uint64_t task_cycles(const struct gemm_task *g)
{
	return (uint64_t)g->mt * g->nt * g->kt / (g->precision == NPU_FP16 ? 512u : 1024u);
}

/* Interprets and runs one task, unless its cycles take the job past its budget (the driver resets a
 * job at its timeout): then NPU_ERR_TIMEOUT and nothing of it runs. *used counts the job's cycles. */
static int run_task(const struct job_view *job, const struct npu_task *task, unsigned index, uint64_t *used)
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
	struct gemm_task gemm = {0};
	status = interpret(words, task->regcmd_count, index, file, &gemm);
	if (!status) {
		uint64_t cycles = task_cycles(&gemm) + 1, budget = job->job->cycle_budget;
		if (budget && *used + cycles > budget)
			status = npu_fail(NPU_ERR_TIMEOUT, "model: task %u passes the job's cycle budget", index);
		else
			*used += cycles;
	}
	if (!status)
		status = execute(job, &gemm, index);
	free(words), free(file);
	return status;
}

int npu_model_check_task(const uint64_t *words, uint32_t count)
{
	struct register_file *file = malloc(sizeof *file);
	if (!file)
		return npu_fail(NPU_ERR_NOMEM, "model: out of memory");
	struct gemm_task gemm = {0};
	int status = interpret(words, count, 0, file, &gemm);
	free(file);
	return status;
}

int npu_space_run_job(const struct npu_space *space, const struct npu_job *job, unsigned task_count,
		      uint64_t *cycles)
{
	struct job_view view = {space, job};
	uint64_t used = 0;
	int status = NPU_OK;
	for (unsigned i = 0; i < task_count && !status; i++)
		status = run_task(&view, &job->tasks[i], i, &used);
	if (cycles)
		*cycles = used;
	return status;
}
