/* clock - the service's monotonic milliseconds, for deadlines and waits (never
   for stored times: those are store_clock_ms, wall-clock, shared by machines). */
#ifndef GS_SUPPORT_CLOCK_H
#define GS_SUPPORT_CLOCK_H

#include <stdint.h>

int64_t mono_ms(void);

#endif
