// dv_crc32 — CRC-32, slicing-by-8 (see dv_crc32.h).
#include "dv_crc32.h"

#include <pthread.h>

#include "dv_le.h"

static uint32_t s_tables[8][256];
static pthread_once_t s_once = PTHREAD_ONCE_INIT;

static void
tables_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) {
            c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
        }
        s_tables[0][i] = c;
    }
    // Table k: the CRC of a byte followed by k zero bytes.
    for (uint32_t i = 0; i < 256; i++) {
        for (int k = 1; k < 8; k++) {
            uint32_t prev = s_tables[k - 1][i];
            s_tables[k][i] = (prev >> 8) ^ s_tables[0][prev & 0xff];
        }
    }
}

uint32_t
dv_crc32_bytewise(const void *data, size_t n)
{
    pthread_once(&s_once, tables_init);
    const uint8_t *p = data;
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c = s_tables[0][(c ^ p[i]) & 0xff] ^ (c >> 8);
    }
    return c ^ 0xffffffffu;
}

uint32_t
dv_crc32(const void *data, size_t n)
{
    pthread_once(&s_once, tables_init);
    const uint8_t *p = data;
    uint32_t c = 0xffffffffu;
    for (; n >= 8; p += 8, n -= 8) {
        uint32_t lo = c ^ dv_le_get32(p), hi = dv_le_get32(p + 4);
        c = s_tables[7][lo & 0xff] ^ s_tables[6][(lo >> 8) & 0xff] ^
            s_tables[5][(lo >> 16) & 0xff] ^ s_tables[4][lo >> 24] ^
            s_tables[3][hi & 0xff] ^ s_tables[2][(hi >> 8) & 0xff] ^
            s_tables[1][(hi >> 16) & 0xff] ^ s_tables[0][hi >> 24];
    }
    for (; n > 0; p++, n--) {
        c = s_tables[0][(c ^ *p) & 0xff] ^ (c >> 8);
    }
    return c ^ 0xffffffffu;
}
