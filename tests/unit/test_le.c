// test_le — dv_le's little-endian puts and gets: each width against literal
// byte arrays (so a byte-order mistake cannot pass as a round trip), 0 and
// the maximum of each width, the n-byte forms, and that a put writes only
// its own bytes.
#include <stdint.h>
#include <string.h>

#include "dv_le.h"
#include "dv_test.h"

// Each row: a value, its width in bytes and its bytes as they must lie.
static const struct {
    uint64_t v;
    int n_bytes;
    uint8_t bytes[8];
} s_rows[] = {
    {0, 2, {0, 0}},
    {0x0102, 2, {0x02, 0x01}},
    {0xfffe, 2, {0xfe, 0xff}},
    {UINT16_MAX, 2, {0xff, 0xff}},
    {0, 4, {0, 0, 0, 0}},
    {0x01020304, 4, {0x04, 0x03, 0x02, 0x01}},
    {0x80000001, 4, {0x01, 0x00, 0x00, 0x80}},
    {UINT32_MAX, 4, {0xff, 0xff, 0xff, 0xff}},
    {0, 8, {0, 0, 0, 0, 0, 0, 0, 0}},
    {0x0102030405060708, 8, {0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01}},
    {0x8000000000000001, 8, {0x01, 0, 0, 0, 0, 0, 0, 0x80}},
    {UINT64_MAX, 8, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
};
#define N_ROWS (sizeof s_rows / sizeof s_rows[0])

// The fixed-width put of row r's value at p.
static void
put_fixed(uint8_t *p, uint64_t v, int n_bytes)
{
    switch (n_bytes) {
    case 2:
        dv_le_put16(p, (uint16_t)v);
        break;
    case 4:
        dv_le_put32(p, (uint32_t)v);
        break;
    default:
        dv_le_put64(p, v);
        break;
    }
}

static uint64_t
get_fixed(const uint8_t *p, int n_bytes)
{
    switch (n_bytes) {
    case 2:
        return dv_le_get16(p);
    case 4:
        return dv_le_get32(p);
    default:
        return dv_le_get64(p);
    }
}

static void
test_fixed_widths(void)
{
    for (size_t r = 0; r < N_ROWS; r++) {
        size_t n = (size_t)s_rows[r].n_bytes;
        // Guard bytes either side: a put writes its n bytes and no more.
        uint8_t buf[12];
        memset(buf, 0xa5, sizeof buf);
        put_fixed(buf + 2, s_rows[r].v, s_rows[r].n_bytes);
        DV_CHECK(memcmp(buf + 2, s_rows[r].bytes, n) == 0);
        DV_CHECK_EQ(buf[0], 0xa5);
        DV_CHECK_EQ(buf[1], 0xa5);
        DV_CHECK_EQ(buf[2 + n], 0xa5);
        DV_CHECK_EQ(get_fixed(s_rows[r].bytes, s_rows[r].n_bytes), s_rows[r].v);
    }
}

static void
test_n_bytes(void)
{
    for (size_t r = 0; r < N_ROWS; r++) {
        int n = s_rows[r].n_bytes;
        uint8_t buf[10];
        memset(buf, 0xa5, sizeof buf);
        uint8_t *end = dv_le_put(buf, s_rows[r].v, n);
        DV_CHECK(end == buf + n);
        DV_CHECK(memcmp(buf, s_rows[r].bytes, (size_t)n) == 0);
        DV_CHECK_EQ(buf[n], 0xa5);
        DV_CHECK_EQ(dv_le_get(s_rows[r].bytes, n), s_rows[r].v);
    }
    // Odd widths (a u8 tag, a 3-byte field): the low bytes, in order.
    uint8_t b[3];
    DV_CHECK(dv_le_put(b, 0xaabbccdd, 3) == b + 3);
    DV_CHECK_EQ(b[0], 0xdd);
    DV_CHECK_EQ(b[1], 0xcc);
    DV_CHECK_EQ(b[2], 0xbb);
    DV_CHECK_EQ(dv_le_get(b, 3), 0xbbccdd);
    DV_CHECK_EQ(dv_le_get(b, 1), 0xdd);
    DV_CHECK_EQ(dv_le_get(b, 0), 0);
    // Unaligned: a u64 at an odd offset reads back.
    uint8_t u[9] = {0};
    dv_le_put64(u + 1, 0x1122334455667788);
    DV_CHECK_EQ(u[1], 0x88);
    DV_CHECK_EQ(u[8], 0x11);
    DV_CHECK_EQ(dv_le_get64(u + 1), 0x1122334455667788);
}

static const dv_test_case_t cases[] = {
    {"put16/32/64 and get16/32/64 against literal bytes", test_fixed_widths},
    {"n-byte put and get, odd widths, unaligned", test_n_bytes},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return dv_test_main(argc, argv, cases);
}
