/* SPDX-License-Identifier: MIT */
#define _POSIX_C_SOURCE 200809L
#include "support.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t state = 1;

uint64_t test_seed(const char *test_name)
{
	const char *text = getenv("NPU_TEST_SEED");
	uint64_t seed;
	if (text && *text) {
		seed = strtoull(text, NULL, 0);
	} else {
		struct timespec now;
		clock_gettime(CLOCK_REALTIME, &now);
		seed = (uint64_t)now.tv_sec * 1000003u ^ (uint64_t)now.tv_nsec;
	}
	state = seed ? seed : 1;
	printf("%s: seed %llu (rerun with NPU_TEST_SEED=%llu)\n", test_name, (unsigned long long)seed,
	       (unsigned long long)seed);
	fflush(stdout);
	return seed;
}

uint64_t test_random(void)
{
	/* xorshift64* */
	state ^= state >> 12;
	state ^= state << 25;
	state ^= state >> 27;
	return state * UINT64_C(2685821657736338717);
}

unsigned test_random_below(unsigned bound)
{
	return (unsigned)(test_random() >> 32) % bound;
}

void test_fill_i8(int8_t *data, size_t count)
{
	for (size_t i = 0; i < count; i++)
		data[i] = (int8_t)(test_random() >> 56);
}

void test_fill_f16(uint16_t *data, size_t count)
{
	for (size_t i = 0; i < count; i++)
		data[i] = npu_fp16_from_f32((float)((int)test_random_below(2049) - 1024) / 512.0f);
}

static struct npu_dev *open_backend(enum npu_backend backend, unsigned lanes)
{
	struct npu_open_options options = {.backend = backend, .lanes = lanes};
	struct npu_dev *dev = NULL;
	CHECK_OK(npu_open(&dev, &options));
	return dev;
}

struct npu_dev *test_open_model(unsigned lanes)
{
	return open_backend(NPU_BACKEND_MODEL, lanes);
}

struct npu_dev *test_open(unsigned lanes)
{
	const char *name = getenv("NPU_TEST_BACKEND");
	if (!name || !*name || strcmp(name, "model") == 0)
		return test_open_model(lanes);
	CHECK(strcmp(name, "rocket") == 0, "NPU_TEST_BACKEND=%s: expected 'model' or 'rocket'", name);
	return open_backend(NPU_BACKEND_ROCKET, lanes);
}

void reference_gemm_i8(int32_t *c, const int8_t *a, const int8_t *b_nk, unsigned m, unsigned n, unsigned k)
{
	for (unsigned i = 0; i < m; i++)
		for (unsigned j = 0; j < n; j++) {
			int64_t sum = 0;
			for (unsigned q = 0; q < k; q++)
				sum += (int32_t)a[(size_t)i * k + q] * b_nk[(size_t)j * k + q];
			c[(size_t)i * n + j] = (int32_t)sum;
		}
}

void reference_gemm_f16(double *c, double *bound, const uint16_t *a, const uint16_t *b_nk, unsigned m,
			unsigned n, unsigned k)
{
	float *af = malloc((size_t)m * k * sizeof *af), *bf = malloc((size_t)n * k * sizeof *bf);
	CHECK(af && bf, "out of memory");
	for (size_t i = 0; i < (size_t)m * k; i++)
		af[i] = npu_f32_from_fp16(a[i]);
	for (size_t i = 0; i < (size_t)n * k; i++)
		bf[i] = npu_f32_from_fp16(b_nk[i]);
	for (unsigned i = 0; i < m; i++)
		for (unsigned j = 0; j < n; j++) {
			double sum = 0, magnitude = 0;
			for (unsigned q = 0; q < k; q++) {
				double product = (double)af[(size_t)i * k + q] * bf[(size_t)j * k + q];
				sum += product;
				magnitude += fabs(product);
			}
			c[(size_t)i * n + j] = sum;
			bound[(size_t)i * n + j] = (k + 2) * magnitude / 16777216.0;
		}
	free(af);
	free(bf);
}

double test_budget(void)
{
	const char *text = getenv("NPU_TEST_BUDGET");
	double budget = text && *text ? atof(text) : 1.0;
	return budget > 0 ? budget : 1.0;
}
