/* SPDX-License-Identifier: MIT */
/* GEMM tiling and the register-command stream of one task (docs/npu-registers.md). */
#include "npu_internal.h"
#include "npu_precision.h"
#include "npu_regs.h"

/* Largest logical dimension accepted: keeps every padded product far from 32-bit overflow; the
 * address-window checks below are the binding limits in practice. */
#define NPU_MAX_DIMENSION (1u << 20)
#define NPU_MAX_OUTPUT_CHANNELS 4096u /* per task; DPU channel fields are 13 bits */

int npu_plan_weights(enum npu_precision precision, unsigned n, unsigned k, unsigned min_n_tiles,
		     struct npu_weight_plan *plan)
{
	return npu_plan_weights_grouped(precision, n, k, 0, min_n_tiles, plan);
}

int npu_plan_weights_grouped(enum npu_precision precision, unsigned n, unsigned k, unsigned k_group,
			     unsigned min_n_tiles, struct npu_weight_plan *plan)
{
	if (!plan)
		return npu_fail(NPU_ERR_INVALID, "npu_plan_weights: plan is NULL");
	const struct npu_precision_info *info = npu_precision_info(precision);
	if (!info)
		return npu_fail(NPU_ERR_INVALID, "precision %d is neither NPU_INT8 nor NPU_FP16", (int)precision);
	if (n == 0 || k == 0)
		return npu_fail(NPU_ERR_INVALID, "empty weight matrix: N=%u K=%u", n, k);
	if (n > NPU_MAX_DIMENSION || k > NPU_MAX_DIMENSION)
		return npu_fail(NPU_ERR_LIMIT, "weight matrix N=%u K=%u: each dimension must be <= %u", n, k,
				NPU_MAX_DIMENSION);
	struct npu_weight_plan p = {0};
	p.precision = precision;
	p.n = n;
	p.k = k;
	p.in_bytes = info->in_bytes;
	p.kernel_group = info->kernel_group;
	p.feature_c2 = NPU_ATOM_BYTES / p.in_bytes;
	p.np = npu_align_up(n, p.kernel_group);
	p.kp = npu_align_up(k, NPU_K_ALIGN);

	unsigned k_max = info->task_max_k;
	if (k_group && (k_group % NPU_K_ALIGN || k_group > k_max))
		return npu_fail(NPU_ERR_INVALID, "K group %u: must be a multiple of %u and at most %u", k_group,
				NPU_K_ALIGN, k_max);
	if (k_group) {
		/* one K tile per quantization group; the last one may be shorter */
		p.kt = k_group < p.kp ? k_group : p.kp;
		p.k_tiles = npu_div_up(p.kp, p.kt);
		p.k_grouped = 1;
	} else {
		p.k_tiles = npu_div_up(p.kp, k_max);
		p.kt = npu_align_up(npu_div_up(p.kp, p.k_tiles), NPU_K_ALIGN);
	}

	unsigned n_max = NPU_TASK_WEIGHT_BANKS * NPU_CBUF_BANK_BYTES / (p.kt * p.in_bytes);
	n_max = n_max / p.kernel_group * p.kernel_group;
	if (n_max > NPU_MAX_OUTPUT_CHANNELS)
		n_max = NPU_MAX_OUTPUT_CHANNELS;
	p.n_tiles = npu_div_up(p.np, n_max);
	p.nt = npu_align_up(npu_div_up(p.np, p.n_tiles), p.kernel_group);
	if (npu_div_up(p.np, p.nt) < min_n_tiles && p.nt > p.kernel_group) {
		/* more, smaller tiles so every lane gets work */
		unsigned nt = p.np / min_n_tiles / p.kernel_group * p.kernel_group;
		p.nt = nt > p.kernel_group ? nt : p.kernel_group;
	}
	p.n_tiles = npu_div_up(p.np, p.nt);

	uint64_t weight_bytes = (uint64_t)p.np * p.kp * p.in_bytes;
	if (weight_bytes > NPU_ADDRESS_WINDOW / 2)
		return npu_fail(NPU_ERR_LIMIT, "weight matrix N=%u K=%u needs %llu bytes in NPU layout, more than "
				"half of a lane's 4 GiB NPU address window", n, k, (unsigned long long)weight_bytes);
	*plan = p;
	return NPU_OK;
}

unsigned npu_data_banks(unsigned rows, unsigned row_bytes)
{
	return npu_div_up(rows * npu_div_up(row_bytes, NPU_CBUF_ENTRY_BYTES), NPU_CBUF_ENTRIES_PER_BANK);
}

int npu_plan_rows(const struct npu_weight_plan *weights, unsigned m, struct npu_row_plan *rows)
{
	if (!weights || !rows)
		return npu_fail(NPU_ERR_INVALID, "npu_plan_rows: NULL argument");
	if (m == 0)
		return npu_fail(NPU_ERR_INVALID, "empty activation matrix: M=0");
	if (m > NPU_MAX_DIMENSION)
		return npu_fail(NPU_ERR_LIMIT, "M=%u: must be <= %u", m, NPU_MAX_DIMENSION);
	struct npu_row_plan r = {0};
	r.m = m;
	r.mp = npu_align_up(m, NPU_M_ALIGN);
	unsigned row_bytes = weights->kt * weights->in_bytes;
	unsigned weight_banks = npu_div_up(weights->nt * row_bytes, NPU_CBUF_BANK_BYTES);
	unsigned data_banks = NPU_CBUF_BANKS - 1 - weight_banks; /* one bank spare, as Mesa keeps */
	unsigned mt_max = data_banks * NPU_CBUF_ENTRIES_PER_BANK / npu_div_up(row_bytes, NPU_CBUF_ENTRY_BYTES);
	mt_max = mt_max / NPU_M_ALIGN * NPU_M_ALIGN;
	if (mt_max > npu_task_max_rows(weights->precision))
		mt_max = npu_task_max_rows(weights->precision);
	r.m_tiles = npu_div_up(r.mp, mt_max);
	r.mt = npu_align_up(npu_div_up(r.mp, r.m_tiles), NPU_M_ALIGN);

	uint64_t feature = (uint64_t)weights->kp / weights->feature_c2 * r.mp * NPU_ATOM_BYTES;
	uint64_t output = (uint64_t)weights->k_tiles * npu_output_bytes(r.mp, weights->np);
	if (feature > NPU_ADDRESS_WINDOW / 4 || output > NPU_ADDRESS_WINDOW / 4)
		return npu_fail(NPU_ERR_LIMIT, "GEMM M=%u N=%u K=%u needs %llu bytes of input and %llu of output per "
				"lane; each must stay under 1 GiB of the 4 GiB NPU window: split M", m, weights->n,
				weights->k, (unsigned long long)feature, (unsigned long long)output);
	*rows = r;
	return NPU_OK;
}

static unsigned tile_of(unsigned total, unsigned tile, unsigned index, unsigned *start)
{
	unsigned begin = index * tile;
	if (start)
		*start = begin;
	if (begin >= total)
		return 0;
	return total - begin < tile ? total - begin : tile;
}

unsigned npu_plan_n_tile(const struct npu_weight_plan *plan, unsigned index, unsigned *n0)
{
	return tile_of(plan->np, plan->nt, index, n0);
}

unsigned npu_plan_k_tile(const struct npu_weight_plan *plan, unsigned index, unsigned *k0)
{
	return tile_of(plan->kp, plan->kt, index, k0);
}

unsigned npu_plan_m_tile(const struct npu_row_plan *plan, unsigned index, unsigned *m0)
{
	return tile_of(plan->mp, plan->mt, index, m0);
}

size_t npu_weight_tile_bytes(const struct npu_weight_plan *plan, unsigned nt, unsigned kt)
{
	return (size_t)nt * kt * plan->in_bytes;
}

size_t npu_feature_bytes(const struct npu_weight_plan *weights, const struct npu_row_plan *rows)
{
	return (size_t)(weights->kp / weights->feature_c2) * rows->mp * NPU_ATOM_BYTES;
}

size_t npu_output_bytes(unsigned mp, unsigned channels)
{
	return (size_t)npu_div_up(channels, 4) * mp * NPU_ATOM_BYTES;
}

struct emitter {
	uint64_t *words;
	unsigned count;
};

static void emit(struct emitter *e, uint16_t reg, uint32_t value)
{
	/* Target block from the register's 4 KiB window, plus the write bit (Mesa emit()). */
	static const uint16_t block_of_window[8] = {NPU_TARGET_PC, NPU_TARGET_CNA, 0, NPU_TARGET_CORE,
						    NPU_TARGET_DPU, NPU_TARGET_DPU_RDMA, 0, 0};
	uint16_t target = block_of_window[(reg >> 12) & 7] | NPU_TARGET_WRITE_BIT;
	e->words[e->count++] = npu_regcmd_word(target, reg, value);
}

/* What a task's registers derive from its geometry, once its rules are checked. */
struct task_layout {
	const struct npu_precision_info *precision;
	unsigned data_banks, weight_banks;
	uint32_t weight_bytes;
};

/* The rules the hardware (or both peers) hold a task to; the model checks the same from the registers. */
static int check_task(const struct npu_task_geometry *t, struct task_layout *l)
{
	const struct npu_precision_info *info = npu_precision_info(t->precision);
	if (!info)
		return npu_fail(NPU_ERR_INVALID, "task precision %d unknown", (int)t->precision);
	unsigned bpe = info->in_bytes, group = info->kernel_group, k_max = info->task_max_k;
	unsigned max_rows = info->task_max_rows;
	if (t->mt == 0 || t->mt > max_rows || t->mt > t->feature_rows || t->mt > t->output_rows)
		return npu_fail(NPU_ERR_INVALID, "task rows %u: must be 1..%u and within the feature map (%u rows) "
				"and output (%u rows)", t->mt, max_rows, t->feature_rows, t->output_rows);
	if (t->feature_rows % NPU_M_ALIGN || t->output_rows % NPU_M_ALIGN)
		return npu_fail(NPU_ERR_INVALID, "feature/output rows %u/%u not multiples of %u", t->feature_rows,
				t->output_rows, NPU_M_ALIGN);
	if (t->kt == 0 || t->kt % NPU_K_ALIGN || t->kt > k_max)
		return npu_fail(NPU_ERR_INVALID, "task channels K=%u: must be a multiple of %u up to %u", t->kt,
				NPU_K_ALIGN, k_max);
	if (t->nt == 0 || t->nt % group || t->nt > NPU_MAX_OUTPUT_CHANNELS)
		return npu_fail(NPU_ERR_INVALID, "task kernels N=%u: must be a multiple of %u up to %u", t->nt, group,
				NPU_MAX_OUTPUT_CHANNELS);
	if (t->output_address % NPU_ATOM_BYTES || t->feature_address % NPU_ATOM_BYTES)
		return npu_fail(NPU_ERR_INVALID, "task addresses must be 16-byte aligned (feature 0x%x, output 0x%x)",
				t->feature_address, t->output_address);
	unsigned data_banks = npu_data_banks(t->mt, t->kt * bpe);
	unsigned weight_banks = NPU_CBUF_BANKS - data_banks;
	uint32_t weight_bytes = t->nt * t->kt * bpe;
	if (data_banks >= NPU_CBUF_BANKS || weight_bytes > (weight_banks - 1) * NPU_CBUF_BANK_BYTES)
		return npu_fail(NPU_ERR_LIMIT, "task M=%u N=%u K=%u does not fit CBUF: %u data banks, %u weight bytes "
				"in %u banks (one kept spare)", t->mt, t->nt, t->kt, data_banks, weight_bytes,
				weight_banks);
	*l = (struct task_layout){info, data_banks, weight_banks, weight_bytes};
	return NPU_OK;
}

/* The stream of a checked task, register by register in the order both peers write them. */
static unsigned emit_task(const struct npu_task_geometry *t, const struct task_layout *l, uint64_t *words)
{
	unsigned bpe = l->precision->in_bytes, in_prec = l->precision->in_code, out_prec = l->precision->out_code;
	unsigned data_banks = l->data_banks, weight_banks = l->weight_banks;
	uint32_t weight_bytes = l->weight_bytes;
	/* 16-byte output surfaces one kernel group fills: 32 x int32 = 8, 16 x fp32 = 4. */
	unsigned surfaces_per_group = l->precision->kernel_group * l->precision->out_bytes / NPU_ATOM_BYTES;
	uint32_t out_surface = t->output_rows * NPU_ATOM_BYTES;

	struct emitter e = {words, 0};
	emit(&e, REG_DPU_S_POINTER, DPU_S_POINTER_PP);
	/* CNA: 1x1 direct convolution, W = 1, H = rows, C = K. */
	emit(&e, REG_CNA_CONV_CON1, CNA_CONV_CON1_PROC_PRECISION(in_prec) | CNA_CONV_CON1_IN_PRECISION(in_prec));
	emit(&e, REG_CNA_CONV_CON2, CNA_CONV_CON2_FEATURE_GRAINS(t->mt + 1));
	emit(&e, REG_CNA_CONV_CON3, CNA_CONV_CON3_STRIDE_1X1);
	emit(&e, REG_CNA_DATA_SIZE0, (1u << 16) | t->mt);
	emit(&e, REG_CNA_DATA_SIZE1, ((t->kt - 1) << 16) | t->kt);
	emit(&e, REG_CNA_DATA_SIZE2, 1);
	emit(&e, REG_CNA_DATA_SIZE3, t->mt);
	emit(&e, REG_CNA_WEIGHT_SIZE0, weight_bytes);
	emit(&e, REG_CNA_WEIGHT_SIZE1, t->kt * bpe);
	emit(&e, REG_CNA_WEIGHT_SIZE2, (1u << 24) | (1u << 16) | t->nt);
	emit(&e, REG_CNA_CBUF_CON0, CNA_CBUF_CON0(weight_banks, data_banks));
	emit(&e, REG_CNA_CBUF_CON1, npu_div_up(t->kt * bpe, 64));
	emit(&e, REG_CNA_CVT_CON0, CNA_CVT_CON0_SIGNED_BYPASS);
	emit(&e, REG_CNA_CVT_CON1, CNA_CVT_SCALE_ONE);
	emit(&e, REG_CNA_CVT_CON2, CNA_CVT_SCALE_ONE);
	emit(&e, REG_CNA_CVT_CON3, CNA_CVT_SCALE_ONE);
	emit(&e, REG_CNA_CVT_CON4, CNA_CVT_SCALE_ONE);
	emit(&e, REG_CNA_FC_CON0, 0);
	emit(&e, REG_CNA_FC_CON1, 0);
	emit(&e, REG_CNA_PAD_CON0, 0);
	emit(&e, REG_CNA_FEATURE_DATA_ADDR, t->feature_address);
	emit(&e, REG_CNA_FC_CON2, 0);
	emit(&e, REG_CNA_DMA_CON0, CNA_DMA_CON0_BURST16);
	emit(&e, REG_CNA_DMA_CON1, 4);                        /* LINE_STRIDE = W * 16 / 4 */
	emit(&e, REG_CNA_DMA_CON2, t->feature_rows - 4);      /* SURF_STRIDE = LINE_STRIDE * (H / 4 - 1) */
	emit(&e, REG_CNA_FC_DATA_SIZE0, (1u << 16) | t->mt);
	emit(&e, REG_CNA_FC_DATA_SIZE1, t->kt);
	emit(&e, REG_CNA_DCOMP_CTRL, 0);
	emit(&e, REG_CNA_DCOMP_REGNUM, 0);
	emit(&e, REG_CNA_DCOMP_ADDR0, t->weight_address);
	for (unsigned i = 0; i < 16; i++)
		emit(&e, (uint16_t)(REG_CNA_DCOMP_AMOUNT0 + 4 * i), 0);
	emit(&e, REG_CNA_CVT_CON5, 0);
	emit(&e, REG_CNA_PAD_CON1, 0);
	/* CORE */
	emit(&e, REG_CORE_MISC_CFG, l->precision->core_misc_cfg);
	emit(&e, REG_CORE_DATAOUT_SIZE_0, (t->mt - 1) << 16);
	emit(&e, REG_CORE_DATAOUT_SIZE_1, t->nt - 1);
	emit(&e, REG_CORE_CLIP_TRUNCATE, 0);
	emit(&e, REG_CORE_UNDOCUMENTED_3030, 0);
	/* DPU: everything bypassed, raw accumulators to memory. */
	emit(&e, REG_DPU_FEATURE_MODE_CFG, DPU_FEATURE_MODE_CFG_TO_MEMORY);
	emit(&e, REG_DPU_DATA_FORMAT, DPU_DATA_FORMAT(out_prec, in_prec, in_prec));
	emit(&e, REG_DPU_OFFSET_PEND, 0);
	emit(&e, REG_DPU_DST_BASE_ADDR, t->output_address);
	emit(&e, REG_DPU_DST_SURF_STRIDE, out_surface);
	emit(&e, REG_DPU_DATA_CUBE_WIDTH, 0);
	emit(&e, REG_DPU_DATA_CUBE_HEIGHT, t->mt - 1);
	emit(&e, REG_DPU_DATA_CUBE_NOTCH_ADDR, 0);
	emit(&e, REG_DPU_DATA_CUBE_CHANNEL, ((t->nt - 1) << 16) | (t->nt - 1));
	emit(&e, REG_DPU_BS_CFG, DPU_BYPASS_ALL_BS_BN);
	emit(&e, REG_DPU_BS_ALU_CFG, 0);
	emit(&e, REG_DPU_BS_MUL_CFG, 0);
	emit(&e, REG_DPU_BS_RELUX_CMP_VALUE, 0);
	emit(&e, REG_DPU_BS_OW_CFG, DPU_BS_OW_CFG(surfaces_per_group - 1));
	emit(&e, REG_DPU_BS_OW_OP, 0);
	emit(&e, REG_DPU_WDMA_SIZE_0, t->nt - 1);
	emit(&e, REG_DPU_WDMA_SIZE_1, (t->mt - 1) << 16);
	emit(&e, REG_DPU_BN_CFG, DPU_BYPASS_ALL_BS_BN);
	emit(&e, REG_DPU_BN_ALU_CFG, 0);
	emit(&e, REG_DPU_BN_MUL_CFG, 0);
	emit(&e, REG_DPU_BN_RELUX_CMP_VALUE, 0);
	emit(&e, REG_DPU_EW_CFG, DPU_EW_CFG_BYPASS_ALL);
	emit(&e, REG_DPU_EW_CVT_OFFSET_VALUE, 0);
	emit(&e, REG_DPU_EW_CVT_SCALE_VALUE, 1);
	emit(&e, REG_DPU_EW_RELUX_CMP_VALUE, 0);
	emit(&e, REG_DPU_OUT_CVT_OFFSET, 0);
	emit(&e, REG_DPU_OUT_CVT_SCALE, 1);
	emit(&e, REG_DPU_OUT_CVT_SHIFT, 0);
	for (unsigned i = 0; i < 8; i++)
		emit(&e, (uint16_t)(REG_DPU_EW_OP_VALUE_0 + 4 * i), 0);
	emit(&e, REG_DPU_SURFACE_ADD, out_surface * surfaces_per_group);
	emit(&e, REG_DPU_UNDOCUMENTED_40C4, 0);
	/* The LUT is bypassed (EW_CFG), but both peers clear its twelve registers: so do we. */
	for (unsigned i = 0; i < NPU_DPU_LUT_REGISTERS; i++)
		emit(&e, (uint16_t)(REG_DPU_LUT_ACCESS_CFG + 4 * i), 0);
	/* Tail: no next task (the driver submits tasks one by one), marker, op_en. */
	words[e.count++] = 0;
	words[e.count++] = npu_regcmd_word(NPU_TARGET_PC | NPU_TARGET_WRITE_BIT, REG_PC_REGISTER_AMOUNTS, 0);
	words[e.count++] = npu_regcmd_word(NPU_TARGET_TAIL_MARKER, 0, 0);
	words[e.count++] = npu_regcmd_word(NPU_TARGET_OP_ENABLE, REG_PC_OPERATION_ENABLE, NPU_OPEN_GEMM);
	return e.count;
}

int npu_emit_gemm_task(const struct npu_task_geometry *t, uint64_t *words)
{
	if (!t || !words)
		return npu_fail(NPU_ERR_INVALID, "npu_emit_gemm_task: NULL argument");
	struct task_layout layout = {0};
	int status = check_task(t, &layout);
	if (status)
		return status;
	unsigned count = emit_task(t, &layout, words);
	if (count != NPU_TASK_WORDS)
		return npu_fail(NPU_ERR_INVALID, "internal: emitted %u words, expected %u", count, NPU_TASK_WORDS);
	return NPU_OK;
}
