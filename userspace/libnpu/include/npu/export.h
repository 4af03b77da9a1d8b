/* SPDX-License-Identifier: MIT */
/* libnpu builds with hidden visibility: what these headers declare with NPU_API is all libnpu.so exports
 * (the ctest exported_symbols checks it). */
#ifndef NPU_EXPORT_H
#define NPU_EXPORT_H

#define NPU_API __attribute__((visibility("default")))

#endif
