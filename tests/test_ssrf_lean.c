/* The SSRF guard cases of tests/test_ssrf.c with the engine on the lean
 * transport (the cases that build a libcurl transport themselves stay on
 * it). */
#define SSRF_KIND WH_TRANSPORT_LEAN
#include "test_ssrf.c"
