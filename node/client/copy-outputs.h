#ifndef MESHCC_COPY_OUTPUTS_H
#define MESHCC_COPY_OUTPUTS_H
#include <stdint.h>

/* Writes `to` with the `size` bytes of `from` (an object of the agent's store) as a compiler
 * would have written it. 0 on success; -1 with errno set, nothing left half-written at `to`. */
int copy_output(const char *from, const char *to, int64_t size, int executable);

#endif
