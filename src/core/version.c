/* SPDX-License-Identifier: MIT */
/* The library's version, as the headers said when it was built. */
#include <weft/version.h>

unsigned weft_version(void)
{
    return WEFT_VERSION_HEX;
}

const char *weft_version_string(void)
{
    return WEFT_VERSION;
}
