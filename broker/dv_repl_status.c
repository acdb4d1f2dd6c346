// dv_repl_status — a broker group member's status and membership changes
// (see dv_repl.h; the types in dv_repl_int.h).
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dv_mem.h"
#include "dv_repl.h"
#include "dv_repl_int.h"

// ------------------------------------------------------------------ status

bool
dv_repl_serving(const dv_repl_t *self)
{
    return self->serving;
}

static const member_t *
leader_member(const dv_repl_t *self)
{
    struct raft *r = (struct raft *)&self->raft;
    raft_id id = 0;
    const char *addr = NULL;
    raft_leader(r, &id, &addr);
    if (id == 0 || (id == self->raft.id && !self->serving)) {
        return NULL;
    }
    // A follower that has not heard from its leader for two heartbeats
    // does not send clients there: it is most likely dead, and following
    // the hint would only bounce them between it and us until the election
    // ends (raft forgets the leader only at the election timeout).
    if (id != self->raft.id && r->io->time(r->io) - r->election_timer_start >
                                   2 * (raft_time)r->heartbeat_timeout) {
        return NULL;
    }
    return dv_repl_member_find(self, id);
}

const char *
dv_repl_leader_client(const dv_repl_t *self)
{
    const member_t *m = leader_member(self);
    return m ? m->client : "";
}

const char *
dv_repl_leader_worker(const dv_repl_t *self)
{
    const member_t *m = leader_member(self);
    return m ? m->worker : "";
}

static const char *
role_of(const dv_repl_t *self, unsigned i, uint64_t id, uint64_t leader)
{
    if (id == leader) {
        return "leader";
    }
    const struct raft *r = &self->raft;
    if (r->state == RAFT_LEADER && r->leader_state.progress &&
        !r->leader_state.progress[i].recent_recv) {
        return "unknown"; // not heard from within an election timeout
    }
    if (id == self->raft.id) {
        int s = raft_state((struct raft *)&self->raft);
        return s == RAFT_CANDIDATE ? "candidate" : "follower";
    }
    return leader == self->raft.id ? "follower" : "unknown";
}

// What dv_repl_describe and dv_repl_figures both report, read from raft in
// one place: this member's view of the group and its log.
typedef struct {
    raft_id self, leader; // this member; the leader (0: unknown)
    int state;            // raft_state(): RAFT_UNAVAILABLE .. RAFT_LEADER
    bool tracking;        // it leads and holds each member's progress
    uint64_t term, commit, applied, last;
    unsigned n; // members in the configuration
} view_t;

static void
look(dv_repl_t *self, view_t *v)
{
    struct raft *r = &self->raft;
    const char *addr = NULL;
    *v = (view_t){.self = r->id};
    raft_leader(r, &v->leader, &addr);
    v->state = raft_state(r);
    v->tracking = v->state == RAFT_LEADER && r->leader_state.progress;
    v->term = r->current_term;
    v->commit = r->commit_index;
    v->applied = raft_last_applied(r);
    v->last = raft_last_index(r);
    v->n = r->configuration.n;
}

// Member i (< v->n) of the configuration; *match: the last entry known to
// be on it (ours for this member, the leader's progress for the others
// while v->tracking, else 0).
static const struct raft_server *
member_at(const dv_repl_t *self, const view_t *v, unsigned i, uint64_t *match)
{
    const struct raft *r = &self->raft;
    const struct raft_server *s = &r->configuration.servers[i];
    *match = s->id == v->self ? v->last
             : v->tracking    ? r->leader_state.progress[i].match_index
                              : 0;
    return s;
}

void
dv_repl_describe(dv_repl_t *self, dv_msgw_t *w)
{
    view_t v;
    look(self, &v);
    dv_msgw_uint(w, "self", v.self);
    dv_msgw_uint(w, "leader", v.leader);
    dv_msgw_uint(w, "term", v.term);
    dv_msgw_uint(w, "commit", v.commit);
    dv_msgw_uint(w, "applied", v.applied);
    dv_msgw_uint(w, "last", v.last);
    dv_msgw_uint(w, "snapshots", self->snapshots);
    dv_msgw_uint(w, "snapshot_bytes", self->snap_bytes);
    dv_msgw_uint(w, "log_bytes", self->log_bytes);
    dv_msgw_key(w, "members");
    dv_msgw_v_array(w, v.n);
    for (unsigned i = 0; i < v.n; i++) {
        uint64_t match;
        const struct raft_server *s = member_at(self, &v, i, &match);
        const member_t *m = s->id == v.self ? &self->self_info // it knows
                                            : dv_repl_member_find(self, s->id);
        dv_msgw_v_map(w, 8);
        dv_msgw_v_str(w, "id");
        dv_msgw_v_uint(w, s->id);
        dv_msgw_v_str(w, "raft");
        dv_msgw_v_str(w, s->address ? s->address : "");
        dv_msgw_v_str(w, "client");
        dv_msgw_v_str(w, m ? m->client : "");
        dv_msgw_v_str(w, "worker");
        dv_msgw_v_str(w, m ? m->worker : "");
        dv_msgw_v_str(w, "http");
        dv_msgw_v_str(w, m ? m->http : "");
        dv_msgw_v_str(w, "voter");
        dv_msgw_v_bool(w, s->role == RAFT_VOTER);
        dv_msgw_v_str(w, "role");
        dv_msgw_v_str(w, role_of(self, i, s->id, v.leader));
        dv_msgw_v_str(w, "match");
        dv_msgw_v_uint(w, match);
    }
}

void
dv_repl_figures(dv_repl_t *self, dv_repl_figures_t *f)
{
    static const char *roles[] = {"unavailable", "follower", "candidate",
                                  "leader"};
    view_t v;
    look(self, &v);
    memset(f, 0, sizeof *f);
    f->id = v.self;
    f->leader = v.leader;
    f->role = v.state >= 0 && v.state <= 3 ? roles[v.state] : "unavailable";
    f->term = v.term;
    f->commit = v.commit;
    f->applied = v.applied;
    f->last = v.last;
    f->snapshots = self->snapshots;
    f->snapshot_bytes = self->snap_bytes;
    f->log_bytes = self->log_bytes;
    for (unsigned i = 0; i < v.n && i < DV_MAX_REPL_MEMBERS; i++) {
        uint64_t match;
        f->ids[f->n] = member_at(self, &v, i, &match)->id;
        // The leader's view only (0 for itself: its match is its last).
        if (v.tracking) {
            f->lag[f->n] = v.last > match ? v.last - match : 0;
        }
        f->n++;
    }
}

// ----------------------------------------------------------------- members

typedef struct {
    struct raft_change req;
    dv_repl_t *self;
    uint64_t id;
    bool assign; // added as a spare: make it a voter next
    dv_repl_done_fn *done;
    void *arg;
} change_t;

static void
on_changed(struct raft_change *req, int status)
{
    change_t *c = (change_t *)req;
    if (status == 0 && c->assign) {
        c->assign = false;
        memset(&c->req, 0, sizeof c->req);
        int rv =
            raft_assign(&c->self->raft, &c->req, c->id, RAFT_VOTER, on_changed);
        if (rv == 0) {
            return;
        }
        status = rv;
    }
    if (status == 0) {
        c->done(c->arg, 0, "");
    } else {
        char why[160];
        snprintf(why, sizeof why, "membership change of %" PRIu64 ": %s", c->id,
                 raft_strerror(status));
        c->done(c->arg,
                status == RAFT_NOTLEADER || status == RAFT_LEADERSHIPLOST
                    ? DV_ENOTLEADER
                    : DV_EINVAL,
                why);
    }
    free(c);
}

static int
change_error(dv_error_t *err, int rv, uint64_t id)
{
    return dv_errorf(err, rv == RAFT_NOTLEADER ? DV_ENOTLEADER : DV_EINVAL,
                     "membership change of %" PRIu64 ": %s", id,
                     raft_strerror(rv));
}

int
dv_repl_member_add(dv_repl_t *self,
                   uint64_t id,
                   const char *address,
                   dv_repl_done_fn *done,
                   void *arg,
                   dv_error_t *err)
{
    if (id == 0 || id > DV_MAX_REPL_ID || !address || !*address ||
        strlen(address) > DV_MAX_REPL_ADDR) {
        return dv_errorf(err, DV_EINVAL,
                         "member_add: an id 1..%d and a HOST:PORT, please",
                         DV_MAX_REPL_ID);
    }
    change_t *c = dv_calloc(1, sizeof *c);
    *c = (change_t){
        .self = self, .id = id, .assign = true, .done = done, .arg = arg};
    int rv = raft_add(&self->raft, &c->req, id, address, on_changed);
    if (rv != 0) {
        free(c);
        return change_error(err, rv, id);
    }
    return 0;
}

int
dv_repl_member_remove(dv_repl_t *self,
                      uint64_t id,
                      dv_repl_done_fn *done,
                      void *arg,
                      dv_error_t *err)
{
    change_t *c = dv_calloc(1, sizeof *c);
    *c = (change_t){.self = self, .id = id, .done = done, .arg = arg};
    int rv = raft_remove(&self->raft, &c->req, id, on_changed);
    if (rv != 0) {
        free(c);
        return change_error(err, rv, id);
    }
    return 0;
}
