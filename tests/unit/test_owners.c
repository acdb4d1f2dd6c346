// test_owners — names' owners and readers: a data set is read by its owner
// and the keys it is shared with ("*": every key), a name nobody owns by
// everyone; bad reader lists are refused with the exact code and change
// nothing; owners and readers come back from their files after a reopen,
// a damaged readers file loses only its bad lines, and forgetting a name
// removes both files.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dv_keys.h"
#include "dv_limits.h"
#include "dv_owners.h"
#include "dv_test.h"

static void
test_read_access(void)
{
    dv_owners_t *o = NULL;
    dv_error_t err = {0};
    int rc = dv_owners_open(&o, NULL, &err);
    DV_CHECK_RC(rc, 0, &err);
    rc = dv_owners_set(o, "flowers", "alice", &err);
    DV_CHECK_RC(rc, 0, &err);
    bool nobody = dv_owners_may_read(o, "unowned", "bob");
    bool owner = dv_owners_may_read(o, "flowers", "alice");
    bool before = dv_owners_may_read(o, "flowers", "bob");
    char *two[] = {"bob", "carol"};
    int shared = dv_owners_share(o, "flowers", two, 2, &err);
    bool bob = dv_owners_may_read(o, "flowers", "bob");
    bool dave = dv_owners_may_read(o, "flowers", "dave");
    char *all[] = {"*"};
    int everyone = dv_owners_share(o, "flowers", all, 1, &err);
    bool dave_all = dv_owners_may_read(o, "flowers", "dave");
    int none = dv_owners_share(o, "flowers", NULL, 0, &err);
    bool bob_after = dv_owners_may_read(o, "flowers", "bob");
    dv_owners_destroy(&o);
    DV_CHECK(o == NULL);
    DV_CHECK(nobody); // no owner: everyone, as before keys
    DV_CHECK(owner);
    DV_CHECK(!before); // owned: its owner's only until shared
    DV_CHECK_EQ(shared, 0);
    DV_CHECK(bob);
    DV_CHECK(!dave);
    DV_CHECK_EQ(everyone, 0);
    DV_CHECK(dave_all);
    DV_CHECK_EQ(none, 0);
    DV_CHECK(!bob_after); // an empty list takes it back
}

static void
test_bad_lists(void)
{
    dv_owners_t *o = NULL;
    dv_error_t err = {0};
    int rc = dv_owners_open(&o, NULL, &err);
    DV_CHECK_RC(rc, 0, &err);
    dv_owners_set(o, "flowers", "alice", &err);
    char *ok[] = {"bob"};
    dv_owners_share(o, "flowers", ok, 1, &err);
    char *bad[] = {"carol", "b/../../etc"};
    int slash = dv_owners_share(o, "flowers", bad, 2, &err);
    bool says = strstr(err.text, "b/../../etc") != NULL;
    char long_id[DV_KEY_ID_MAX + 2];
    memset(long_id, 'k', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    char *longer[] = {long_id};
    int too_long = dv_owners_share(o, "flowers", longer, 1, &err);
    char *many[DV_MAX_READERS + 1];
    for (size_t i = 0; i <= DV_MAX_READERS; i++) {
        many[i] = "k";
    }
    int too_many =
        dv_owners_share(o, "flowers", many, DV_MAX_READERS + 1, &err);
    int unowned = dv_owners_share(o, "other", ok, 1, &err);
    bool still_bob = dv_owners_may_read(o, "flowers", "bob");
    bool no_carol = !dv_owners_may_read(o, "flowers", "carol");
    dv_owners_destroy(&o);
    DV_CHECK_EQ(slash, DV_EINVAL);
    DV_CHECK(says);
    DV_CHECK_EQ(too_long, DV_EINVAL);
    DV_CHECK_EQ(too_many, DV_EINVAL);
    DV_CHECK_EQ(unowned, DV_ENOENT);
    DV_CHECK(still_bob); // refused lists changed nothing
    DV_CHECK(no_carol);
}

static bool
exists(const char *dir, const char *rel)
{
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    return access(path, F_OK) == 0;
}

static void
test_files(void)
{
    char *dir = dv_test_tmpdir();
    dv_owners_t *o = NULL;
    dv_error_t err = {0};
    int rc = dv_owners_open(&o, dir, &err);
    DV_CHECK_RC(rc, 0, &err);
    dv_owners_set(o, "flowers", "alice", &err);
    dv_owners_set(o, "weeds", "bob", &err);
    char *two[] = {"bob", "carol"};
    rc = dv_owners_share(o, "flowers", two, 2, &err);
    DV_CHECK_RC(rc, 0, &err);
    dv_owners_destroy(&o);
    // A hand-damaged readers file for weeds: its bad lines are skipped.
    char path[4400];
    snprintf(path, sizeof path, "%s/weeds/readers", dir);
    const char text[] = "dave\n../x\n\n*oops\nerin\r\n";
    int wrote = dv_test_write_file(path, text, sizeof text - 1);
    rc = dv_owners_open(&o, dir, &err);
    DV_CHECK_RC(rc, 0, &err);
    const char *owner = dv_owners_get(o, "flowers");
    bool carol = dv_owners_may_read(o, "flowers", "carol");
    bool dave = dv_owners_may_read(o, "flowers", "dave");
    bool weeds_dave = dv_owners_may_read(o, "weeds", "dave");
    bool weeds_erin = dv_owners_may_read(o, "weeds", "erin");
    bool weeds_other = dv_owners_may_read(o, "weeds", "frank");
    bool both = exists(dir, "flowers/owner") && exists(dir, "flowers/readers");
    char owner_copy[80];
    snprintf(owner_copy, sizeof owner_copy, "%s", owner ? owner : "");
    dv_owners_forget(o, "flowers");
    bool gone = !exists(dir, "flowers/owner") &&
                !exists(dir, "flowers/readers") && !exists(dir, "flowers");
    bool open_now = dv_owners_may_read(o, "flowers", "dave");
    dv_owners_destroy(&o);
    dv_test_rmdir(dir);
    free(dir);
    DV_CHECK_STR_EQ(owner_copy, "alice");
    DV_CHECK(carol);
    DV_CHECK(!dave);
    DV_CHECK_EQ(wrote, 0);
    DV_CHECK(weeds_dave);
    DV_CHECK(weeds_erin);
    DV_CHECK(!weeds_other); // "*oops" is not "*"
    DV_CHECK(both);
    DV_CHECK(gone);
    DV_CHECK(open_now); // nobody owns it now
}

// Many names, a third forgotten (each forget moves the last entry into
// the hole): every other name keeps its owner, the forgotten have none,
// and a forgotten name can be owned anew.
static void
test_many_names(void)
{
    enum { N = 3000 };
    dv_owners_t *o = NULL;
    dv_error_t err = {0};
    DV_CHECK_EQ(dv_owners_open(&o, NULL, &err), 0);
    char name[32], owner[32];
    size_t set = 0, wrong = 0;
    for (size_t i = 0; i < N; i++) {
        snprintf(name, sizeof name, "name-%zu", i);
        snprintf(owner, sizeof owner, "key-%zu", i % 7);
        set += dv_owners_set(o, name, owner, &err) == 0;
    }
    for (size_t i = 0; i < N; i += 3) {
        snprintf(name, sizeof name, "name-%zu", i);
        dv_owners_forget(o, name);
    }
    for (size_t i = 0; i < N; i++) {
        snprintf(name, sizeof name, "name-%zu", i);
        snprintf(owner, sizeof owner, "key-%zu", i % 7);
        const char *got = dv_owners_get(o, name);
        wrong += i % 3 == 0 ? got != NULL : !got || strcmp(got, owner) != 0;
    }
    bool anew = dv_owners_set(o, "name-0", "carol", &err) == 0 &&
                dv_owners_get(o, "name-0") &&
                strcmp(dv_owners_get(o, "name-0"), "carol") == 0;
    dv_owners_destroy(&o);
    DV_CHECK_EQ(set, N);
    DV_CHECK_EQ(wrong, 0);
    DV_CHECK(anew);
}

static const dv_test_case_t cases[] = {
    {"owner, readers, everyone, taken back", test_read_access},
    {"bad reader lists are refused and change nothing", test_bad_lists},
    {"owners and readers survive a reopen; forget removes them", test_files},
    {"3,000 names, a third forgotten", test_many_names},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return dv_test_main(argc, argv, cases);
}
