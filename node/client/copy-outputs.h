#ifndef MESHCC_COPY_OUTPUTS_H
#define MESHCC_COPY_OUTPUTS_H
#include <stdint.h>

#include "msgpack.h"

/* Writes `to` with the `size` bytes of `from` (an object of the agent's store) as a compiler
 * would have written it. 0 on success; -1 with errno set, nothing left half-written at `to`. */
int copy_output(const char *from, const char *to, int64_t size, int executable);

/* A cached result's "copy": [[object in the agent's store, output path, size, executable], ...],
 * each written with copy_output. 0 when all were; -1 (errno set) when one could not be, and
 * the caller then compiles. */
int copy_outputs(mp_reader r);

#endif
