/* The hostile receivers of tests/test_hostile.c, through the engine and
 * the lean transport. */
#define HOSTILE_KIND WH_TRANSPORT_LEAN
#include "test_hostile.c"
