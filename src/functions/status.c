/*
 * status: what `sedgectl functions` shows of each function — its state,
 * instances, queue and counters, the limits in force, and its isolation:
 * what the sandbox was asked for (namespaces, no_new_privs, capabilities,
 * the seccomp filter, the devices allow-list and who enforces it) beside
 * what the kernel reported of the last instance's process when it
 * connected.
 */
#include "internal.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *lifecycle_name(lifecycle_t l)
{
    return l == LIFECYCLE_LONG_LIVED ? "long-lived" : "on-demand";
}

static json_t *devices_status(const fn_t *fn)
{
    const spec_t *s = &fn->spec;
    json_t *allowed = json_array();
    static const char *const basic[] = {"/dev/null", "/dev/zero", "/dev/full", "/dev/random",
                                        "/dev/urandom"};
    for (size_t i = 0; i < ARRAY_LEN(basic); i++)
        json_array_append_new(allowed, json_pack("{s:s,s:s}", "path", basic[i], "access", "rw"));
    for (size_t i = 0; i < s->resource_count; i++)
        if (s->resources[i].device)
            json_array_append_new(allowed, json_pack("{s:s,s:s}", "path", s->resources[i].dest,
                                                     "access", s->resources[i].rw ? "rw" : "ro"));
    const char *by = fn->devices_enforced ? cgroup_devices_name() : "not enforced";
    return json_pack("{s:s,s:o}", "enforced_by", by, "allowed", allowed);
}

/* The resources it uses: [{id?, type, path (where the function sees it),
 * access, groups?, sha256 (models)}]; never a secret's value. */
static json_t *resources_status(const fn_t *fn)
{
    static const char *const kinds[] = {"volume", "device", "model", "secret"};
    const spec_t *s = &fn->spec;
    json_t *list = json_array();
    for (size_t i = 0; i < s->resource_count; i++) {
        const resource_t *r = &s->resources[i];
        json_t *o = json_pack("{s:s,s:s}", "type", kinds[r->kind], "access", r->rw ? "rw" : "ro");
        if (r->id)
            json_object_set_new(o, "id", json_string(r->id));
        if (r->kind == RESOURCE_MODEL) {
            const char *sha = strrchr(r->source, '/');
            json_object_set_new(o, "path", json_string(s->sandbox ? r->dest : r->source));
            json_object_set_new(o, "sha256", json_string(sha ? sha + 1 : ""));
        } else if (r->kind != RESOURCE_SECRET) {
            json_object_set_new(o, "path", json_string(r->dest));
        }
        json_array_append_new(list, o);
    }
    return list;
}

static json_t *isolation_status(const fn_t *fn)
{
    const spec_t *s = &fn->spec;
    json_t *o = json_object();
    json_object_set_new(o, "mode", json_string(s->sandbox ? "sandbox" : "none"));
    json_t *ns = json_array();
    if (s->sandbox) {
        static const char *const names[] = {"mount", "pid", "ipc", "uts"};
        for (size_t i = 0; i < ARRAY_LEN(names); i++)
            json_array_append_new(ns, json_string(names[i]));
        if (!s->network)
            json_array_append_new(ns, json_string("network"));
    }
    json_object_set_new(o, "namespaces", ns);
    json_object_set_new(o, "network",
                        json_string(!s->sandbox  ? "the host's"
                                    : s->network ? "the host's (\"network\": true)"
                                                 : "none: an empty namespace of its own"));
    /* Made once for the function (sharedns.c); the rest per instance. */
    json_t *shared = json_array();
    if (s->sandbox && fn->shared_ns.ipc_fd >= 0) {
        if (!s->network)
            json_array_append_new(shared, json_string("network"));
        json_array_append_new(shared, json_string("ipc"));
    }
    json_object_set_new(o, "shared_by_its_instances", shared);
    json_object_set_new(o, "code", s->code_dir ? json_string(s->code_dir) : json_null());
    json_object_set_new(o, "no_new_privs", json_true());
    json_object_set_new(o, "capabilities",
                        json_string(runner_privileged() ? "none (empty bounding set)"
                                                   : "none (sedged is not root: functions run "
                                                     "as its user, which holds none)"));
    json_object_set_new(o, "seccomp",
                        json_string("filter: mount, ptrace, kernel modules, kexec, bpf, keyrings, "
                                    "new user namespaces, setns and more fail with EPERM"));
    json_object_set_new(o, "devices", devices_status(fn));
    const confinement_t *k = &fn->confinement;
    json_object_set_new(o, "observed",
                        k->observed ? json_pack("{s:b,s:b,s:b,s:b}", "no_new_privs",
                                                k->no_new_privs, "seccomp", k->seccomp_filter,
                                                "no_capabilities", k->no_capabilities,
                                                "empty_bounding_set", k->empty_bounding_set)
                                    : json_null());
    return o;
}

static json_t *limits_status(const spec_t *s)
{
    json_t *limits = json_object();
    json_object_set_new(limits, "enforced_by", json_string(cgroup_mode_name(cgroup_mode())));
    json_object_set_new(limits, "memory_mb", json_integer(s->memory_mb));
    json_object_set_new(limits, "max_processes", json_integer(s->max_processes));
    json_object_set_new(limits, "timeout_s", json_real((double)s->timeout_ms / 1000.0));
    json_object_set_new(limits, "max_instances", json_integer(s->max_instances));
    json_object_set_new(limits, "max_queue", json_integer(s->max_queue));
    json_object_set_new(limits, "isolation", json_string(s->sandbox ? "sandbox" : "none"));
    char run_as[32];
    if (s->has_user)
        snprintf(run_as, sizeof run_as, "%u:%u", s->uid, s->gid);
    else
        snprintf(run_as, sizeof run_as, "%u:%u", (unsigned)geteuid(), (unsigned)getegid());
    json_object_set_new(limits, "run_as", json_string(run_as));
    return limits;
}

/* A histogram as JSON: per-bucket counts (not cumulative) with their
 * upper bounds in microseconds, the last bucket unbounded. */
static json_t *histogram_json(const histogram_t *h)
{
    json_t *bounds = json_array(), *counts = json_array();
    for (size_t i = 0; i <= HISTOGRAM_BUCKETS; i++) {
        if (i < HISTOGRAM_BUCKETS)
            json_array_append_new(bounds, json_integer((json_int_t)histogram_bound_us(i)));
        json_array_append_new(counts, json_integer((json_int_t)h->counts[i]));
    }
    return json_pack("{s:o,s:o,s:I,s:I}", "bounds_us", bounds, "counts", counts, "count",
                     (json_int_t)h->count, "sum_us", (json_int_t)h->sum_us);
}

json_t *functions_status(functions_t *f)
{
    json_t *list = json_array();
    for (fn_t *fn = f->fns; fn; fn = fn->next) {
        if (fn->retired)
            continue;
        spec_t *s = &fn->spec;
        json_t *o = json_object();
        json_object_set_new(o, "name", json_string(s->name));
        json_object_set_new(o, "lifecycle", json_string(lifecycle_name(s->lifecycle)));
        json_object_set_new(o, "state", json_string(fn->state));
        json_t *instances = json_array();
        uint64_t core_bytes = 0;
        for (instance_t *in = fn->instances; in; in = in->next) {
            static const char *const names[] = {"standby", "starting", "idle", "busy", "stopping"};
            if (in->conn)
                core_bytes += ipc_buffered_bytes(in->conn);
            if (in->state == INSTANCE_STANDBY)
                continue; /* listed apart: it is not running the function */
            json_array_append_new(instances, json_pack("{s:i,s:s,s:I}", "pid", in->pid, "state",
                                                       names[in->state], "invocations",
                                                       (json_int_t)in->invocations));
        }
        json_object_set_new(o, "instances", instances);
        json_object_set_new(o, "standby",
                            fn->standby ? json_integer(fn->standby->pid) : json_null());
        json_object_set_new(o, "queue", json_integer((json_int_t)fn->queue_len));
        json_object_set_new(o, "queue_bytes", json_integer((json_int_t)fn->queue_bytes));
        json_object_set_new(o, "socket_bytes", json_integer((json_int_t)core_bytes));
        json_object_set_new(o, "invocations", json_integer((json_int_t)fn->invocations));
        json_object_set_new(o, "errors", json_integer((json_int_t)fn->errors));
        json_object_set_new(o, "timeouts", json_integer((json_int_t)fn->timeouts));
        json_object_set_new(o, "oom_kills", json_integer((json_int_t)fn->oom_kills));
        json_object_set_new(o, "crashes", json_integer((json_int_t)fn->crashes));
        json_object_set_new(o, "refused", json_integer((json_int_t)fn->refused));
        json_object_set_new(o, "invalid", json_integer((json_int_t)fn->invalid));
        json_object_set_new(o, "publish_refused", json_integer((json_int_t)fn->publish_refused));
        json_object_set_new(o, "duration", histogram_json(&fn->duration));
        json_object_set_new(o, "limits", limits_status(s));
        json_object_set_new(o, "isolation", isolation_status(fn));
        json_object_set_new(o, "resources", resources_status(fn));
        json_t *groups = json_array();
        for (size_t i = 0; i < fn->spec.group_count; i++)
            json_array_append_new(groups, json_integer(fn->spec.groups[i]));
        json_object_set_new(o, "groups", groups);
        json_array_append_new(list, o);
    }
    return list;
}
