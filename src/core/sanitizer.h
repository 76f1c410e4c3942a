/* SPDX-License-Identifier: MIT */
/* AddressSanitizer and ThreadSanitizer hooks for stack switching; no-ops
 * in ordinary builds. */
#ifndef WEFT_CORE_SANITIZER_H
#define WEFT_CORE_SANITIZER_H

#include <stddef.h>

#if defined(__SANITIZE_ADDRESS__)
#define WEFT__ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WEFT__ASAN 1
#endif
#endif

#if defined(__SANITIZE_THREAD__)
#define WEFT__TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define WEFT__TSAN 1
#endif
#endif

#ifdef WEFT__ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
static inline void weft__asan_unpoison(void *p, size_t n) { __asan_unpoison_memory_region(p, n); }
#else
static inline void weft__asan_unpoison(void *p, size_t n) { (void)p; (void)n; }
#endif

#ifdef WEFT__TSAN
#include <sanitizer/tsan_interface.h>
#endif

#endif
