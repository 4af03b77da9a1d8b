/* SPDX-License-Identifier: MIT */
/* The software model executes valid hand-built tasks exactly as the plain definition computes them,
 * and refuses, with a message naming the problem, every register, mode or access it does not model. */
#define _POSIX_C_SOURCE 200809L /* setenv */

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

/* A convolution with sizes the builder does not emit (kernels not a multiple of the model's blocks, channels
 * not of 32, kernels, strides, padding): a builder GEMM task with its size registers rewritten. */
struct conv_case {
	enum npu_precision precision;
	unsigned in_w, in_h, channels, kernel_w, kernel_h, kernels, stride, pad_left, pad_top;
	uint32_t pad_bits;
};

struct conv_sizes {
	unsigned bpe, c2, out_w, out_h, out_channels, per_atom;
	uint32_t feature_surface, per_kernel, output_surface;
};

static struct conv_sizes conv_sizes(const struct conv_case *k)
{
	struct conv_sizes z;
	z.bpe = k->precision == NPU_INT8 ? 1 : 2;
	z.c2 = 16 / z.bpe;
	z.out_w = (k->in_w + k->pad_left - 1) / k->stride + 1;
	z.out_h = (k->in_h + k->pad_top - 1) / k->stride + 1;
	unsigned group = z.bpe == 1 ? 32 : 16;
	z.out_channels = (k->kernels + group - 1) / group * group;
	z.per_atom = 4; /* raw int32 or fp32 out */
	z.feature_surface = (k->in_w * k->in_h + 4 * k->in_w) * 16;
	z.per_kernel = k->kernel_w * k->kernel_h * k->channels * z.bpe;
	z.output_surface = z.out_w * z.out_h * 16;
	return z;
}

static void emit_conv(const struct conv_case *k, const struct conv_sizes *z, const uint32_t address[3], uint64_t *w)
{
	struct npu_task_geometry g = {k->precision, 4, z->out_channels, 32, 4, 4, address[0], address[1], address[2]};
	CHECK_OK(npu_emit_gemm_task(&g, w));
	unsigned weight_banks = (z->per_kernel * k->kernels + NPU_CBUF_BANK_BYTES - 1) / NPU_CBUF_BANK_BYTES;
	const struct {
		uint16_t reg;
		uint32_t value;
	} sizes[] = {
		{REG_CNA_DATA_SIZE0, (k->in_w << 16) | k->in_h},
		{REG_CNA_DATA_SIZE1, ((k->channels - 1) << 16) | k->channels},
		{REG_CNA_DATA_SIZE2, z->out_w}, {REG_CNA_DATA_SIZE3, z->out_w * z->out_h},
		{REG_CNA_CONV_CON3, k->stride | k->stride << 3},
		{REG_CNA_WEIGHT_SIZE0, z->per_kernel * k->kernels}, {REG_CNA_WEIGHT_SIZE1, z->per_kernel},
		{REG_CNA_WEIGHT_SIZE2, k->kernel_w << 24 | k->kernel_h << 16 | k->kernels},
		{REG_CNA_PAD_CON0, k->pad_left << 4 | k->pad_top}, {REG_CNA_PAD_CON1, k->pad_bits},
		{REG_CNA_FC_DATA_SIZE0, (k->in_w << 16) | k->in_h}, {REG_CNA_FC_DATA_SIZE1, k->channels},
		{REG_CNA_CBUF_CON0, CNA_CBUF_CON0(weight_banks, NPU_CBUF_BANKS - weight_banks)},
		{REG_CNA_CBUF_CON1, (k->in_w * k->channels * z->bpe + 63) / 64},
		{REG_CNA_DMA_CON1, 4 * k->in_w}, {REG_CNA_DMA_CON2, k->in_w * k->in_h},
		{REG_CORE_DATAOUT_SIZE_0, (z->out_h - 1) << 16 | (z->out_w - 1)},
		{REG_CORE_DATAOUT_SIZE_1, z->out_channels - 1},
		{REG_DPU_DATA_CUBE_WIDTH, z->out_w - 1}, {REG_DPU_DATA_CUBE_HEIGHT, z->out_h - 1},
		{REG_DPU_DATA_CUBE_CHANNEL, (k->kernels - 1) << 16 | (z->out_channels - 1)},
		{REG_DPU_WDMA_SIZE_0, z->out_channels - 1}, {REG_DPU_WDMA_SIZE_1, (z->out_h - 1) << 16 | (z->out_w - 1)},
		{REG_DPU_DST_SURF_STRIDE, z->output_surface},
		{REG_DPU_SURFACE_ADD, z->output_surface * (z->bpe == 1 ? 8 : 4)},
	};
	for (unsigned i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
		set_value(w, sizes[i].reg, sizes[i].value);
}

/* Input element (x, y, channel c) as a float (fp16 bits or int8), the padding value outside the input. */
static float conv_input(const struct conv_case *k, const uint8_t *in, int x, int y, unsigned c)
{
	int inside = x >= 0 && y >= 0 && x < (int)k->in_w && y < (int)k->in_h;
	if (k->precision == NPU_INT8)
		return inside ? (float)(int8_t)in[((size_t)y * k->in_w + x) * k->channels + c] : (float)(int8_t)k->pad_bits;
	uint16_t h = (uint16_t)k->pad_bits;
	if (inside)
		memcpy(&h, in + 2 * (((size_t)y * k->in_w + x) * k->channels + c), 2);
	return npu_f32_from_fp16(h);
}

/* The plain definition: per output element one sum from zero in depth order (kernel position, then
 * channel), fp32 or int32. */
static void reference_conv(const struct conv_case *k, const struct conv_sizes *z, const uint8_t *in, const uint8_t *wt,
			   unsigned p, unsigned n, uint8_t out[4])
{
	float sum = 0.0f;
	int32_t isum = 0;
	for (unsigned s = 0; s < k->kernel_w * k->kernel_h; s++)
		for (unsigned c = 0; c < k->channels; c++) {
			int x = (int)((p % z->out_w) * k->stride + s % k->kernel_w) - (int)k->pad_left;
			int y = (int)((p / z->out_w) * k->stride + s / k->kernel_w) - (int)k->pad_top;
			size_t e = ((size_t)n * k->kernel_w * k->kernel_h + s) * k->channels + c;
			float a = conv_input(k, in, x, y, c);
			if (k->precision == NPU_INT8) {
				isum += (int32_t)a * (int8_t)wt[e];
			} else {
				uint16_t h;
				memcpy(&h, wt + 2 * e, 2);
				sum += a * npu_f32_from_fp16(h);
			}
		}
	if (k->precision == NPU_INT8)
		memcpy(out, &isum, 4);
	else
		memcpy(out, &sum, 4);
}

/* The inputs in the NPU's layouts, written out from the register documentation: the feature map as 16-byte
 * atoms (C2 channels) per surface, row by row; the weights in groups of kernels, channel blocks of 32 (the
 * last holds what is left), kernel positions, kernels. */
static void place_conv(const struct conv_case *k, const struct conv_sizes *z, const uint8_t *in, const uint8_t *wt,
		       uint8_t *feature, uint8_t *weights)
{
	for (unsigned y = 0; y < k->in_h; y++)
		for (unsigned x = 0; x < k->in_w; x++)
			for (unsigned c = 0; c < k->channels; c++)
				memcpy(feature + (size_t)(c / z->c2) * z->feature_surface + ((size_t)y * k->in_w + x) * 16 +
					       (c % z->c2) * z->bpe, in + (((size_t)y * k->in_w + x) * k->channels + c) * z->bpe,
				       z->bpe);
	unsigned group = z->bpe == 1 ? 32 : 16, positions = k->kernel_w * k->kernel_h;
	for (unsigned n = 0; n < k->kernels; n++)
		for (unsigned s = 0; s < positions; s++)
			for (unsigned c = 0; c < k->channels; c++) {
				unsigned g = n / group, in_group = k->kernels - g * group < group ? k->kernels - g * group : group;
				unsigned block = c / 32, in_block = k->channels - block * 32 < 32 ? k->channels - block * 32 : 32;
				size_t e = (size_t)g * group * k->channels * positions + (size_t)in_group * block * 32 * positions +
					   ((size_t)s * in_group + n % group) * in_block + c % 32;
				memcpy(weights + e * z->bpe, wt + (((size_t)n * positions + s) * k->channels + c) * z->bpe, z->bpe);
			}
}

/* Each case with the model's default threads, one thread and three: outputs equal to the reference bit for bit. */
static void check_exact(const struct conv_case *k)
{
	struct conv_sizes z = conv_sizes(k);
	struct npu_dev *dev = test_open_model(1);
	size_t in_bytes = (size_t)k->in_w * k->in_h * k->channels * z.bpe, wt_bytes = (size_t)z.per_kernel * k->kernels;
	size_t out_bytes = (size_t)z.out_channels / z.per_atom * z.output_surface;
	struct npu_bo feature, weights, output, regcmd;
	CHECK_OK(npu_bo_create(dev, 0, (size_t)(k->channels / z.c2) * z.feature_surface, &feature));
	CHECK_OK(npu_bo_create(dev, 0, wt_bytes, &weights));
	CHECK_OK(npu_bo_create(dev, 0, out_bytes, &output));
	CHECK_OK(npu_bo_create(dev, 0, NPU_TASK_WORDS * 8, &regcmd));
	uint8_t *in = malloc(in_bytes), *wt = malloc(wt_bytes);
	if (k->precision == NPU_INT8) {
		test_fill_i8((int8_t *)in, in_bytes);
		test_fill_i8((int8_t *)wt, wt_bytes);
	} else {
		test_fill_f16((uint16_t *)(void *)in, in_bytes / 2);
		test_fill_f16((uint16_t *)(void *)wt, wt_bytes / 2);
	}
	place_conv(k, &z, in, wt, feature.map, weights.map);
	uint32_t address[3] = {(uint32_t)feature.dma_address, (uint32_t)weights.dma_address, (uint32_t)output.dma_address};
	emit_conv(k, &z, address, regcmd.map);
	struct npu_task task = {(uint32_t)regcmd.dma_address, NPU_TASK_WORDS};
	const struct npu_bo *bos_in[] = {&feature, &weights, &regcmd}, *bos_out[] = {&output};
	static const char *threads[] = {NULL, "1", "3"};
	for (unsigned t = 0; t < 3; t++) {
		if (threads[t])
			setenv("NPU_MODEL_THREADS", threads[t], 1);
		memset(output.map, 0, out_bytes);
		CHECK_OK(npu_submit(dev, 0, &task, 1, bos_in, 3, bos_out, 1));
		for (unsigned p = 0; p < z.out_w * z.out_h; p++)
			for (unsigned n = 0; n < k->kernels; n++) {
				uint8_t expected[4], *got = (uint8_t *)output.map + (size_t)(n / z.per_atom) * z.output_surface +
							    p * 16u + (n % z.per_atom) * 4;
				reference_conv(k, &z, in, wt, p, n, expected);
				CHECK(memcmp(got, expected, 4) == 0, "%s %ux%u x %u channels, %ux%u x %u kernels, threads %s: "
				      "output %u kernel %u differs from the plain sum", npu_precision_name(k->precision), k->in_w,
				      k->in_h, k->channels, k->kernel_w, k->kernel_h, k->kernels, threads[t] ? threads[t] : "default",
				      p, n);
			}
	}
	unsetenv("NPU_MODEL_THREADS");
	free(in), free(wt);
	npu_close(dev);
}

static void check_exact_cases(void)
{
	static const struct conv_case cases[] = {
		{NPU_INT8, 1, 130, 1008, 1, 1, 90, 1, 0, 0, 0},       /* GEMM-like: enough work for 3 threads */
		{NPU_FP16, 1, 99, 1000, 1, 1, 50, 1, 0, 0, 0},        /* fp16 sums that round: order matters */
		{NPU_INT8, 9, 7, 48, 3, 3, 37, 2, 1, 1, 0xfdu},       /* kernel, stride, padding of -3 */
		{NPU_FP16, 6, 5, 24, 2, 3, 21, 1, 1, 2, 0x3c00u},     /* padding of 1.0 */
	};
	for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; i++)
		check_exact(&cases[i]);
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
	check_exact_cases();
	printf("model_refuses: ok\n");
	return 0;
}
