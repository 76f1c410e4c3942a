/* SPDX-License-Identifier: MIT */
/*
 * Context switch for x86_64 (System V ABI).
 *
 * void weft__switch(void **save_sp, void *load_sp)
 *   Pushes the callee-saved registers and the floating-point control state
 *   (MXCSR, x87 control word) on the current stack, stores the stack pointer
 *   in *save_sp, loads load_sp and pops the same frame from there.
 *
 * Saved frame, from the saved stack pointer up:
 *   +0  MXCSR (4 bytes) and x87 control word (2 bytes, padded)
 *   +8  r15, +16 r14, +24 r13, +32 r12, +40 rbx, +48 rbp, +56 return address
 * tools/weft-gdb.py reads rbp at +48 and the return address at +56.
 *
 * A new task's frame (see context.c) holds entry in r13, its argument in
 * r12, rbp = 0 and weft__trampoline as the return address.
 *
 * Intel CET: endbr64 marks the indirect-branch targets (a no-op on CPUs
 * without IBT).  Shadow stacks cannot follow a stack switch done with ret,
 * so this file deliberately carries no SHSTK property note: the linker then
 * marks any program that links it as not shadow-stack capable and the
 * kernel runs it without shadow stacks.  CMakeLists.txt refuses to build
 * when shadow stacks are forced (-z shstk / cet-report=error).
 */
#if defined(__CET__) && (__CET__ & 1)
#define WEFT_ENDBR endbr64
#else
#define WEFT_ENDBR
#endif

    .text
    .globl  weft__switch
    .hidden weft__switch
    .type   weft__switch, @function
    .p2align 4
weft__switch:
    .cfi_startproc
    WEFT_ENDBR
    pushq   %rbp
    pushq   %rbx
    pushq   %r12
    pushq   %r13
    pushq   %r14
    pushq   %r15
    subq    $8, %rsp
    stmxcsr (%rsp)
    fnstcw  4(%rsp)
    movq    %rsp, (%rdi)
    movq    %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw   4(%rsp)
    addq    $8, %rsp
    popq    %r15
    popq    %r14
    popq    %r13
    popq    %r12
    popq    %rbx
    popq    %rbp
    ret
    .cfi_endproc
    .size   weft__switch, .-weft__switch

/* First code a new task runs: call entry(arg).  entry never returns (it
 * switches away for good); ud2 catches the impossible.  The undefined
 * return address ends every backtrace here. */
    .globl  weft__trampoline
    .hidden weft__trampoline
    .type   weft__trampoline, @function
    .p2align 4
weft__trampoline:
    .cfi_startproc
    .cfi_undefined rip
    WEFT_ENDBR
    movq    %r12, %rdi
    callq   *%r13
    ud2
    .cfi_endproc
    .size   weft__trampoline, .-weft__trampoline

    .section .note.GNU-stack,"",@progbits
