/* Functions common to the queues the library creates. */
#include "internal.h"

#include <string.h>

void wh_queue_free(wh_queue *q)
{
    if (q && q->destroy) q->destroy(q->user);
}

int wh_queue_info_get(wh_queue *q, wh_queue_info *out)
{
    if (!q || !out || out->struct_size < sizeof(size_t)) return WH_E_INVAL;
    wh_queue_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = out->struct_size < sizeof info ? out->struct_size : sizeof info;
    int rc = wh__queue_memory_info(q, &info);
    if (rc == WH_E_INVAL) rc = wh__queue_sqlite_info(q, &info);
    if (rc == WH_E_INVAL) rc = wh__queue_redis_info(q, &info);
    if (rc == WH_E_INVAL) return rc;
    memcpy(out, &info, info.struct_size);
    return rc;
}
