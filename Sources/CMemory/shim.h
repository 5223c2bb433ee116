#pragma once
#include <stddef.h>

// mremap(2) is variadic, which Swift cannot call. Linux's ABI values of its flags.
extern void *mremap(void *old_address, size_t old_size, size_t new_size, int flags, ...);

/// Moves the pages of [from, from + length) onto [to, to + length), replacing whatever was
/// mapped there in one step (other threads reading `to` see the old pages or the new ones, never a
/// hole). Returns `to`, or MAP_FAILED ((void *)-1) with errno set.
static inline void *blip_mremap_onto(void *from, size_t length, void *to) {
    return mremap(from, length, length, 1 /* MREMAP_MAYMOVE */ | 2 /* MREMAP_FIXED */, to);
}
