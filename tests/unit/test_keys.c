// test_keys — CURVE key files and the authorized-keys folder: generate then
// load both files (same key, secret only in .key, metadata round trip,
// modes), no overwriting, bad ids/roles/queues, a secret open to others,
// malformed files with the exact DV_E*, files czmq's zcert reads and
// writes, and keyrings (lookups, queue rights, duplicates, secrets in the
// folder, empty and missing folders).
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <czmq.h>

#include "dv_keys.h"
#include "dv_test.h"

// dir/name into a static buffer; valid until the next call (so never two in
// one expression).
static const char *
path_in(const char *dir, const char *name)
{
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s/%s", dir, name);
    return buf;
}

static int
write_text(const char *dir, const char *name, const char *text)
{
    return dv_test_write_file(path_in(dir, name), text, strlen(text));
}

// A whole file as a string (caller frees); NULL when unreadable.
static char *
read_text(const char *path)
{
    size_t len;
    return (char *)dv_test_read_file(path, &len);
}

static unsigned
file_mode(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (unsigned)(st.st_mode & 07777) : 0xffffu;
}

static bool
exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

// Entries in dir other than . and ..
static int
count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        return -1;
    }
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    }
    closedir(d);
    return n;
}

// Generate dir/stem with the given metadata; 0 or the error.
static int
gen(const char *dir,
    const char *stem,
    const char *id,
    unsigned roles,
    const char *queues,
    dv_error_t *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, stem);
    return dv_key_generate(path, id, roles, queues, err);
}

static void
test_generate_and_load(void)
{
    char *dir = dv_test_tmpdir();
    char key_path[4096], pub_path[4096];
    snprintf(key_path, sizeof key_path, "%s/alice.key", dir);
    snprintf(pub_path, sizeof pub_path, "%s/alice.pub", dir);
    dv_error_t err = {0};
    int rc = gen(dir, "alice", "alice-prod",
                 DV_ROLE_PRODUCER | DV_ROLE_CONSUMER, "train, infer", &err);
    dv_key_t sec, pub;
    int rc_sec = dv_key_load(&sec, key_path, &err);
    int rc_pub = dv_key_load(&pub, pub_path, &err);
    unsigned key_mode = file_mode(key_path), pub_mode = file_mode(pub_path);
    int n_files = count_entries(dir);
    char *pub_text = read_text(pub_path);
    char *key_text = read_text(key_path);
    bool pub_has_secret = pub_text && strstr(pub_text, "secret-key") != NULL;
    bool key_has_secret = key_text && strstr(key_text, "secret-key") != NULL;
    free(pub_text);
    free(key_text);
    dv_test_rmdir(dir);
    free(dir);

    DV_CHECK_RC(rc, 0, &err);
    DV_CHECK_RC(rc_sec, 0, &err);
    DV_CHECK_RC(rc_pub, 0, &err);
    DV_CHECK_EQ(key_mode, 0600);
    DV_CHECK_EQ(pub_mode, 0644);
    DV_CHECK_EQ(n_files, 2); // no temporary files left behind
    DV_CHECK(key_has_secret);
    DV_CHECK(!pub_has_secret);

    DV_CHECK(memcmp(sec.public_key, pub.public_key, 32) == 0);
    DV_CHECK_STR_EQ(sec.public_z85, pub.public_z85);
    DV_CHECK_EQ(strlen(pub.public_z85), 40);
    DV_CHECK(sec.has_secret);
    DV_CHECK_EQ(strlen(sec.secret_z85), 40);
    DV_CHECK(!pub.has_secret);
    DV_CHECK_STR_EQ(pub.secret_z85, "");
    uint8_t zero[32] = {0};
    DV_CHECK(memcmp(pub.secret_key, zero, 32) == 0);
    DV_CHECK(memcmp(sec.secret_key, zero, 32) != 0);
    for (int i = 0; i < 2; i++) {
        const dv_key_t *k = i ? &pub : &sec;
        DV_CHECK_STR_EQ(k->id, "alice-prod");
        DV_CHECK_EQ(k->roles, DV_ROLE_PRODUCER | DV_ROLE_CONSUMER);
        DV_CHECK(!k->all_queues);
        DV_CHECK_EQ(k->n_queues, 2);
        DV_CHECK_STR_EQ(k->queues[0], "train");
        DV_CHECK_STR_EQ(k->queues[1], "infer");
    }
    dv_key_clear(&sec);
    dv_key_clear(&pub);
    DV_CHECK(sec.queues == NULL && sec.n_queues == 0 && !sec.has_secret);
    DV_CHECK(memcmp(sec.secret_key, zero, 32) == 0);
    dv_key_clear(&sec); // idempotent
    dv_key_clear(NULL);
}

static void
test_generate_defaults(void)
{
    // No id: the stem's basename. No roles: none. No queues: every queue.
    // The umask does not make the public file private.
    char *dir = dv_test_tmpdir();
    dv_error_t err = {0};
    mode_t old = umask(077);
    int rc = gen(dir, "worker-7", NULL, 0, NULL, &err);
    umask(old);
    dv_key_t k;
    int rc_load = dv_key_load(&k, path_in(dir, "worker-7.pub"), &err);
    unsigned pub_mode = file_mode(path_in(dir, "worker-7.pub"));
    unsigned key_mode = file_mode(path_in(dir, "worker-7.key"));
    dv_test_rmdir(dir);
    free(dir);
    DV_CHECK_RC(rc, 0, &err);
    DV_CHECK_RC(rc_load, 0, &err);
    DV_CHECK_EQ(pub_mode, 0644);
    DV_CHECK_EQ(key_mode, 0600);
    DV_CHECK_STR_EQ(k.id, "worker-7");
    DV_CHECK_EQ(k.roles, 0);
    DV_CHECK(k.all_queues);
    DV_CHECK_EQ(k.n_queues, 0);
    DV_CHECK(k.queues == NULL);
    dv_key_clear(&k);
}

static void
test_no_overwrite(void)
{
    char *dir = dv_test_tmpdir();
    dv_error_t err = {0};
    int rc1 = gen(dir, "a", NULL, DV_ROLE_WORKER, NULL, &err);
    char *before = read_text(path_in(dir, "a.key"));
    dv_error_t err2 = {0};
    int rc2 = gen(dir, "a", NULL, DV_ROLE_ADMIN, NULL, &err2);
    char *after = read_text(path_in(dir, "a.key"));
    bool same = before && after && strcmp(before, after) == 0;
    free(before);
    free(after);
    // Only the .pub is in the way: nothing is written, not even the .key.
    write_text(dir, "b.pub", "taken\n");
    dv_error_t err3 = {0};
    int rc3 = gen(dir, "b", NULL, 0, NULL, &err3);
    bool b_key = exists(path_in(dir, "b.key"));
    int n_files = count_entries(dir);
    dv_test_rmdir(dir);
    free(dir);
    DV_CHECK_RC(rc1, 0, &err);
    DV_CHECK_RC(rc2, DV_EINVAL, &err2);
    DV_CHECK(strstr(err2.text, "a.key exists, not overwritten") != NULL);
    DV_CHECK(same);
    DV_CHECK_RC(rc3, DV_EINVAL, &err3);
    DV_CHECK(strstr(err3.text, "b.pub exists, not overwritten") != NULL);
    DV_CHECK(!b_key);
    DV_CHECK_EQ(n_files, 3); // a.key, a.pub, b.pub
}

static void
test_bad_arguments(void)
{
    char *dir = dv_test_tmpdir();
    dv_error_t err = {0};
    char long_id[DV_KEY_ID_MAX + 2];
    memset(long_id, 'x', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    static const struct {
        const char *stem, *id, *queues, *want; // want: in the reason
        unsigned roles;
    } rows[] = {
        {"k", "has space", NULL, "key id 'has space'", 0},
        {"k", "", NULL, "key id ''", 0},
        {"k", "a/b", NULL, "key id 'a/b'", 0},
        {"bad name", NULL, NULL, "(from the file name)", 0},
        {"k", NULL, "a,,b", "queue ''", 0},
        {"k", NULL, "a,", "queue ''", 0},
        {"k", NULL, "", "empty queue list", 0},
        {"k", NULL, "a b", "queue 'a b'", 0},
        {"k", NULL, "a,*", "stands alone", 0},
        {"k", NULL, "q!", "queue 'q!'", 0},
        {"k", NULL, NULL, "unknown role bits", 16},
    };
    int rcs[sizeof rows / sizeof rows[0]];
    char texts[sizeof rows / sizeof rows[0]][DV_ERROR_TEXT_MAX];
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        dv_error_clear(&err);
        rcs[i] = gen(dir, rows[i].stem, rows[i].id, rows[i].roles,
                     rows[i].queues, &err);
        memcpy(texts[i], err.text, sizeof err.text);
    }
    dv_error_t err_long = {0};
    int rc_long = gen(dir, "k", long_id, 0, NULL, &err_long);
    // The longest id is fine.
    long_id[DV_KEY_ID_MAX] = '\0';
    int rc_max = gen(dir, "max", long_id, 0, NULL, &err);
    dv_key_t k;
    int rc_load = dv_key_load(&k, path_in(dir, "max.pub"), &err);
    int n_files = count_entries(dir);
    dv_test_rmdir(dir);
    free(dir);
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        if (rcs[i] != DV_EINVAL || !strstr(texts[i], rows[i].want)) {
            DV_FAIL_("row %zu: rc %d, reason '%s', want DV_EINVAL and '%s'", i,
                     rcs[i], texts[i], rows[i].want);
            return;
        }
    }
    DV_CHECK_RC(rc_long, DV_EINVAL, &err_long);
    DV_CHECK_RC(rc_max, 0, &err);
    DV_CHECK_RC(rc_load, 0, &err);
    DV_CHECK_STR_EQ(k.id, long_id);
    dv_key_clear(&k);
    DV_CHECK_EQ(n_files, 2); // only max.key and max.pub
}

static void
test_secret_open_to_others(void)
{
    char *dir = dv_test_tmpdir();
    dv_error_t err = {0};
    int rc = gen(dir, "s", NULL, 0, NULL, &err);
    char key_path[4096];
    snprintf(key_path, sizeof key_path, "%s/s.key", dir);
    chmod(key_path, 0644);
    dv_error_t e644 = {0};
    dv_key_t k;
    int rc644 = dv_key_load(&k, key_path, &e644);
    chmod(key_path, 0620); // group may write: replaceable, refused too
    dv_error_t e620 = {0};
    int rc620 = dv_key_load(&k, key_path, &e620);
    // A .key is judged by its name before its contents.
    dv_test_write_file(path_in(dir, "junk.key"), "not a key\n", 10);
    chmod(path_in(dir, "junk.key"), 0644);
    dv_error_t e_junk = {0};
    int rc_junk = dv_key_load(&k, path_in(dir, "junk.key"), &e_junk);
    chmod(key_path, 0400); // tighter than 0600 is fine
    int rc400 = dv_key_load(&k, key_path, &err);
    dv_key_clear(&k);
    dv_test_rmdir(dir);
    free(dir);
    DV_CHECK_RC(rc, 0, &err);
    DV_CHECK_RC(rc644, DV_EACCES, &e644);
    DV_CHECK(strstr(e644.text, "chmod 600") != NULL);
    DV_CHECK(strstr(e644.text, key_path) != NULL);
    DV_CHECK_RC(rc620, DV_EACCES, &e620);
    DV_CHECK_RC(rc400, 0, &err);
    DV_CHECK_RC(rc_junk, DV_EACCES, &e_junk);
}

static void
test_malformed_files(void)
{
    char *dir = dv_test_tmpdir();
    dv_error_t err = {0};
    // A real key pair, to build near-miss files from.
    int rc = gen(dir, "real", NULL, 0, NULL, &err);
    dv_key_t real, other;
    int rc_real = dv_key_load(&real, path_in(dir, "real.key"), &err);
    int rc_other_gen = gen(dir, "other", NULL, 0, NULL, &err);
    int rc_other = dv_key_load(&other, path_in(dir, "other.key"), &err);
    DV_CHECK_RC(rc, 0, &err);
    DV_CHECK_RC(rc_real, 0, &err);
    DV_CHECK_RC(rc_other_gen, 0, &err);
    DV_CHECK_RC(rc_other, 0, &err);
    char pub_line[80], mismatched[200], bad_meta[8][200];
    snprintf(pub_line, sizeof pub_line, "curve\n    public-key = \"%s\"\n",
             real.public_z85);
    // real's public key with other's secret key.
    snprintf(mismatched, sizeof mismatched,
             "curve\n    public-key = \"%s\"\n    secret-key = \"%s\"\n",
             real.public_z85, other.secret_z85);
    static const char *metas[] = {
        "name = \"has space\"",      "name = \"\"",
        "roles = \"producer,root\"", "roles = \"producer,\"",
        "queues = \"a,*\"",          "queues = \"\"",
    };
    size_t n_metas = sizeof metas / sizeof metas[0];
    for (size_t i = 0; i < n_metas; i++) {
        snprintf(bad_meta[i], sizeof bad_meta[i], "metadata\n    %s\n%s",
                 metas[i], pub_line);
    }
    const struct {
        const char *name, *text, *want;
    } rows[] = {
        {"zpl.pub", "curve\n  public-key = \"x\"\n", "bad ZPL syntax"},
        {"quote.pub", "curve\n    public-key = \"abc\n", "bad ZPL syntax"},
        {"empty.pub", "", "no curve/public-key"},
        {"nokey.pub", "metadata\n    name = \"x\"\n", "no curve/public-key"},
        {"short.pub", "curve\n    public-key = \"abc\"\n", "not a 40-char"},
        {"badz85.pub",
         "curve\n    public-key = "
         "\"~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~\"\n",
         "not a 40-char"},
        {"zeros.pub",
         "curve\n    public-key = "
         "\"0000000000000000000000000000000000000000\"\n",
         "all zeros"},
        {"nosecret.key", pub_line, "no curve/secret-key"},
        {"mismatch.key", mismatched, "does not belong"},
        {"meta0.pub", bad_meta[0], "metadata name"},
        {"meta1.pub", bad_meta[1], "metadata name"},
        {"meta2.pub", bad_meta[2], "unknown role 'root'"},
        {"meta3.pub", bad_meta[3], "empty role"},
        {"meta4.pub", bad_meta[4], "stands alone"},
        {"meta5.pub", bad_meta[5], "empty queue list"},
        {"bad name.pub", pub_line, "no metadata name"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        write_text(dir, rows[i].name, rows[i].text);
        chmod(path_in(dir, rows[i].name), 0600);
        dv_key_t k;
        memset(&k, 0xab, sizeof k); // load must clear it on failure
        dv_error_clear(&err);
        int got = dv_key_load(&k, path_in(dir, rows[i].name), &err);
        bool cleared = k.queues == NULL && k.n_queues == 0 && !k.has_secret;
        if (got != DV_EFORMAT || !strstr(err.text, rows[i].want) ||
            !strstr(err.text, rows[i].name) || !cleared) {
            DV_FAIL_("%s: rc %s, reason '%s', want DV_EFORMAT and '%s'",
                     rows[i].name, dv_err_name(got), err.text, rows[i].want);
            break;
        }
    }
    // Binary data, a folder, a missing file.
    dv_test_write_file(path_in(dir, "bin.pub"), "curve\0\n", 7);
    dv_key_t k;
    int rc_bin = dv_key_load(&k, path_in(dir, "bin.pub"), &err);
    int rc_dir = dv_key_load(&k, dir, &err);
    dv_error_t enoent = {0};
    int rc_missing = dv_key_load(&k, path_in(dir, "missing.pub"), &enoent);
    // No metadata at all is fine: id from the file, no roles, all queues.
    write_text(dir, "plain.pub", pub_line);
    int rc_plain = dv_key_load(&k, path_in(dir, "plain.pub"), &err);
    dv_key_clear(&real);
    dv_key_clear(&other);
    dv_test_rmdir(dir);
    free(dir);
    if (dv_test_failed) {
        dv_key_clear(&k);
        return;
    }
    DV_CHECK_RC(rc_plain, 0, &err);
    bool plain_ok = strcmp(k.id, "plain") == 0 && k.roles == 0 &&
                    k.all_queues && !k.has_secret;
    dv_key_clear(&k);
    DV_CHECK(plain_ok);
    DV_CHECK_EQ(rc_bin, DV_EFORMAT);
    DV_CHECK_EQ(rc_dir, DV_EFORMAT);
    DV_CHECK_RC(rc_missing, DV_ENOENT, &enoent);
    DV_CHECK(strstr(enoent.text, "missing.pub") != NULL);
}

static void
test_zcert_compatible(void)
{
    // czmq's zcert reads our files, and we read the files zcert writes.
    char *dir = dv_test_tmpdir();
    dv_error_t err = {0};
    int rc = gen(dir, "ours", "ours-id", DV_ROLE_WORKER, "q1", &err);
    dv_key_t ours;
    int rc_ours = dv_key_load(&ours, path_in(dir, "ours.key"), &err);
    char ours_path[4096];
    snprintf(ours_path, sizeof ours_path, "%s/ours.key", dir);
    zcert_t *zc = zcert_load(ours_path);
    bool zc_same = zc && rc_ours == 0 &&
                   strcmp(zcert_public_txt(zc), ours.public_z85) == 0 &&
                   strcmp(zcert_secret_txt(zc), ours.secret_z85) == 0 &&
                   zcert_meta(zc, "name") &&
                   strcmp(zcert_meta(zc, "name"), "ours-id") == 0 &&
                   zcert_meta(zc, "roles") &&
                   strcmp(zcert_meta(zc, "roles"), "worker") == 0;
    zcert_destroy(&zc);

    zcert_t *theirs = zcert_new();
    zcert_set_meta(theirs, "name", "%s", "theirs-id");
    zcert_set_meta(theirs, "roles", "%s", "consumer,admin");
    zcert_set_meta(theirs, "queues", "%s", "a,b");
    char theirs_key[4096], theirs_pub[4096];
    snprintf(theirs_key, sizeof theirs_key, "%s/theirs.key", dir);
    snprintf(theirs_pub, sizeof theirs_pub, "%s/theirs.pub", dir);
    int zrc1 = zcert_save_secret(theirs, theirs_key);
    int zrc2 = zcert_save_public(theirs, theirs_pub);
    chmod(theirs_key, 0600);
    dv_key_t tk, tp;
    int rc_tk = dv_key_load(&tk, theirs_key, &err);
    int rc_tp = dv_key_load(&tp, theirs_pub, &err);
    bool theirs_same = rc_tk == 0 && rc_tp == 0 &&
                       strcmp(tk.public_z85, zcert_public_txt(theirs)) == 0 &&
                       strcmp(tk.secret_z85, zcert_secret_txt(theirs)) == 0 &&
                       strcmp(tp.public_z85, zcert_public_txt(theirs)) == 0 &&
                       !tp.has_secret && strcmp(tp.id, "theirs-id") == 0 &&
                       tp.roles == (DV_ROLE_CONSUMER | DV_ROLE_ADMIN) &&
                       tp.n_queues == 2;
    zcert_destroy(&theirs);
    dv_key_clear(&ours);
    if (rc_tk == 0) {
        dv_key_clear(&tk);
    }
    if (rc_tp == 0) {
        dv_key_clear(&tp);
    }
    dv_test_rmdir(dir);
    free(dir);
    DV_CHECK_RC(rc, 0, &err);
    DV_CHECK_RC(rc_ours, 0, &err);
    DV_CHECK(zc_same);
    DV_CHECK_EQ(zrc1, 0);
    DV_CHECK_EQ(zrc2, 0);
    DV_CHECK(theirs_same);
}

static void
test_keyring(void)
{
    char *dir = dv_test_tmpdir();
    dv_error_t err = {0};
    int rcs[3];
    rcs[0] = gen(dir, "alice", NULL, DV_ROLE_PRODUCER, "train,infer", &err);
    rcs[1] = gen(dir, "bob", "bob-consumer", DV_ROLE_CONSUMER, "*", &err);
    rcs[2] = gen(dir, "root", NULL, DV_ROLE_ADMIN, "none-of-these", &err);
    for (int i = 0; i < 3; i++) {
        DV_CHECK_RC(rcs[i], 0, &err);
    }
    // The secrets go elsewhere; other files stay and are ignored.
    dv_key_t alice_sec;
    int rc_sec = dv_key_load(&alice_sec, path_in(dir, "alice.key"), &err);
    unlink(path_in(dir, "alice.key"));
    unlink(path_in(dir, "bob.key"));
    unlink(path_in(dir, "root.key"));
    write_text(dir, "README", "authorized keys\n");
    write_text(dir, "alice.pub~", "editor backup\n");
    write_text(dir, ".#alice.pub", "editor lock\n");
    mkdir(path_in(dir, "..data"), 0755);

    dv_keyring_t *ring = NULL;
    int rc = dv_keyring_load(&ring, dir, &err);
    dv_test_rmdir(dir);
    free(dir);
    DV_CHECK_RC(rc_sec, 0, &err);
    DV_CHECK_RC(rc, 0, &err);
    DV_CHECK_EQ(dv_keyring_size(ring), 3);

    const dv_key_t *alice = dv_keyring_find(ring, alice_sec.public_key);
    const dv_key_t *bob = dv_keyring_find_id(ring, "bob-consumer");
    const dv_key_t *root = dv_keyring_find_id(ring, "root");
    uint8_t unknown[32];
    memcpy(unknown, alice_sec.public_key, 32);
    unknown[31] ^= 1;
    const dv_key_t *none = dv_keyring_find(ring, unknown);
    dv_key_clear(&alice_sec);
    bool ok = alice && bob && root && !none &&
              dv_keyring_find_id(ring, "alice") == alice &&
              dv_keyring_find_id(ring, "bob") == NULL &&
              dv_keyring_find(ring, bob->public_key) == bob &&
              dv_keyring_find(ring, root->public_key) == root &&
              !alice->has_secret && alice->roles == DV_ROLE_PRODUCER;
    // Listed queues only; '*'; admin goes everywhere.
    bool rights = ok && dv_key_allows_queue(alice, "train") &&
                  dv_key_allows_queue(alice, "infer") &&
                  !dv_key_allows_queue(alice, "other") &&
                  !dv_key_allows_queue(alice, "") &&
                  dv_key_allows_queue(bob, "anything") &&
                  dv_key_allows_queue(root, "train") &&
                  dv_key_allows_queue(root, "other");
    dv_keyring_destroy(&ring);
    dv_keyring_destroy(&ring); // idempotent
    dv_keyring_destroy(NULL);
    DV_CHECK(ring == NULL);
    DV_CHECK(ok);
    DV_CHECK(rights);
    DV_CHECK(dv_keyring_find_id(NULL, "x") == NULL);
    DV_CHECK_EQ(dv_keyring_size(NULL), 0);
}

// A keyring folder holding alice.pub (id alice) and the named extra file.
static int
ring_with(const char *extra, bool dup_id, dv_error_t *err)
{
    char *dir = dv_test_tmpdir();
    int rc = gen(dir, "alice", NULL, DV_ROLE_PRODUCER, NULL, err);
    unlink(path_in(dir, "alice.key"));
    if (rc == 0 && dup_id) {
        rc = gen(dir, extra, "alice", DV_ROLE_ADMIN, NULL, err);
        unlink(path_in(dir, "alice2.key"));
    } else if (rc == 0) {
        // Same public key, other id.
        char *text = read_text(path_in(dir, "alice.pub"));
        char *name = text ? strstr(text, "name = \"alice\"") : NULL;
        if (name) {
            memcpy(name, "name = \"clone\"", 14);
            char file[64];
            snprintf(file, sizeof file, "%s.pub", extra);
            write_text(dir, file, text);
        }
        free(text);
    }
    dv_keyring_t *ring = NULL;
    if (rc == 0) {
        rc = dv_keyring_load(&ring, dir, err);
    }
    dv_keyring_destroy(&ring);
    dv_test_rmdir(dir);
    free(dir);
    return rc;
}

static void
test_keyring_duplicates(void)
{
    dv_error_t err = {0};
    int rc = ring_with("alice2", true, &err);
    DV_CHECK_RC(rc, DV_EINVAL, &err);
    DV_CHECK(strstr(err.text, "alice.pub and alice2.pub") != NULL);
    DV_CHECK(strstr(err.text, "'alice'") != NULL);
    dv_error_clear(&err);
    rc = ring_with("clone", false, &err);
    DV_CHECK_RC(rc, DV_EINVAL, &err);
    DV_CHECK(strstr(err.text, "alice.pub and clone.pub") != NULL);
    DV_CHECK(strstr(err.text, "same public key") != NULL);
}

static void
test_keyring_refuses_secrets(void)
{
    char *dir = dv_test_tmpdir();
    dv_error_t err = {0};
    int rc = gen(dir, "alice", NULL, DV_ROLE_PRODUCER, NULL, &err);
    dv_keyring_t *ring = NULL;
    dv_error_t e_key = {0}, e_pub = {0}, e_czmq = {0};
    // As generated: alice.key sits beside alice.pub.
    int rc_key = dv_keyring_load(&ring, dir, &e_key);
    // A secret under a .pub name (mode 0600, so it is the content that
    // counts).
    char from[4096];
    snprintf(from, sizeof from, "%s/alice.key", dir);
    rename(from, path_in(dir, "evil.pub"));
    int rc_pub = dv_keyring_load(&ring, dir, &e_pub);
    unlink(path_in(dir, "evil.pub"));
    // czmq's zcert_save names secrets F_secret.
    write_text(dir, "bob.pub_secret", "whatever\n");
    int rc_czmq = dv_keyring_load(&ring, dir, &e_czmq);
    unlink(path_in(dir, "bob.pub_secret"));
    int rc_ok = dv_keyring_load(&ring, dir, &err);
    size_t n = dv_keyring_size(ring);
    dv_keyring_destroy(&ring);
    dv_test_rmdir(dir);
    free(dir);
    DV_CHECK_RC(rc, 0, &err);
    DV_CHECK_RC(rc_key, DV_EACCES, &e_key);
    DV_CHECK(strstr(e_key.text, "alice.key") != NULL);
    DV_CHECK(strstr(e_key.text, "secret key in the authorized-keys folder"));
    DV_CHECK_RC(rc_pub, DV_EACCES, &e_pub);
    DV_CHECK(strstr(e_pub.text, "evil.pub") != NULL);
    DV_CHECK_RC(rc_czmq, DV_EACCES, &e_czmq);
    DV_CHECK_RC(rc_ok, 0, &err);
    DV_CHECK_EQ(n, 1);
}

static void
test_keyring_bad_file_stops_load(void)
{
    char *dir = dv_test_tmpdir();
    dv_error_t err = {0};
    int rc = gen(dir, "alice", NULL, DV_ROLE_PRODUCER, NULL, &err);
    unlink(path_in(dir, "alice.key"));
    write_text(dir, "broken.pub", "metadata\n    name = \"broken\"\n");
    dv_keyring_t *ring = (dv_keyring_t *)&err; // must stay untouched
    dv_error_t e = {0};
    int rc_load = dv_keyring_load(&ring, dir, &e);
    dv_test_rmdir(dir);
    free(dir);
    DV_CHECK_RC(rc, 0, &err);
    DV_CHECK_RC(rc_load, DV_EFORMAT, &e);
    DV_CHECK(strstr(e.text, "broken.pub") != NULL);
    DV_CHECK(ring == (dv_keyring_t *)&err);
}

static void
test_keyring_empty_and_missing(void)
{
    char *dir = dv_test_tmpdir();
    dv_error_t err = {0};
    dv_keyring_t *ring = NULL;
    int rc = dv_keyring_load(&ring, dir, &err);
    size_t n = dv_keyring_size(ring);
    uint8_t key[32] = {1};
    const dv_key_t *found = dv_keyring_find(ring, key);
    const dv_key_t *found_id = dv_keyring_find_id(ring, "x");
    dv_keyring_destroy(&ring);
    char missing[4096];
    snprintf(missing, sizeof missing, "%s/nope", dir);
    dv_error_t e = {0};
    int rc_missing = dv_keyring_load(&ring, missing, &e);
    // A file where the folder should be.
    write_text(dir, "file", "x\n");
    dv_error_t e_file = {0};
    int rc_file = dv_keyring_load(&ring, path_in(dir, "file"), &e_file);
    dv_test_rmdir(dir);
    free(dir);
    DV_CHECK_RC(rc, 0, &err);
    DV_CHECK_EQ(n, 0);
    DV_CHECK(found == NULL && found_id == NULL);
    DV_CHECK_RC(rc_missing, DV_ENOENT, &e);
    DV_CHECK(strstr(e.text, "nope") != NULL);
    DV_CHECK_RC(rc_file, DV_ENOENT, &e_file);
    DV_CHECK(ring == NULL);
}

static void
test_roles(void)
{
    dv_error_t err = {0};
    char buf[DV_ROLES_TEXT_MAX];
    unsigned roles = 99;
    for (unsigned bits = 0; bits < 16; bits++) {
        dv_roles_format(bits, buf, sizeof buf);
        int rc = dv_roles_parse(bits ? buf : "", &roles, &err);
        DV_CHECK_RC(rc, 0, &err);
        DV_CHECK_EQ(roles, bits);
    }
    DV_CHECK_STR_EQ(dv_roles_format(0, buf, sizeof buf), "none");
    DV_CHECK_STR_EQ(dv_roles_format(15, buf, sizeof buf),
                    "producer,consumer,worker,admin");
    DV_CHECK_STR_EQ(
        dv_roles_format(DV_ROLE_CONSUMER | DV_ROLE_ADMIN, buf, sizeof buf),
        "consumer,admin");
    char small[12];
    DV_CHECK_STR_EQ(dv_roles_format(15, small, sizeof small), "producer");
    DV_CHECK_RC(dv_roles_parse(" worker , admin ", &roles, &err), 0, &err);
    DV_CHECK_EQ(roles, DV_ROLE_WORKER | DV_ROLE_ADMIN);
    DV_CHECK_RC(dv_roles_parse("admin,admin", &roles, &err), 0, &err);
    DV_CHECK_EQ(roles, DV_ROLE_ADMIN);
    roles = 7;
    DV_CHECK_RC(dv_roles_parse("producer,superuser", &roles, &err), DV_EINVAL,
                &err);
    DV_CHECK(strstr(err.text, "unknown role 'superuser'") != NULL);
    DV_CHECK_EQ(roles, 7); // unchanged on failure
    DV_CHECK_RC(dv_roles_parse("Producer", &roles, &err), DV_EINVAL, &err);
    DV_CHECK_RC(dv_roles_parse("producer,", &roles, &err), DV_EINVAL, &err);
    DV_CHECK(strstr(err.text, "empty role") != NULL);
}

// Signatures: the .key signs, its .pub (sign-key metadata) verifies; a
// changed message, another key's .pub, a .pub without sign-key, or a
// public file trying to sign all fail.
static void
test_signatures(void)
{
    char *dir = dv_test_tmpdir();
    dv_error_t err = {0};
    int rc = gen(dir, "ops", NULL, DV_ROLE_ADMIN, NULL, &err) |
             gen(dir, "eve", NULL, DV_ROLE_ADMIN, NULL, &err);
    char p[4096];
    dv_key_t ops_key = {0}, ops_pub = {0}, eve_pub = {0};
    snprintf(p, sizeof p, "%s/ops.key", dir);
    rc |= dv_key_load(&ops_key, p, &err);
    snprintf(p, sizeof p, "%s/ops.pub", dir);
    rc |= dv_key_load(&ops_pub, p, &err);
    snprintf(p, sizeof p, "%s/eve.pub", dir);
    rc |= dv_key_load(&eve_pub, p, &err);
    const char msg[] = "drover-model-v1:0123456789abcdef0123456789abcdef";
    uint8_t sig[64] = {0}, sig2[64] = {0};
    int signed_rc = dv_key_sign(&ops_key, msg, sizeof msg, sig, &err);
    int pub_sign = dv_key_sign(&ops_pub, msg, sizeof msg, sig2, &err);
    bool good = dv_key_verify(&ops_pub, msg, sizeof msg, sig);
    bool by_key = dv_key_verify(&ops_key, msg, sizeof msg, sig);
    char changed[sizeof msg];
    memcpy(changed, msg, sizeof msg);
    changed[20] ^= 1;
    bool tampered = dv_key_verify(&ops_pub, changed, sizeof changed, sig);
    bool other = dv_key_verify(&eve_pub, msg, sizeof msg, sig);
    dv_key_t no_sign = ops_pub;
    no_sign.has_sign_key = false;
    bool without = dv_key_verify(&no_sign, msg, sizeof msg, sig);
    uint8_t sig3[64];
    dv_key_sign(&ops_key, msg, sizeof msg, sig3, &err);
    bool deterministic = memcmp(sig, sig3, sizeof sig) == 0;
    dv_key_clear(&ops_key);
    dv_key_clear(&ops_pub);
    dv_key_clear(&eve_pub);
    dv_test_rmdir(dir);
    free(dir);
    DV_CHECK_EQ(rc, 0);
    DV_CHECK_EQ(signed_rc, 0);
    DV_CHECK_EQ(pub_sign, DV_EINVAL);
    DV_CHECK(good);
    DV_CHECK(by_key); // a .key knows its own sign-key
    DV_CHECK(!tampered);
    DV_CHECK(!other);
    DV_CHECK(!without);
    DV_CHECK(deterministic); // Ed25519
}

static const dv_test_case_t cases[] = {
    {"generate then load both files", test_generate_and_load},
    {"generate defaults: id from stem, no roles, all queues",
     test_generate_defaults},
    {"existing files are not overwritten", test_no_overwrite},
    {"bad id, role bits and queues refused", test_bad_arguments},
    {"a secret open to group/others is refused", test_secret_open_to_others},
    {"malformed files are DV_EFORMAT naming the problem", test_malformed_files},
    {"zcert reads our files and we read its files", test_zcert_compatible},
    {"keyring: lookups and queue rights", test_keyring},
    {"keyring: duplicate id or key names both files", test_keyring_duplicates},
    {"keyring: secrets in the folder are refused",
     test_keyring_refuses_secrets},
    {"keyring: a bad file stops the load", test_keyring_bad_file_stops_load},
    {"keyring: empty folder ok, missing folder DV_ENOENT",
     test_keyring_empty_and_missing},
    {"roles parse and format", test_roles},
    {"signatures: sign with .key, verify with .pub", test_signatures},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return dv_test_main(argc, argv, cases);
}
