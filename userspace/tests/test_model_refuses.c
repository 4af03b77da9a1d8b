/* SPDX-License-Identifier: MIT */
/* The software model executes a valid hand-built task, and refuses, with a message naming the
 * problem, every register, mode or access it does not model. */
#include <string.h>

#include "npu/jobs.h"
#include "npu/layout.h"
#include "npu_interpreter.h"
#include "npu_regs.h"
#include "support.h"

#define M 8u
#define N 32u
#define K 64u

struct fixture {
	struct npu_dev *dev;
	struct npu_bo feature, weights, output, regcmd;
	uint64_t words[NPU_TASK_WORDS];
	int8_t a[M * K], b[N * K];
};

static void setup(struct fixture *f)
{
	f->dev = test_open_model(1);
	CHECK_OK(npu_bo_create(f->dev, 0, 4096, &f->feature));
	CHECK_OK(npu_bo_create(f->dev, 0, 4096, &f->weights));
	CHECK_OK(npu_bo_create(f->dev, 0, 4096, &f->output));
	CHECK_OK(npu_bo_create(f->dev, 0, 4096, &f->regcmd));
	CHECK(f->feature.dma_address == 0, "the first BO should get NPU address 0 like the kernel's allocator");
	test_fill_i8(f->a, sizeof f->a);
	test_fill_i8(f->b, sizeof f->b);
	npu_layout_ops()->feature_from_rows_i8(f->feature.map, f->a, M, K, K, M, K);
	npu_weight_tile_from_rows_i8(f->weights.map, f->b, K, N, K, 0, N, 0, K);
	struct npu_task_geometry g = {NPU_INT8, M, N, K, M, M, (uint32_t)f->feature.dma_address,
				      (uint32_t)f->weights.dma_address, (uint32_t)f->output.dma_address};
	CHECK_OK(npu_emit_gemm_task(&g, f->words));
}

static int submit(struct fixture *f, const uint64_t *words, uint32_t count, int output_listed)
{
	memcpy(f->regcmd.map, words, count * 8);
	struct npu_task task = {(uint32_t)f->regcmd.dma_address, count};
	const struct npu_bo *in[] = {&f->feature, &f->weights, &f->regcmd, &f->output};
	const struct npu_bo *out[] = {&f->output};
	return npu_submit(f->dev, 0, &task, 1, in, output_listed ? 3 : 4, out, output_listed ? 1 : 0);
}

static unsigned find(const uint64_t *words, uint16_t reg)
{
	for (unsigned i = 0; i < NPU_TASK_WORDS - 4; i++)
		if ((words[i] & 0xffff) == reg)
			return i;
	CHECK(0, "register 0x%04x not in the stream", reg);
	return 0;
}

static void set_value(uint64_t *words, uint16_t reg, uint32_t value)
{
	unsigned i = find(words, reg);
	words[i] = (words[i] & ~(UINT64_C(0xffffffff) << 16)) | ((uint64_t)value << 16);
}

static void expect_refusal(struct fixture *f, const uint64_t *words, uint32_t count, int output_listed,
			   const char *text)
{
	int status = submit(f, words, count, output_listed);
	CHECK(status == NPU_ERR_REFUSED, "expected a refusal mentioning '%s', got %s: %s", text, npu_status_name(status),
	      npu_error());
	CHECK(strstr(npu_error(), text), "refusal '%s' does not mention '%s'", npu_error(), text);
}

/* A task of another shape, emitted, one register changed, read by the model's checks alone. */
static void expect_stream_refused(struct npu_task_geometry g, uint16_t reg, uint32_t value, const char *text)
{
	uint64_t w[NPU_TASK_WORDS];
	CHECK_OK(npu_emit_gemm_task(&g, w));
	CHECK_OK(npu_model_check_task(w, NPU_TASK_WORDS));
	set_value(w, reg, value);
	int status = npu_model_check_task(w, NPU_TASK_WORDS);
	CHECK(status == NPU_ERR_REFUSED && strstr(npu_error(), text), "register 0x%04x = 0x%x: expected a refusal "
	      "naming '%s', got %s: %s", reg, value, text, npu_status_name(status), npu_error());
}

/* The hardware's limits, as the model reads them from the registers (docs/npu-registers.md, "CBUF"). */
static void check_cbuf_limits(void)
{
	/* INT8, K group 32: 544 rows of one 128-byte entry each need 3 data banks; the count from the packed
	 * size (544 * 32 bytes < 32 KiB), which the builder used to write, gives 1. */
	struct npu_task_geometry grouped = {NPU_INT8, 544, 32, 32, 544, 544, 0, 0x100000, 0x200000};
	expect_stream_refused(grouped, REG_CNA_CBUF_CON0, CNA_CBUF_CON0(11, 1), "544 rows of DATA_ENTRIES 1");
	expect_stream_refused(grouped, REG_CNA_CBUF_CON0, CNA_CBUF_CON0(10, 3) | 0x100, "no bits but WEIGHT_REUSE");
	expect_stream_refused(grouped, REG_CNA_CBUF_CON1, 2, "DATA_ENTRIES = 1");
	/* FEATURE_GRAINS beyond the 545 a peer ran at int8, or with a kernel group */
	expect_stream_refused(grouped, REG_CNA_CONV_CON2, CNA_CONV_CON2_FEATURE_GRAINS(546), "FEATURE_GRAINS 546");
	expect_stream_refused(grouped, REG_CNA_CONV_CON2, CNA_CONV_CON2_FEATURE_GRAINS(545) | (1u << 16),
			      "KERNEL_GROUP 1");
	struct npu_task_geometry fp16 = {NPU_FP16, 384, 16, 64, 384, 384, 0, 0x100000, 0x200000};
	expect_stream_refused(fp16, REG_CNA_CONV_CON2, CNA_CONV_CON2_FEATURE_GRAINS(386), "1..385 at fp16");
	/* 64 KiB of weights (N=32, K=2048) in one weight bank */
	struct npu_task_geometry wide = {NPU_INT8, 4, 32, 2048, 4, 4, 0, 0x100000, 0x200000};
	expect_stream_refused(wide, REG_CNA_CBUF_CON0, CNA_CBUF_CON0(1, 11), "WEIGHT_BANK = 1 holds 32768");
	expect_stream_refused(wide, REG_DPU_LUT_ACCESS_CFG + 8, 1, "DPU_LUT_CFG");
	expect_stream_refused(wide, REG_CNA_DATA_SIZE0, (1u << 16) | 0x804, "11-bit fields");
}

int main(void)
{
	test_seed("model_refuses");
	struct fixture f;
	setup(&f);
	/* the valid task computes C = A x B into the NC1HWC2 output */
	CHECK_OK(submit(&f, f.words, NPU_TASK_WORDS, 1));
	int32_t expected[M * N], got[M * N];
	reference_gemm_i8(expected, f.a, f.b, M, N, K);
	struct npu_partials partials = {f.output.map, 1, 0, M, N, M};
	npu_layout_ops()->rows_from_output_i32(got, N, &partials);
	CHECK(memcmp(expected, got, sizeof got) == 0, "hand-built task computed a wrong result");

	uint64_t w[NPU_TASK_WORDS];
	memcpy(w, f.words, sizeof w);
	w[find(w, REG_CORE_UNDOCUMENTED_3030)] = npu_regcmd_word(NPU_TARGET_CORE | 1, 0x3034, 0);
	expect_refusal(&f, w, NPU_TASK_WORDS, 1, "register 0x3034");

	memcpy(w, f.words, sizeof w);
	w[find(w, REG_DPU_S_POINTER)] = npu_regcmd_word(NPU_TARGET_PC | 1, 0x6004, 0xe); /* PPU block */
	expect_refusal(&f, w, NPU_TASK_WORDS, 1, "PPU block");

	memcpy(w, f.words, sizeof w);
	unsigned i = find(w, REG_CNA_CBUF_CON1);
	w[i] = (w[i] & UINT64_C(0x0000ffffffffffff)) | ((uint64_t)(NPU_TARGET_DPU | 1) << 48);
	expect_refusal(&f, w, NPU_TASK_WORDS, 1, "target 0x1001");

	memcpy(w, f.words, sizeof w);
	set_value(w, REG_CORE_CLIP_TRUNCATE, 1);
	expect_refusal(&f, w, NPU_TASK_WORDS, 1, "CORE_CLIP_TRUNCATE");

	memcpy(w, f.words, sizeof w);
	set_value(w, REG_CNA_CONV_CON1, 3); /* depthwise */
	expect_refusal(&f, w, NPU_TASK_WORDS, 1, "CNA_CONV_CON1");

	memcpy(w, f.words, sizeof w);
	set_value(w, REG_DPU_DATA_FORMAT, 0); /* int8 output needs the BS/OUT_CVT path */
	expect_refusal(&f, w, NPU_TASK_WORDS, 1, "DPU_DATA_FORMAT");

	memcpy(w, f.words, sizeof w);
	set_value(w, REG_CORE_DATAOUT_SIZE_1, N - 2);
	expect_refusal(&f, w, NPU_TASK_WORDS, 1, "CORE_DATAOUT_SIZE");

	memcpy(w, f.words, sizeof w);
	set_value(w, REG_CNA_CBUF_CON0, CNA_CBUF_CON0(12, 0));
	expect_refusal(&f, w, NPU_TASK_WORDS, 1, "CNA_CBUF_CON0");

	memcpy(w, f.words, sizeof w);
	w[find(w, REG_CNA_PAD_CON1)] = w[find(w, REG_CNA_PAD_CON0)]; /* PAD_CON1 never written */
	expect_refusal(&f, w, NPU_TASK_WORDS, 1, "never writes CNA_PAD_CON1");

	memcpy(w, f.words, sizeof w);
	w[NPU_TASK_WORDS - 1] = npu_regcmd_word(NPU_TARGET_OP_ENABLE, REG_PC_OPERATION_ENABLE, 0x7f); /* PPU too */
	expect_refusal(&f, w, NPU_TASK_WORDS, 1, "op_en");

	memcpy(w, f.words, sizeof w); /* DPU_RDMA started, its registers never written */
	w[NPU_TASK_WORDS - 1] = npu_regcmd_word(NPU_TARGET_OP_ENABLE, REG_PC_OPERATION_ENABLE, 0x1d);
	expect_refusal(&f, w, NPU_TASK_WORDS, 1, "never writes DPU_RDMA_S_POINTER");

	memcpy(w, f.words, sizeof w); /* weights kept from a task that did not run */
	set_value(w, REG_CNA_CBUF_CON0, (uint32_t)(w[find(w, REG_CNA_CBUF_CON0)] >> 16) | CNA_CBUF_CON0_WEIGHT_REUSE);
	expect_refusal(&f, w, NPU_TASK_WORDS, 1, "WEIGHT_REUSE");

	memcpy(w, f.words, sizeof w);
	set_value(w, REG_CNA_PAD_CON0, 1u << 4); /* a column of padding for a 1x1 kernel */
	expect_refusal(&f, w, NPU_TASK_WORDS, 1, "CNA_PAD_CON0");

	memcpy(w, f.words, sizeof w);
	set_value(w, REG_DPU_DATA_CUBE_CHANNEL, ((N - 1u) << 16) | (N + 31u)); /* a kernel group more than written */
	expect_refusal(&f, w, NPU_TASK_WORDS, 1, "DPU_DATA_CUBE_CHANNEL");

	expect_refusal(&f, f.words, NPU_TASK_WORDS - 1, 1, "odd");
	expect_refusal(&f, f.words, NPU_TASK_WORDS - 2, 1, "tail word 0");
	memcpy(w, f.words, sizeof w);
	w[NPU_TASK_WORDS - 2] = 0; /* marker missing before op_en */
	expect_refusal(&f, w, NPU_TASK_WORDS, 1, "0x0041 marker");

	memcpy(w, f.words, sizeof w);
	set_value(w, REG_CNA_FEATURE_DATA_ADDR, (uint32_t)f.feature.dma_address + 4096 - 64);
	expect_refusal(&f, w, NPU_TASK_WORDS, 1, "past the end");

	memcpy(w, f.words, sizeof w);
	set_value(w, REG_DPU_DST_BASE_ADDR, 0x40000000);
	expect_refusal(&f, w, NPU_TASK_WORDS, 1, "not inside any BO");

	expect_refusal(&f, f.words, NPU_TASK_WORDS, 0, "not listed as a job output");

	npu_close(f.dev);
	check_cbuf_limits();
	printf("model_refuses: ok\n");
	return 0;
}
