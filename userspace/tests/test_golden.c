/* SPDX-License-Identifier: MIT */
/*
 * Register-command streams of fixed tasks against golden files derived by hand from the register
 * documentation (files in tests/golden, each line: target register value name # why). A builder
 * change fails here even if the software model changed with it.
 * NPU_GOLDEN_DUMP=1 prints the builder's stream in the golden format instead (for review only).
 */
#include <string.h>

#include "npu/jobs.h"
#include "support.h"

struct golden_case {
	const char *file;
	struct npu_task_geometry task;
};

static const struct golden_case cases[] = {
	/* the worked example of the research notes: one task, whole matrices */
	{"int8_m64_n64_k256.regcmd", {NPU_INT8, 64, 64, 256, 64, 64, 0x0, 0x10000, 0x20000}},
	/* second row tile of a tiled GEMM: 44 of 120 rows, surfaces of the whole 120-row tensors,
	 * channels 32..63 of the input (second 16-channel surface pair), kernels 64..95 of the output */
	{"int8_tile_m44_n32_k32_of_m120.regcmd",
	 {NPU_INT8, 44, 32, 32, 120, 120, 0x100000 + (2 * 120 + 76) * 16, 0x200400, 0x300000 + (16 * 120 + 76) * 16}},
	{"fp16_m8_n16_k64.regcmd", {NPU_FP16, 8, 16, 64, 8, 8, 0x4000, 0x8000, 0xc000}},
	/* the completion canary task appended to every job (gemm.c) */
	{"int8_canary_m4_n32_k32.regcmd", {NPU_INT8, 4, 32, 32, 4, 4, 0x1000, 0x1080, 0x2000}},
};

static void dump(const struct golden_case *c, const uint64_t *words)
{
	printf("# %s\n", c->file);
	for (unsigned i = 0; i < NPU_TASK_WORDS; i++)
		printf("%04x %04x %08x\n", (unsigned)(words[i] >> 48), (unsigned)(words[i] & 0xffff),
		       (unsigned)(words[i] >> 16));
}

static void compare(const struct golden_case *c, const uint64_t *words, const char *directory)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", directory, c->file);
	FILE *file = fopen(path, "r");
	CHECK(file, "cannot open golden file %s", path);
	char line[512];
	unsigned index = 0, line_number = 0;
	while (fgets(line, sizeof line, file)) {
		line_number++;
		char *comment = strchr(line, '#');
		if (comment)
			*comment = '\0';
		unsigned target, reg, value;
		char extra[64];
		int fields = sscanf(line, "%x %x %x %63s", &target, &reg, &value, extra);
		if (fields <= 0)
			continue;
		CHECK(fields >= 3, "%s:%u: expected 'target register value [name]'", path, line_number);
		CHECK(index < NPU_TASK_WORDS, "%s:%u: more words than the builder emits (%u)", path, line_number,
		      NPU_TASK_WORDS);
		uint64_t expected = ((uint64_t)target << 48) | ((uint64_t)value << 16) | reg;
		CHECK(words[index] == expected, "%s:%u (word %u%s%s): builder emits %04x %04x %08x, golden %04x %04x %08x",
		      path, line_number, index, fields > 3 ? " " : "", fields > 3 ? extra : "",
		      (unsigned)(words[index] >> 48), (unsigned)(words[index] & 0xffff), (unsigned)(words[index] >> 16),
		      target, reg, value);
		index++;
	}
	fclose(file);
	CHECK(index == NPU_TASK_WORDS, "%s has %u words, the builder emits %u", path, index, NPU_TASK_WORDS);
}

int main(void)
{
	const char *directory = getenv("NPU_GOLDEN_DIR");
	int dumping = getenv("NPU_GOLDEN_DUMP") != NULL;
	CHECK(directory || dumping, "NPU_GOLDEN_DIR is not set (ctest sets it)");
	for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		uint64_t words[NPU_TASK_WORDS];
		CHECK_OK(npu_emit_gemm_task(&cases[i].task, words));
		if (dumping)
			dump(&cases[i], words);
		else
			compare(&cases[i], words, directory);
	}
	if (!dumping)
		printf("golden: ok, %u streams\n", (unsigned)(sizeof cases / sizeof cases[0]));
	return 0;
}
