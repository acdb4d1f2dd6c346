// test_page — a list reply's page keeps items while they fit its budget,
// takes back the first that does not (and every later one), and puts the
// kept ones into a reply as one well-formed array, in order.
#include <stdio.h>
#include <string.h>

#include <msgpack.h>

#include "dv_page.h"
#include "dv_proto.h"
#include "dv_test.h"

// An item of about size bytes: a map {i: n, s: "xxx..."}.
static void
write_item(dv_msgw_t *w, size_t n, size_t size)
{
    char s[600];
    size_t len = size < sizeof s ? size : sizeof s - 1;
    memset(s, 'x', len);
    s[len] = '\0';
    dv_msgw_v_map(w, 2);
    dv_msgw_v_str(w, "i");
    dv_msgw_v_uint(w, n);
    dv_msgw_v_str(w, "s");
    dv_msgw_v_str(w, s);
}

static void
test_fills_and_stops(void)
{
    const struct {
        size_t budget;  // the page's
        size_t item;    // bytes of each item's string
        size_t offered; // items written
        size_t want;    // kept
    } cases[] = {
        {1000, 90, 50, 10}, // 98 or 99 bytes each: 10 fit in 1,000
        {1000, 90, 5, 5},   // all fit
        {50, 90, 3, 0},     // not even one
        {0, 0, 0, 0},       // nothing offered
        {61440, 500, 1000, 120},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        dv_page_t *p = dv_page_new(cases[c].budget);
        size_t kept = 0, refused_then_kept = 0;
        for (size_t i = 0; i < cases[c].offered; i++) {
            write_item(dv_page_item(p), i, cases[c].item);
            bool k = dv_page_keep(p);
            refused_then_kept += k && dv_page_full(p);
            kept += k;
        }
        dv_msgw_t *w = dv_msgw_new(DV_MSG_MODELS, 7);
        dv_page_put(p, w, "items");
        dv_msgw_uint(w, "after", 42); // fields after the array still parse
        size_t len = 0;
        const uint8_t *h = dv_msgw_bytes(w, &len);
        dv_msg_t *m = NULL;
        dv_error_t err = {0};
        int rc = dv_msg_decode(&m, h, len, NULL, 0, NULL, &err);
        const msgpack_object *a = rc == 0 ? dv_msg_get(m, "items") : NULL;
        size_t n = a && a->type == MSGPACK_OBJECT_ARRAY ? a->via.array.size : 0;
        size_t in_order = 0, body = len;
        for (size_t i = 0; i < n; i++) {
            const msgpack_object *e = &a->via.array.ptr[i];
            in_order += e->type == MSGPACK_OBJECT_MAP &&
                        e->via.map.ptr[0].val.via.u64 == i;
        }
        uint64_t after = 0;
        int arc = rc == 0 ? dv_msg_uint(m, "after", &after, &err) : rc;
        printf("  budget %zu, items of ~%zu bytes: %zu of %zu kept, %zu "
               "bytes in all\n",
               cases[c].budget, cases[c].item + 10, kept, cases[c].offered,
               body);
        DV_CHECK_EQ(rc, 0);
        DV_CHECK_EQ(kept, cases[c].want);
        DV_CHECK_EQ(dv_page_count(p), cases[c].want);
        DV_CHECK_EQ(n, cases[c].want);
        DV_CHECK_EQ(in_order, n);
        DV_CHECK_EQ(refused_then_kept, 0);
        DV_CHECK_EQ(dv_page_full(p), cases[c].want < cases[c].offered);
        DV_CHECK_EQ(arc, 0);
        DV_CHECK_EQ(after, 42);
        dv_msg_destroy(&m);
        dv_msgw_destroy(&w);
        dv_page_destroy(&p);
    }
}

static const dv_test_case_t cases[] = {
    {"fills to its budget and stops", test_fills_and_stops},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return dv_test_main(argc, argv, cases);
}
