/* SPDX-License-Identifier: MIT */
/* Test helpers: failing checks, a seeded generator, plain C reference GEMMs. */
#ifndef NPU_TEST_SUPPORT_H
#define NPU_TEST_SUPPORT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "npu/npu.h"

#define CHECK(condition, ...)                                                              \
	do {                                                                               \
		if (!(condition)) {                                                        \
			fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #condition); \
			fprintf(stderr, __VA_ARGS__);                                      \
			fprintf(stderr, "\n");                                             \
			exit(1);                                                           \
		}                                                                          \
	} while (0)

#define CHECK_OK(call)                                                                             \
	do {                                                                                       \
		int status_ = (call);                                                              \
		CHECK(status_ == NPU_OK, "%s returned %s: %s", #call, npu_status_name(status_), npu_error()); \
	} while (0)

/* The call fails with this status and a message naming `text` (strstr). */
#define CHECK_FAILS(call, expected_status, text)                                                      \
	do {                                                                                          \
		int status_ = (call);                                                                 \
		CHECK(status_ == (expected_status), "%s returned %s, expected %s", #call,             \
		      npu_status_name(status_), npu_status_name(expected_status));                    \
		CHECK(strstr(npu_error(), text), "message '%s' does not name '%s'", npu_error(), text); \
	} while (0)

/* Seed from NPU_TEST_SEED or the clock; printed so a failure can be reproduced. */
uint64_t test_seed(const char *test_name);
uint64_t test_random(void);
unsigned test_random_below(unsigned bound);
void test_fill_i8(int8_t *data, size_t count);
/* fp16 values uniform in [-2, 2] on a 1/512 grid (exactly representable). */
void test_fill_f16(uint16_t *data, size_t count);

struct npu_dev *test_open_model(unsigned lanes);
/* The backend NPU_TEST_BACKEND names: "model" (the default) or "rocket" (a real or emulated device). */
struct npu_dev *test_open(unsigned lanes);

void reference_gemm_i8(int32_t *c, const int8_t *a, const int8_t *b_nk, unsigned m, unsigned n, unsigned k);
/* Exact (double) result and the fp32-accumulation error bound (k + 2) * 2^-24 * sum |a b|. */
void reference_gemm_f16(double *c, double *bound, const uint16_t *a, const uint16_t *b_nk, unsigned m,
			unsigned n, unsigned k);

double test_budget(void); /* NPU_TEST_BUDGET, default 1.0 */

#endif
