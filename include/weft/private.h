/* SPDX-License-Identifier: MIT */
/* Types that weft's public structs embed.  Their fields are private: use
 * the functions of the owning header, never the fields. */
#ifndef WEFT_PRIVATE_H
#define WEFT_PRIVATE_H

/* An intrusive list link. */
struct weft__link {
    struct weft__link *prev, *next;
};

#endif
