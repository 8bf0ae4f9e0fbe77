/* Functions common to every queue: the host API's wh_queue_free and
 * wh_queue_info_get, through the queue's own vtable (no queue type is
 * named here). */
#include "internal.h"

#include <string.h>

void wh_queue_free(wh_queue *q)
{
    if (q && q->destroy) q->destroy(q->user);
}

int wh_queue_info_get(wh_queue *q, wh_queue_info *out)
{
    if (!q || !out || out->struct_size < sizeof(size_t)) return WH_E_INVAL;
    if (q->version < 3 || !q->info) return WH_E_INVAL;
    wh_queue_info info;
    memset(&info, 0, sizeof info);
    size_t n = out->struct_size < sizeof info ? out->struct_size : sizeof info;
    info.struct_size = n;
    int rc = q->info(q->user, &info);
    if (rc != WH_OK && rc != WH_E_QUEUE) return rc;
    memcpy(out, &info, n);
    return rc;
}
