/*
 * fuzz.h - what every fuzz target defines.  Built with clang's libFuzzer
 * (meson -Dfuzz=true), a target explores; built without it, replay.c runs
 * the same function over the seed corpus and every input that once found a
 * fault, as a plain regression test.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/** LLVMFuzzerTestOneInput: one input; returns 0 (faults abort). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
