/* Status strings, generated from the one WH_STATUS_MAP table. */
#include "internal.h"

const char *wh_strerror(int status)
{
    switch (status) {
#define XX(name, val, msg) case val: return msg;
        WH_STATUS_MAP(XX)
#undef XX
    default: return "unknown status";
    }
}

const char *wh_status_name(int status)
{
    switch (status) {
#define XX(name, val, msg) case val: return "WH_" #name;
        WH_STATUS_MAP(XX)
#undef XX
    default: return "WH_E_UNKNOWN";
    }
}

const char *wh_version(int least)
{
    return least > WH_VERSION_NUM ? NULL : WH_VERSION_STRING;
}
