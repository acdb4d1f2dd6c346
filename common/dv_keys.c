// dv_keys — CURVE key files and the broker's authorized-keys folder (see
// dv_keys.h).
//
// The format is czmq's zcert layout (metadata + curve sections, ZPL), read
// and written with czmq's zconfig, the ZPL code zcert itself uses. We do not
// call zcert_load/zcert_save_secret because of how they touch the disk:
//   - zcert_load(F) first tries to load "F_secret" and only then F, so
//     loading alice.pub from the authorized-keys folder would silently take
//     a stray alice.pub_secret instead (another key pair); it also cuts
//     names at 255 bytes and returns NULL without a reason, and turns a
//     malformed secret-key into an all-zero one.
//   - zcert_save_secret changes the process umask around an fopen("w"): not
//     thread-safe, and it overwrites an existing file.
// So we read the file ourselves (open + fstat: the mode we judge is the
// mode of the file we read), parse the text with zconfig_str_load, and
// write files through mkstemp (created 0600) + link(2), which refuses an
// existing name atomically and publishes only whole files.
//
// Secrets are wiped (volatile stores) from our buffers and from the zconfig
// tree before they are freed.
#include "dv_keys.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <czmq.h>
#include <zmq.h>

#include "dv_file.h"
#include "dv_mem.h"
#include "dv_proto.h"
#include "dv_sha256.h"

// A key file is well under 1 KiB; anything this large is not one.
#define KEY_FILE_MAX 65536
// Longest queue name: the protocol's limit for names on the wire.
#define QUEUE_NAME_MAX DV_MAX_WIRE_NAME
#define Z85_KEY_CHARS  40 // a 32-byte key in Z85

// One key of a keyring, with the file it came from.
typedef struct {
    dv_key_t key; // loaded from the file
    char *file;   // the file's name in the folder (owned), for messages
} ring_entry_t;

struct dv_keyring {
    ring_entry_t *entries;      // n of them, sorted by public key (bsearch)
    const ring_entry_t **by_id; // the same n entries, sorted by id
    size_t n;                   // number of keys
};

static const char *const role_names[] = {"producer", "consumer", "worker",
                                         "admin"}; // bit i = 1 << i
#define N_ROLES   (sizeof role_names / sizeof role_names[0])
#define ALL_ROLES ((1u << N_ROLES) - 1)

// Overwrite n bytes at p with zeros in a way the compiler may not drop
// (memset before free is a dead store it is allowed to remove).
static void
wipe(void *p, size_t n)
{
    volatile unsigned char *v = p;
    while (n--) {
        *v++ = 0;
    }
}

static bool
name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

// s[0..len) is 1..max characters of [A-Za-z0-9._-].
static bool
valid_name(const char *s, size_t len, size_t max)
{
    if (len == 0 || len > max) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (!name_char(s[i])) {
            return false;
        }
    }
    return true;
}

static int
bad_id(dv_error_t *err, const char *id, const char *from)
{
    return dv_errorf(err, DV_EINVAL,
                     "key id '%.80s'%s: use 1 to %d of A-Z a-z 0-9 . _ -", id,
                     from, DV_KEY_ID_MAX);
}

static bool
is_space(char c)
{
    return c == ' ' || c == '\t';
}

// The next comma-separated item of *p, without surrounding blanks, as
// [*start, *start + *len); advances *p past it and its comma. Returns false
// when the list is used up.
static bool
next_item(const char **p, const char **start, size_t *len)
{
    if (!*p) {
        return false;
    }
    const char *s = *p;
    const char *comma = strchr(s, ',');
    const char *end = comma ? comma : s + strlen(s);
    *p = comma ? comma + 1 : NULL;
    while (s < end && is_space(*s)) {
        s++;
    }
    while (end > s && is_space(end[-1])) {
        end--;
    }
    *start = s;
    *len = (size_t)(end - s);
    return true;
}

// Only blanks (or nothing) in s.
static bool
blank(const char *s)
{
    while (is_space(*s)) {
        s++;
    }
    return *s == '\0';
}

// Parse a queue list into k->all_queues / k->queues. Returns 0 or DV_EINVAL
// (k unchanged then).
static int
parse_queues(const char *csv, dv_key_t *k, dv_error_t *err)
{
    const char *p = csv, *s;
    size_t len, n = 0;
    bool star = false;
    if (blank(csv)) {
        return dv_errorf(err, DV_EINVAL,
                         "empty queue list: name queues, or '*' for all");
    }
    while (next_item(&p, &s, &len)) {
        if (len == 1 && *s == '*') {
            star = true;
        } else if (!valid_name(s, len, QUEUE_NAME_MAX)) {
            return dv_errorf(err, DV_EINVAL,
                             "queue '%.*s': use 1 to %d of A-Z a-z 0-9 . _ -, "
                             "or '*' alone for every queue",
                             (int)(len < 80 ? len : 80), s, QUEUE_NAME_MAX);
        }
        n++;
    }
    if (star && n > 1) {
        return dv_errorf(err, DV_EINVAL,
                         "queues '%.80s': '*' (every queue) stands alone", csv);
    }
    if (star) {
        k->all_queues = true;
        return 0;
    }
    k->all_queues = false;
    k->queues = dv_calloc(n, sizeof *k->queues);
    k->n_queues = 0;
    p = csv;
    while (next_item(&p, &s, &len)) {
        char *q = dv_malloc(len + 1);
        memcpy(q, s, len);
        q[len] = '\0';
        k->queues[k->n_queues++] = q;
    }
    return 0;
}

// The queue list of k as "a,b" or "*" into a new string (caller frees).
static char *
format_queues(const dv_key_t *k)
{
    if (k->all_queues) {
        return dv_strdup("*");
    }
    size_t size = 1;
    for (size_t i = 0; i < k->n_queues; i++) {
        size += strlen(k->queues[i]) + 1;
    }
    char *out = dv_malloc(size), *w = out;
    for (size_t i = 0; i < k->n_queues; i++) {
        size_t len = strlen(k->queues[i]);
        if (i > 0) {
            *w++ = ',';
        }
        memcpy(w, k->queues[i], len);
        w += len;
    }
    *w = '\0';
    return out;
}

static bool
ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static const char *
base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

// Decode a 40-character Z85 key. False when text is not one.
static bool
decode_key(const char *text, uint8_t out[32])
{
    return text && strlen(text) == Z85_KEY_CHARS &&
           zmq_z85_decode(out, text) != NULL;
}

static bool
all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i]) {
            return false;
        }
    }
    return true;
}

// Write data to fd, set mode, fsync, close. Returns 0 or an errno value.
static int
fill_and_close(int fd, const char *data, mode_t mode)
{
    int e = dv_file_write_all(fd, data, strlen(data));
    // fchmod: the mode is exact whatever the umask (0644 stays readable;
    // 0600 only confirms what the file was created with).
    if (e == 0 && fchmod(fd, mode) != 0) {
        e = errno;
    }
    if (e == 0 && fsync(fd) != 0) {
        e = errno;
    }
    if (close(fd) != 0 && e == 0) {
        e = errno;
    }
    return e;
}

// Create path holding data with mode; never replaces an existing file and
// never shows a partial one: the data goes to a temporary file made by
// mkstemp (mode 0600 from its first instant), which link(2) then publishes
// under path, failing with EEXIST if the name is taken. On file systems
// without hard links, O_CREAT|O_EXCL straight at path (created with mode,
// so a secret is 0600 from the start). Returns 0 or DV_E* naming path.
static int
create_file(const char *path, const char *data, mode_t mode, dv_error_t *err)
{
    size_t n = strlen(path) + sizeof ".tmp.XXXXXX";
    char *tmp = dv_malloc(n);
    snprintf(tmp, n, "%s.tmp.XXXXXX", path);
    int rc = 0;
    int fd = mkstemp(tmp);
    if (fd < 0) {
        rc = dv_file_error(err, path, errno);
        goto done;
    }
    int e = fill_and_close(fd, data, mode);
    if (e == 0 && link(tmp, path) != 0) {
        e = errno;
    }
    unlink(tmp);
    if (e == EPERM || e == ENOTSUP || e == EOPNOTSUPP) { // no hard links
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
        if (fd < 0) {
            e = errno;
        } else {
            e = fill_and_close(fd, data, mode);
            if (e != 0) {
                unlink(path);
            }
        }
    }
    if (e == EEXIST) {
        rc = dv_errorf(err, DV_EINVAL, "%s exists, not overwritten", path);
    } else if (e != 0) {
        rc = dv_file_error(err, path, e);
    }
done:
    free(tmp);
    return rc;
}

// Fails with DV_EINVAL when path exists (even as a dangling link).
static int
check_absent(const char *path, dv_error_t *err)
{
    struct stat st;
    if (lstat(path, &st) == 0) {
        return dv_errorf(err, DV_EINVAL, "%s exists, not overwritten", path);
    }
    if (errno != ENOENT) {
        return dv_file_error(err, path, errno);
    }
    return 0;
}

// Wipe the values of every secret-key item in root's curve section.
static void
wipe_config_secrets(zconfig_t *root)
{
    zconfig_t *curve = zconfig_locate(root, "curve");
    for (zconfig_t *item = curve ? zconfig_child(curve) : NULL; item;
         item = zconfig_next(item)) {
        const char *name = zconfig_name(item);
        char *value = zconfig_value(item);
        if (name && value && strcmp(name, "secret-key") == 0) {
            wipe(value, strlen(value));
        }
    }
}

// The Ed25519 pair a CURVE secret yields (dv_key_sign).
static void
sign_pair(const uint8_t secret[32], uint8_t pk[32], uint8_t sk[64])
{
    static const char domain[] = "drover-sign-v1";
    uint8_t seed[DV_SHA256_BYTES];
    dv_sha256_t ctx;
    dv_sha256_init(&ctx);
    dv_sha256_update(&ctx, domain, sizeof domain - 1);
    dv_sha256_update(&ctx, secret, 32);
    dv_sha256_final(&ctx, seed);
    if (sodium_init() < 0) {
        dv_assert_fail("libsodium cannot start", __FILE__, __LINE__);
    }
    crypto_sign_seed_keypair(pk, sk, seed);
    wipe(seed, sizeof seed);
}

int
dv_key_sign(const dv_key_t *k,
            const void *msg,
            size_t len,
            uint8_t sig[64],
            dv_error_t *err)
{
    if (!k->has_secret) {
        return dv_errorf(err, DV_EINVAL,
                         "key '%s' holds no secret: signing takes its .key "
                         "file",
                         k->id);
    }
    uint8_t pk[32], sk[64];
    sign_pair(k->secret_key, pk, sk);
    crypto_sign_detached(sig, NULL, msg, len, sk);
    wipe(sk, sizeof sk);
    return 0;
}

bool
dv_key_verify(const dv_key_t *k,
              const void *msg,
              size_t len,
              const uint8_t sig[64])
{
    if (!k->has_sign_key || sodium_init() < 0) {
        return false;
    }
    return crypto_sign_verify_detached(sig, msg, len, k->sign_key) == 0;
}

// The ZPL text of a key file (secret NULL: the public file), in zcert's
// layout. Caller frees (wiping a secret file's text first).
static char *
key_text(const char *id,
         unsigned roles,
         const char *queues,
         const char *sign_z85,
         const char *public_z85,
         const char *secret_z85)
{
    zconfig_t *root = zconfig_new("root", NULL);
    if (secret_z85) {
        zconfig_set_comment(root, "   Drover CURVE **secret** key (czmq zcert "
                                  "format)");
        zconfig_set_comment(root, "   Keep it private (mode 0600): only its "
                                  "owner may read it.");
    } else {
        zconfig_set_comment(root, "   Drover CURVE public key (czmq zcert "
                                  "format)");
        zconfig_set_comment(root, "   For the broker's --authorized-keys "
                                  "folder.");
    }
    zconfig_put(root, "/metadata/name", id);
    if (roles) {
        char buf[DV_ROLES_TEXT_MAX];
        zconfig_put(root, "/metadata/roles",
                    dv_roles_format(roles, buf, sizeof buf));
    }
    zconfig_put(root, "/metadata/queues", queues);
    zconfig_put(root, "/metadata/sign-key", sign_z85);
    zconfig_put(root, "/curve/public-key", public_z85);
    if (secret_z85) {
        zconfig_put(root, "/curve/secret-key", secret_z85);
    }
    char *text = zconfig_str_save(root);
    wipe_config_secrets(root);
    zconfig_destroy(&root);
    if (!text) { // strdup in zconfig_str_save
        dv_assert_fail("out of memory", __FILE__, __LINE__);
    }
    return text;
}

int
dv_key_generate(const char *stem,
                const char *id,
                unsigned roles,
                const char *queues_csv,
                dv_error_t *err)
{
    dv_assert(stem);
    if (!*stem || ends_with(stem, "/")) {
        return dv_errorf(err, DV_EINVAL,
                         "key file stem '%s' names no file (want e.g. "
                         "keys/alice for keys/alice.key + keys/alice.pub)",
                         stem);
    }
    if (!id) {
        id = base_name(stem);
        if (!valid_name(id, strlen(id), DV_KEY_ID_MAX)) {
            return bad_id(err, id, " (from the file name)");
        }
    } else if (!valid_name(id, strlen(id), DV_KEY_ID_MAX)) {
        return bad_id(err, id, "");
    }
    if (roles & ~ALL_ROLES) {
        return dv_errorf(err, DV_EINVAL, "roles 0x%x: unknown role bits",
                         roles);
    }
    dv_key_t q = {0};
    int rc = parse_queues(queues_csv ? queues_csv : "*", &q, err);
    if (rc != 0) {
        return rc;
    }
    char *queues = format_queues(&q); // normalized: no blanks
    dv_key_clear(&q);

    size_t n = strlen(stem) + sizeof ".key";
    char *key_path = dv_malloc(n), *pub_path = dv_malloc(n);
    snprintf(key_path, n, "%s.key", stem);
    snprintf(pub_path, n, "%s.pub", stem);
    char public_z85[41], secret_z85[41];
    char *secret_text = NULL, *public_text = NULL;
    rc = check_absent(key_path, err);
    if (rc == 0) {
        rc = check_absent(pub_path, err);
    }
    if (rc != 0) {
        goto done;
    }
    if (zmq_curve_keypair(public_z85, secret_z85) != 0) {
        rc = dv_errorf(err, DV_EIO, "cannot make a CURVE key pair: %s",
                       zmq_strerror(errno));
        goto done;
    }
    uint8_t secret[32], sign_pk[32], sign_sk[64];
    char sign_z85[41];
    zmq_z85_decode(secret, secret_z85);
    sign_pair(secret, sign_pk, sign_sk);
    zmq_z85_encode(sign_z85, sign_pk, 32);
    wipe(secret, sizeof secret);
    wipe(sign_sk, sizeof sign_sk);
    secret_text = key_text(id, roles, queues, sign_z85, public_z85, secret_z85);
    public_text = key_text(id, roles, queues, sign_z85, public_z85, NULL);
    rc = create_file(key_path, secret_text, 0600, err);
    if (rc != 0) {
        goto done;
    }
    rc = create_file(pub_path, public_text, 0644, err);
    if (rc != 0) {
        unlink(key_path); // all or nothing: no secret without its .pub
    }
done:
    if (secret_text) {
        wipe(secret_text, strlen(secret_text));
    }
    wipe(secret_z85, sizeof secret_z85);
    free(secret_text);
    free(public_text);
    free(key_path);
    free(pub_path);
    free(queues);
    return rc;
}

// Read the key file at path into a new NUL-terminated string (caller frees,
// wiping it) and its fstat into *st. Returns 0 or DV_E* naming path.
static int
read_key_file(const char *path,
              char **text_out,
              struct stat *st,
              dv_error_t *err)
{
    // O_NONBLOCK: a FIFO planted under a key's name must not hang us; it
    // changes nothing for regular files.
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        return dv_file_error(err, path, errno);
    }
    int rc = 0;
    char *buf = NULL;
    if (fstat(fd, st) != 0) {
        rc = dv_file_error(err, path, errno);
        goto done;
    }
    if (!S_ISREG(st->st_mode)) {
        rc = dv_errorf(err, DV_EFORMAT, "%s: not a regular file", path);
        goto done;
    }
    if (st->st_size > KEY_FILE_MAX) {
        rc = dv_errorf(err, DV_EFORMAT,
                       "%s: %lld bytes, too large for a key file (at most %d)",
                       path, (long long)st->st_size, KEY_FILE_MAX);
        goto done;
    }
    size_t cap = (size_t)st->st_size, len = 0;
    buf = dv_malloc(cap + 1);
    // Shrunk since fstat: take what is there.
    int e = dv_file_read_all(fd, buf, cap, &len);
    if (e) {
        rc = dv_file_error(err, path, e);
        goto done;
    }
    buf[len] = '\0';
    if (memchr(buf, '\0', len)) {
        rc =
            dv_errorf(err, DV_EFORMAT, "%s: binary data, not a key file", path);
        goto done;
    }
    *text_out = buf;
    buf = NULL;
done:
    if (buf) {
        wipe(buf, (size_t)st->st_size);
        free(buf);
    }
    close(fd);
    return rc;
}

// A secret file whose mode lets group or others in is refused whatever else
// is right or wrong with it (ssh refuses such keys the same way): they
// could read it, or replace it. True, with err set, for such a file.
static bool
open_to_others(const char *path, const struct stat *st, dv_error_t *err)
{
    if ((st->st_mode & (S_IRWXG | S_IRWXO)) == 0) {
        return false;
    }
    dv_errorf(err, DV_EACCES,
              "%s: secret key file has mode %04o, open to group or others; "
              "run `chmod 600 %s`",
              path, (unsigned)(st->st_mode & 07777), path);
    return true;
}

// The curve section of the parsed file (root) at path, st its fstat: the
// public key, and the secret key when there is one, which must be private
// to the owner and belong to the public key. A .key file must hold it.
static int
key_curve(dv_key_t *k,
          zconfig_t *root,
          const char *path,
          const struct stat *st,
          dv_error_t *err)
{
    const char *public_txt = zconfig_get(root, "/curve/public-key", NULL);
    zconfig_t *secret_item = zconfig_locate(root, "/curve/secret-key");
    const char *secret_txt = secret_item ? zconfig_value(secret_item) : NULL;

    if (secret_item && open_to_others(path, st, err)) {
        return DV_EACCES;
    }
    if (!public_txt) {
        return dv_errorf(err, DV_EFORMAT,
                         "%s: no curve/public-key: not a CURVE key file (czmq "
                         "zcert format)",
                         path);
    }
    if (!decode_key(public_txt, k->public_key)) {
        return dv_errorf(err, DV_EFORMAT,
                         "%s: curve/public-key is not a 40-character Z85 key",
                         path);
    }
    if (all_zero(k->public_key, sizeof k->public_key)) {
        return dv_errorf(err, DV_EFORMAT,
                         "%s: curve/public-key is all zeros (written without "
                         "CURVE support?)",
                         path);
    }
    memcpy(k->public_z85, public_txt, Z85_KEY_CHARS + 1);
    if (secret_item) {
        char derived[41];
        if (!decode_key(secret_txt, k->secret_key)) {
            return dv_errorf(
                err, DV_EFORMAT,
                "%s: curve/secret-key is not a 40-character Z85 key", path);
        }
        if (zmq_curve_public(derived, secret_txt) != 0) {
            return dv_errorf(err, DV_EIO, "%s: cannot check the secret key: %s",
                             path, zmq_strerror(errno));
        }
        if (strcmp(derived, public_txt) != 0) {
            return dv_errorf(err, DV_EFORMAT,
                             "%s: curve/secret-key does not belong to "
                             "curve/public-key",
                             path);
        }
        memcpy(k->secret_z85, secret_txt, Z85_KEY_CHARS + 1);
        k->has_secret = true;
    } else if (ends_with(path, ".key")) {
        return dv_errorf(err, DV_EFORMAT,
                         "%s: no curve/secret-key (a .key file holds the "
                         "secret; the public half goes in .pub)",
                         path);
    }
    return 0;
}

// k->id: metadata/name, else the file name without its extension; either
// must be a valid key id.
static int
key_id(dv_key_t *k, zconfig_t *root, const char *path, dv_error_t *err)
{
    dv_error_t why = {0};
    const char *name = zconfig_get(root, "/metadata/name", NULL);
    if (name) {
        if (!valid_name(name, strlen(name), DV_KEY_ID_MAX)) {
            bad_id(&why, name, "");
            return dv_errorf(err, DV_EFORMAT, "%s: metadata name: %s", path,
                             why.text);
        }
        memcpy(k->id, name, strlen(name) + 1);
    } else {
        const char *base = base_name(path);
        const char *dot = strrchr(base, '.');
        size_t len = dot && dot != base ? (size_t)(dot - base) : strlen(base);
        if (!valid_name(base, len, DV_KEY_ID_MAX)) {
            return dv_errorf(err, DV_EFORMAT,
                             "%s: no metadata name, and the file name is no "
                             "key id (1 to %d of A-Z a-z 0-9 . _ -)",
                             path, DV_KEY_ID_MAX);
        }
        memcpy(k->id, base, len);
        k->id[len] = '\0';
    }
    return 0;
}

// The rest of the metadata section: roles, queues (none named: all) and
// sign-key; a key with a secret derives its signing key from it instead.
static int
key_metadata(dv_key_t *k, zconfig_t *root, const char *path, dv_error_t *err)
{
    dv_error_t why = {0};
    const char *roles = zconfig_get(root, "/metadata/roles", NULL);
    if (roles && dv_roles_parse(roles, &k->roles, &why) != 0) {
        return dv_errorf(err, DV_EFORMAT, "%s: metadata roles: %s", path,
                         why.text);
    }
    const char *queues = zconfig_get(root, "/metadata/queues", NULL);
    if (!queues) {
        k->all_queues = true;
    } else if (parse_queues(queues, k, &why) != 0) {
        return dv_errorf(err, DV_EFORMAT, "%s: metadata queues: %s", path,
                         why.text);
    }
    const char *sign = zconfig_get(root, "/metadata/sign-key", NULL);
    if (sign) {
        if (!decode_key(sign, k->sign_key)) {
            return dv_errorf(err, DV_EFORMAT,
                             "%s: metadata sign-key is not a 40-character "
                             "Z85 key",
                             path);
        }
        k->has_sign_key = true;
    }
    if (k->has_secret) { // the pair always yields it: no need to trust text
        uint8_t sk[64];
        sign_pair(k->secret_key, k->sign_key, sk);
        wipe(sk, sizeof sk);
        k->has_sign_key = true;
    }
    return 0;
}

// Fill k from the parsed file (root) at path; st is its fstat. Returns 0 or
// DV_E* naming path.
static int
key_from_config(dv_key_t *k,
                zconfig_t *root,
                const char *path,
                const struct stat *st,
                dv_error_t *err)
{
    int rc = key_curve(k, root, path, st, err);
    if (rc || (rc = key_id(k, root, path, err)) != 0) {
        return rc;
    }
    return key_metadata(k, root, path, err);
}

int
dv_key_load(dv_key_t *out, const char *path, dv_error_t *err)
{
    dv_assert(out && path);
    memset(out, 0, sizeof *out);
    char *text = NULL;
    struct stat st;
    int rc = read_key_file(path, &text, &st, err);
    if (rc != 0) {
        return rc;
    }
    // A .key file is a secret by name: judged before its contents.
    if (ends_with(path, ".key") && open_to_others(path, &st, err)) {
        wipe(text, strlen(text));
        free(text);
        return DV_EACCES;
    }
    // zconfig's parser reports syntax errors with zclock_log (stdout); it
    // takes the whole text or nothing.
    zconfig_t *root = zconfig_str_load(text);
    wipe(text, strlen(text));
    free(text);
    if (!root) {
        return dv_errorf(err, DV_EFORMAT,
                         "%s: not a key file: bad ZPL syntax (czmq zcert "
                         "format expected)",
                         path);
    }
    rc = key_from_config(out, root, path, &st, err);
    wipe_config_secrets(root);
    zconfig_destroy(&root);
    if (rc != 0) {
        dv_key_clear(out);
    }
    return rc;
}

void
dv_key_clear(dv_key_t *k)
{
    if (!k) {
        return;
    }
    for (size_t i = 0; i < k->n_queues; i++) {
        free(k->queues[i]);
    }
    free(k->queues);
    wipe(k, sizeof *k);
}

int
dv_roles_parse(const char *csv, unsigned *roles, dv_error_t *err)
{
    dv_assert(csv && roles);
    unsigned bits = 0;
    if (blank(csv)) {
        *roles = 0;
        return 0;
    }
    const char *p = csv, *s;
    size_t len;
    while (next_item(&p, &s, &len)) {
        size_t r = 0;
        while (r < N_ROLES && !(strlen(role_names[r]) == len &&
                                strncmp(role_names[r], s, len) == 0)) {
            r++;
        }
        if (len == 0) {
            return dv_errorf(err, DV_EINVAL, "empty role in '%.80s'", csv);
        }
        if (r == N_ROLES) {
            return dv_errorf(err, DV_EINVAL,
                             "unknown role '%.*s' (roles: producer, consumer, "
                             "worker, admin)",
                             (int)(len < 80 ? len : 80), s);
        }
        bits |= 1u << r;
    }
    *roles = bits;
    return 0;
}

const char *
dv_roles_format(unsigned roles, char *buf, size_t size)
{
    dv_assert(buf || size == 0);
    if (size == 0) {
        return buf;
    }
    buf[0] = '\0';
    if ((roles & ALL_ROLES) == 0) {
        snprintf(buf, size, "none");
        return buf;
    }
    size_t used = 0;
    for (size_t r = 0; r < N_ROLES; r++) {
        if (roles & (1u << r)) {
            int n = snprintf(buf + used, size - used, "%s%s", used ? "," : "",
                             role_names[r]);
            if (n < 0 || (size_t)n >= size - used) {
                buf[used] = '\0'; // whole names only
                break;
            }
            used += (size_t)n;
        }
    }
    return buf;
}

bool
dv_key_allows_queue(const dv_key_t *k, const char *queue)
{
    dv_assert(k);
    if (k->roles & DV_ROLE_ADMIN || k->all_queues) {
        return true;
    }
    if (!queue) {
        return false;
    }
    for (size_t i = 0; i < k->n_queues; i++) {
        if (strcmp(k->queues[i], queue) == 0) {
            return true;
        }
    }
    return false;
}

// Sort orders. Ties go by file name, so a duplicate is reported as "a.pub
// and b.pub" the same way every time.
static int
cmp_entry_key(const void *a, const void *b)
{
    const ring_entry_t *x = a, *y = b;
    int c = memcmp(x->key.public_key, y->key.public_key, 32);
    return c ? c : strcmp(x->file, y->file);
}

static int
cmp_entry_id(const void *a, const void *b)
{
    const ring_entry_t *const *x = a, *const *y = b;
    int c = strcmp((*x)->key.id, (*y)->key.id);
    return c ? c : strcmp((*x)->file, (*y)->file);
}

static int
cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
ring_free(dv_keyring_t *self)
{
    for (size_t i = 0; i < self->n; i++) {
        dv_key_clear(&self->entries[i].key);
        free(self->entries[i].file);
    }
    free(self->entries);
    free(self->by_id);
    free(self);
}

// The names in dir, sorted (so errors and loading order do not depend on
// readdir's order). Caller frees each and the array.
static int
list_dir(const char *dir, char ***names_out, size_t *n_out, dv_error_t *err)
{
    DIR *d = opendir(dir);
    if (!d) {
        return dv_file_error(err, dir, errno);
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    int rc = 0;
    for (;;) {
        errno = 0;
        e = readdir(d);
        if (!e) {
            if (errno != 0) {
                rc = dv_file_error(err, dir, errno);
            }
            break;
        }
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
            continue;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            names = dv_realloc(names, cap * sizeof *names);
        }
        names[n++] = dv_strdup(e->d_name);
    }
    closedir(d);
    if (rc != 0) {
        for (size_t i = 0; i < n; i++) {
            free(names[i]);
        }
        free(names);
        return rc;
    }
    if (n > 1) {
        qsort(names, n, sizeof *names, cmp_name);
    }
    *names_out = names;
    *n_out = n;
    return 0;
}

// Duplicate ids or public keys in self (entries sorted by key, by_id
// sorted): DV_EINVAL naming both files.
static int
check_unique(const dv_keyring_t *self, const char *dir, dv_error_t *err)
{
    for (size_t i = 1; i < self->n; i++) {
        const ring_entry_t *a = self->by_id[i - 1], *b = self->by_id[i];
        if (strcmp(a->key.id, b->key.id) == 0) {
            return dv_errorf(err, DV_EINVAL,
                             "%s: %s and %s both have key id '%s'", dir,
                             a->file, b->file, a->key.id);
        }
    }
    for (size_t i = 1; i < self->n; i++) {
        const ring_entry_t *a = &self->entries[i - 1], *b = &self->entries[i];
        if (memcmp(a->key.public_key, b->key.public_key, 32) == 0) {
            return dv_errorf(err, DV_EINVAL,
                             "%s: %s and %s hold the same public key %s", dir,
                             a->file, b->file, a->key.public_z85);
        }
    }
    return 0;
}

int
dv_keyring_load(dv_keyring_t **out, const char *dir, dv_error_t *err)
{
    dv_assert(out && dir);
    char **names = NULL;
    size_t n_names = 0;
    int rc = list_dir(dir, &names, &n_names, err);
    if (rc != 0) {
        return rc;
    }
    dv_keyring_t *self = dv_calloc(1, sizeof *self);
    self->entries = dv_calloc(n_names ? n_names : 1, sizeof *self->entries);
    size_t dir_len = strlen(dir);
    const char *sep = dir_len && dir[dir_len - 1] == '/' ? "" : "/";
    for (size_t i = 0; i < n_names && rc == 0; i++) {
        const char *name = names[i];
        size_t size = dir_len + strlen(name) + 2;
        char *path = dv_malloc(size);
        snprintf(path, size, "%s%s%s", dir, sep, name);
        // Secrets first, hidden or not: one found here has been exposed to
        // whoever reads this folder, and its owner should know.
        if (ends_with(name, ".key") || ends_with(name, "_secret")) {
            rc = dv_errorf(err, DV_EACCES,
                           "%s: a secret key in the authorized-keys folder; "
                           "move it out (the folder takes *.pub files only)",
                           path);
        } else if (name[0] != '.' && ends_with(name, ".pub")) {
            // Hidden files (editor locks such as .#alice.pub, Kubernetes'
            // ..data) are skipped.
            ring_entry_t *e = &self->entries[self->n];
            rc = dv_key_load(&e->key, path, err);
            if (rc == 0 && e->key.has_secret) {
                dv_key_clear(&e->key);
                rc = dv_errorf(err, DV_EACCES,
                               "%s: holds a secret-key; the authorized-keys "
                               "folder takes public keys only",
                               path);
            }
            if (rc == 0) {
                e->file = names[i];
                names[i] = NULL;
                self->n++;
            }
        }
        free(path);
    }
    for (size_t i = 0; i < n_names; i++) {
        free(names[i]);
    }
    free(names);
    if (rc == 0 && self->n > 0) {
        qsort(self->entries, self->n, sizeof *self->entries, cmp_entry_key);
        self->by_id = dv_calloc(self->n, sizeof *self->by_id);
        for (size_t i = 0; i < self->n; i++) {
            self->by_id[i] = &self->entries[i];
        }
        qsort(self->by_id, self->n, sizeof *self->by_id, cmp_entry_id);
        rc = check_unique(self, dir, err);
    }
    if (rc != 0) {
        ring_free(self);
        return rc;
    }
    *out = self;
    return 0;
}

void
dv_keyring_destroy(dv_keyring_t **self_p)
{
    if (self_p && *self_p) {
        ring_free(*self_p);
        *self_p = NULL;
    }
}

static int
cmp_find_key(const void *key, const void *elem)
{
    const ring_entry_t *e = elem;
    return memcmp(key, e->key.public_key, 32);
}

const dv_key_t *
dv_keyring_find(const dv_keyring_t *self, const uint8_t public_key[32])
{
    if (!self || self->n == 0 || !public_key) {
        return NULL;
    }
    const ring_entry_t *e = bsearch(public_key, self->entries, self->n,
                                    sizeof *self->entries, cmp_find_key);
    return e ? &e->key : NULL;
}

static int
cmp_find_id(const void *id, const void *elem)
{
    const ring_entry_t *const *e = elem;
    return strcmp(id, (*e)->key.id);
}

const dv_key_t *
dv_keyring_find_id(const dv_keyring_t *self, const char *id)
{
    if (!self || self->n == 0 || !id) {
        return NULL;
    }
    const ring_entry_t *const *e =
        bsearch(id, self->by_id, self->n, sizeof *self->by_id, cmp_find_id);
    return e ? &(*e)->key : NULL;
}

size_t
dv_keyring_size(const dv_keyring_t *self)
{
    return self ? self->n : 0;
}
