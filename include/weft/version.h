/* SPDX-License-Identifier: MIT */
/* weft's version: the headers' at compile time, the library's at run time.
 * The three numbers below are the one place the version is written:
 * CMakeLists.txt reads them for project(VERSION), weft.pc and the CMake
 * package's version file. */
#ifndef WEFT_VERSION_H
#define WEFT_VERSION_H

#define WEFT_VERSION_MAJOR 0
#define WEFT_VERSION_MINOR 1
#define WEFT_VERSION_PATCH 0

#define WEFT__STR2(x) #x
#define WEFT__STR(x) WEFT__STR2(x)
/* "MAJOR.MINOR.PATCH" */
#define WEFT_VERSION                                                                              \
    WEFT__STR(WEFT_VERSION_MAJOR) "." WEFT__STR(WEFT_VERSION_MINOR) "." WEFT__STR(WEFT_VERSION_PATCH)
/* One number that grows with every release, 0xMMmmpp, for comparisons:
 * #if WEFT_VERSION_HEX >= 0x000200 */
#define WEFT_VERSION_HEX                                                                          \
    ((WEFT_VERSION_MAJOR << 16) | (WEFT_VERSION_MINOR << 8) | WEFT_VERSION_PATCH)

#ifdef __cplusplus
extern "C" {
#endif

/*
 * The version of the library the program runs with, as WEFT_VERSION_HEX
 * was when it was built.  It differs from the headers' WEFT_VERSION_HEX
 * when the program was compiled against another release of the shared
 * library.  Does not suspend; any thread, with or without a loop.
 */
unsigned weft_version(void);

/* The same as a string, "MAJOR.MINOR.PATCH" (static storage, never NULL).
 * Does not suspend; any thread, with or without a loop. */
const char *weft_version_string(void);

#ifdef __cplusplus
}
#endif
#endif
