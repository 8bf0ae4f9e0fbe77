/* The engine's default parts.  This is the one file that names concrete
 * backends for the engine: the default transport (libcurl, when the library
 * is built with it) and the default queue (bounded, in memory).  The engine
 * itself only sees the vtables. */
#include "internal.h"

int wh__default_transport_new(wh_transport **out)
{
    return wh_transport_curl_new(NULL, out);
}

int wh__default_queue_new(size_t max_events, size_t max_bytes, wh_queue **out)
{
    return wh__queue_memory_new(max_events ? max_events : 1000000,
                                max_bytes ? max_bytes : ((size_t)1 << 30), out);
}
