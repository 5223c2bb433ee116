#pragma once
#include <oneapi/dnnl/dnnl.h>

// Debian's oneDNN runs its parallel regions on OpenMP (libgomp). Each thread that calls a
// primitive sets its own team size (an OpenMP per-thread setting): an encode lane asks for its
// share of the cores. Declared here because omp.h sits in GCC's private include directory.
void omp_set_num_threads(int count);
