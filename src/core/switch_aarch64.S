/* SPDX-License-Identifier: MIT */
/*
 * Context switch for aarch64 (AAPCS64).
 *
 * void weft__switch(void **save_sp, void *load_sp)
 *   Saves x19-x30, d8-d15 and FPCR in a 176-byte frame on the current
 *   stack, stores sp in *save_sp, loads load_sp and restores the same frame.
 *
 * Frame, from the saved sp up: x19,x20 (+0) x21,x22 (+16) x23,x24 (+32)
 * x25,x26 (+48) x27,x28 (+64) x29,x30 (+80) d8..d15 (+96..+159) FPCR (+160).
 * tools/weft-gdb.py reads x29 at +80 and x30 at +88.
 *
 * A new task's frame (see context.c) holds its argument in x19, entry in
 * x20, x29 = 0 and weft__trampoline in x30.
 */
    .text
    .globl  weft__switch
    .hidden weft__switch
    .type   weft__switch, %function
    .p2align 4
weft__switch:
    .cfi_startproc
    sub     sp, sp, #176
    stp     x19, x20, [sp, #0]
    stp     x21, x22, [sp, #16]
    stp     x23, x24, [sp, #32]
    stp     x25, x26, [sp, #48]
    stp     x27, x28, [sp, #64]
    stp     x29, x30, [sp, #80]
    stp     d8, d9, [sp, #96]
    stp     d10, d11, [sp, #112]
    stp     d12, d13, [sp, #128]
    stp     d14, d15, [sp, #144]
    mrs     x9, fpcr
    str     x9, [sp, #160]
    mov     x9, sp
    str     x9, [x0]
    mov     sp, x1
    ldp     x19, x20, [sp, #0]
    ldp     x21, x22, [sp, #16]
    ldp     x23, x24, [sp, #32]
    ldp     x25, x26, [sp, #48]
    ldp     x27, x28, [sp, #64]
    ldp     x29, x30, [sp, #80]
    ldp     d8, d9, [sp, #96]
    ldp     d10, d11, [sp, #112]
    ldp     d12, d13, [sp, #128]
    ldp     d14, d15, [sp, #144]
    ldr     x9, [sp, #160]
    msr     fpcr, x9
    add     sp, sp, #176
    ret
    .cfi_endproc
    .size   weft__switch, .-weft__switch

    .globl  weft__trampoline
    .hidden weft__trampoline
    .type   weft__trampoline, %function
    .p2align 4
weft__trampoline:
    .cfi_startproc
    .cfi_undefined x30
    mov     x0, x19
    blr     x20
    brk     #0
    .cfi_endproc
    .size   weft__trampoline, .-weft__trampoline

    .section .note.GNU-stack,"",%progbits
