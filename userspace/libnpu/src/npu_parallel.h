/* SPDX-License-Identifier: MIT */
#ifndef NPU_PARALLEL_H
#define NPU_PARALLEL_H

#include <stddef.h>

#define NPU_MAX_THREADS 16u

/* Calls range(context, index, begin, end) for `threads` contiguous ranges splitting [0, count) evenly, at the
 * same time: the first on the caller's thread, each other on a thread of its own, or on the caller's too
 * when no thread can be started (the work is done either way; only slower). */
void npu_parallel_for(unsigned threads, size_t count, void (*range)(void *context, unsigned index, size_t begin,
								      size_t end), void *context);

#endif
