/*
 * Lets Debian bookworm's simple-whip-client start (tests only, via LD_PRELOAD).
 *
 * whip-client (0.0~git20230131) links libsoup 2.4 for its HTTP; GStreamer's webrtcbin loads
 * libnice, which links gupnp-igd -> gupnp 1.6 -> libsoup 3. When libsoup 3 is loaded into a
 * process that has libsoup 2 symbols, its constructor aborts with "libsoup2 symbols detected.
 * Using libsoup2 and libsoup3 in the same process is not supported." It probes with
 * dlsym(dlopen(NULL), "soup_uri_new") through GModule. This shim answers that one probe
 * "not found" (with a dlerror, as GModule expects) and passes every other lookup on.
 * libsoup 3 is never used by the client (webrtcbin's ICE agent does no UPnP), so the two
 * copies do not meet at run time.
 *
 * Built by tests/browser/test_whip_client.py: cc -shared -fPIC -o soup_shim.so soup_shim.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stddef.h>
#include <string.h>

static void *(*real_dlsym)(void *, const char *);

void *dlsym(void *handle, const char *symbol) {
    if (real_dlsym == NULL) {
        real_dlsym = (void *(*)(void *, const char *))dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.34");
        if (real_dlsym == NULL)
            real_dlsym =
                (void *(*)(void *, const char *))dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.2.5");
    }
    if (symbol != NULL && strcmp(symbol, "soup_uri_new") == 0)
        return real_dlsym(handle, "soup_uri_new:hidden-by-the-test-shim");
    return real_dlsym(handle, symbol);
}
