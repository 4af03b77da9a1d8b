/* SPDX-License-Identifier: MIT */
/*
 * Software NPU model: executes a job by interpreting its register-command streams, the way the
 * PC block fetches them. It knows the registers of the 1x1-convolution GEMM subset (CNA, CORE, DPU;
 * docs/npu-registers.md) and refuses anything else with NPU_ERR_REFUSED and a message naming the
 * word, register and value, rather than guessing. Reads/writes go through the lane's BOs by NPU
 * address: a task may only read BOs listed as job inputs or outputs and only write job outputs
 * (the driver's implicit fencing covers exactly those).
 *
 * It can reproduce the 7.2 driver's silent failures: a rejected job (SUBMIT returns 0, nothing
 * runs) and a job reset after its 500 ms timeout (partly run, outputs left as garbage).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "npu_internal.h"
#include "npu_regs.h"

#define MODEL_PAGE 4096u
#define MODEL_GARBAGE 0xa5u

struct model_bo {
	uint32_t handle;
	uint64_t address;
	uint32_t size;
	uint8_t *memory;
};

struct model_lane {
	struct model_bo *bos; /* sorted by address */
	unsigned count, capacity;
	uint32_t next_handle;
	enum npu_model_fault fault;
};

struct model {
	struct model_lane lanes[NPU_MAX_LANES];
};

static struct model_lane *lane_of(struct npu_dev *dev, unsigned lane)
{
	return &((struct model *)dev->model)->lanes[lane];
}

/* First-fit placement in the 4 GiB window, page aligned; the first BO gets address 0 like the
 * kernel's drm_mm does, so code treating 0 as "no address" fails here too. */
static int model_bo_create(struct npu_dev *dev, unsigned lane_index, size_t size, struct npu_bo *bo)
{
	struct model_lane *lane = lane_of(dev, lane_index);
	uint64_t span = (size + MODEL_PAGE - 1) / MODEL_PAGE * MODEL_PAGE;
	uint64_t address = 0;
	unsigned slot = 0;
	for (; slot < lane->count; slot++) {
		if (lane->bos[slot].address >= address + span)
			break;
		uint64_t end = lane->bos[slot].address + lane->bos[slot].size;
		address = (end + MODEL_PAGE - 1) / MODEL_PAGE * MODEL_PAGE;
	}
	if (address + span > NPU_ADDRESS_WINDOW)
		return npu_fail(NPU_ERR_NOMEM, "model: no room for %zu bytes in lane %u's 4 GiB NPU window", size,
				lane_index);
	if (lane->count == lane->capacity) {
		unsigned capacity = lane->capacity ? lane->capacity * 2 : 16;
		struct model_bo *bos = realloc(lane->bos, capacity * sizeof *bos);
		if (!bos)
			return npu_fail(NPU_ERR_NOMEM, "model: out of memory");
		lane->bos = bos;
		lane->capacity = capacity;
	}
	uint8_t *memory = calloc(1, span);
	if (!memory)
		return npu_fail(NPU_ERR_NOMEM, "model: cannot allocate a %zu-byte BO", size);
	memmove(&lane->bos[slot + 1], &lane->bos[slot], (lane->count - slot) * sizeof *lane->bos);
	lane->count++;
	lane->bos[slot] = (struct model_bo){++lane->next_handle, address, (uint32_t)size, memory};
	bo->handle = lane->bos[slot].handle;
	bo->size = (uint32_t)size;
	bo->dma_address = address;
	bo->mmap_offset = address;
	bo->map = memory;
	return NPU_OK;
}

static void model_bo_destroy(struct npu_dev *dev, struct npu_bo *bo)
{
	struct model_lane *lane = lane_of(dev, bo->lane);
	for (unsigned i = 0; i < lane->count; i++) {
		if (lane->bos[i].handle == bo->handle) {
			free(lane->bos[i].memory);
			memmove(&lane->bos[i], &lane->bos[i + 1], (lane->count - i - 1) * sizeof *lane->bos);
			lane->count--;
			return;
		}
	}
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

/* ---- interpreter ---- */

struct job_view {
	struct model_lane *lane;
	const struct npu_bo *const *in_bos;
	unsigned in_count;
	const struct npu_bo *const *out_bos;
	unsigned out_count;
};

static int listed(const struct npu_bo *const *bos, unsigned count, uint32_t handle)
{
	for (unsigned i = 0; i < count; i++)
		if (bos[i]->handle == handle)
			return 1;
	return 0;
}

/* Host pointer for [address, address + length) inside one BO of the job. */
static int resolve(const struct job_view *job, uint64_t address, uint64_t length, int write, const char *what,
		   uint8_t **pointer)
{
	for (unsigned i = 0; i < job->lane->count; i++) {
		const struct model_bo *bo = &job->lane->bos[i];
		if (address < bo->address || address >= bo->address + bo->size)
			continue;
		if (address + length > bo->address + bo->size)
			return npu_fail(NPU_ERR_REFUSED, "model: %s [0x%llx, +%llu) runs past the end of its BO "
					"(0x%llx, %u bytes)", what, (unsigned long long)address,
					(unsigned long long)length, (unsigned long long)bo->address, bo->size);
		int is_out = listed(job->out_bos, job->out_count, bo->handle);
		if (write && !is_out)
			return npu_fail(NPU_ERR_REFUSED, "model: %s at 0x%llx writes a BO not listed as a job output",
					what, (unsigned long long)address);
		if (!write && !is_out && !listed(job->in_bos, job->in_count, bo->handle))
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

static int check_geometry(const struct register_file *f, unsigned task, struct gemm_task *g)
{
	uint32_t size0 = reg(f, REG_CNA_DATA_SIZE0), size1 = reg(f, REG_CNA_DATA_SIZE1);
	g->mt = size0 & 0x7ffu;
	g->kt = size1 & 0xffffu;
	REFUSE_IF(size0 >> 16 != 1 || g->mt == 0, "model: task %u: CNA_DATA_SIZE0 = 0x%08x; only width 1 and "
		  "height >= 1 are modelled", task, size0);
	REFUSE_IF(g->kt == 0 || g->kt % 32 || (size1 >> 16) != g->kt - 1, "model: task %u: CNA_DATA_SIZE1 = 0x%08x; "
		  "channels must be a multiple of 32 with CHANNEL_REAL = channels - 1", task, size1);
	REFUSE_IF(reg(f, REG_CNA_CONV_CON2) != CNA_CONV_CON2_FEATURE_GRAINS(g->mt + 1) || g->mt + 1 > 0x3ff,
		  "model: task %u: CNA_CONV_CON2 = 0x%08x; expected FEATURE_GRAINS = rows + 1 = %u (10-bit), "
		  "KERNEL_GROUP 0", task, reg(f, REG_CNA_CONV_CON2), g->mt + 1);
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
	uint32_t cbuf = reg(f, REG_CNA_CBUF_CON0);
	unsigned data_banks = cbuf & 0xfu, weight_banks = (cbuf >> 4) & 0xfu;
	REFUSE_IF((cbuf & ~0xffu) || data_banks + weight_banks > NPU_CBUF_BANKS ||
		  (uint64_t)data_banks * NPU_CBUF_BANK_BYTES < (uint64_t)g->mt * g->kt * g->bpe ||
		  (uint64_t)weight_banks * NPU_CBUF_BANK_BYTES < weight_bytes,
		  "model: task %u: CNA_CBUF_CON0 = 0x%08x (%u data + %u weight banks of 32 KiB) cannot hold %u data "
		  "and %u weight bytes, or uses reuse bits", task, cbuf, data_banks, weight_banks, g->mt * g->kt * g->bpe,
		  weight_bytes);
	REFUSE_IF(reg(f, REG_CNA_CBUF_CON1) != (g->kt * g->bpe + 63) / 64, "model: task %u: CNA_CBUF_CON1 = %u, "
		  "expected DATA_ENTRIES = ceil(row bytes / 64) = %u", task, reg(f, REG_CNA_CBUF_CON1),
		  (g->kt * g->bpe + 63) / 64);
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

static int run_task(const struct job_view *job, const struct npu_task *task, unsigned index)
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
	status = decode(words, task->regcmd_count, index, file);
	if (!status)
		status = check_modes(file, index, &gemm);
	if (!status)
		status = check_geometry(file, index, &gemm);
	if (!status)
		status = execute(job, &gemm, index);
	free(words), free(file);
	return status;
}

static int model_submit(struct npu_dev *dev, unsigned lane_index, const struct npu_task *tasks, unsigned task_count,
			const struct npu_bo *const *in_bos, unsigned in_count,
			const struct npu_bo *const *out_bos, unsigned out_count)
{
	struct model_lane *lane = lane_of(dev, lane_index);
	struct job_view job = {lane, in_bos, in_count, out_bos, out_count};
	enum npu_model_fault fault = lane->fault;
	lane->fault = NPU_FAULT_NONE;
	if (fault == NPU_FAULT_REJECT)
		return NPU_OK; /* like rocket_ioctl_submit(): the job is dropped, the ioctl returns 0 */
	unsigned run = fault == NPU_FAULT_TIMEOUT ? task_count / 2 : task_count;
	for (unsigned i = 0; i < run; i++) {
		int status = run_task(&job, &tasks[i], i);
		if (status)
			return status;
	}
	if (fault == NPU_FAULT_TIMEOUT) /* reset mid-job: outputs hold whatever was in flight */
		for (unsigned i = 0; i < out_count; i++)
			memset(out_bos[i]->map, MODEL_GARBAGE, out_bos[i]->size);
	return NPU_OK;
}

static void model_close(struct npu_dev *dev)
{
	struct model *model = dev->model;
	for (unsigned l = 0; l < NPU_MAX_LANES; l++) {
		for (unsigned i = 0; i < model->lanes[l].count; i++)
			free(model->lanes[l].bos[i].memory);
		free(model->lanes[l].bos);
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
	dev->model = calloc(1, sizeof(struct model));
	if (!dev->model)
		return npu_fail(NPU_ERR_NOMEM, "model: out of memory");
	dev->ops = &model_ops;
	dev->info.backend = "model";
	dev->info.lanes = lanes;
	dev->info.cores = NPU_MAX_LANES;
	snprintf(dev->info.device_path, sizeof dev->info.device_path, "(software model)");
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
	lane_of(dev, lane)->fault = fault;
	return NPU_OK;
}
