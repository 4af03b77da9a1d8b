/* SPDX-License-Identifier: MIT */
/* Error messages and statuses, and the clock: what every part of libnpu (and the emulated device) uses. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <time.h>

#include "npu_internal.h"

static _Thread_local char error_message[512];

int npu_fail(int status, const char *format, ...)
{
	va_list args;
	va_start(args, format);
	vsnprintf(error_message, sizeof error_message, format, args);
	va_end(args);
	return status;
}

const char *npu_error(void)
{
	return error_message;
}

const char *npu_status_name(int status)
{
	switch (status) {
	case NPU_OK: return "ok";
	case NPU_ERR_INVALID: return "invalid";
	case NPU_ERR_NOMEM: return "out-of-memory";
	case NPU_ERR_IO: return "io";
	case NPU_ERR_NO_DEVICE: return "no-device";
	case NPU_ERR_TIMEOUT: return "timeout";
	case NPU_ERR_JOB_LOST: return "job-lost";
	case NPU_ERR_REFUSED: return "refused-by-model";
	case NPU_ERR_LIMIT: return "limit";
	default: return "unknown";
	}
}

int64_t npu_monotonic_ns(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}
