/*
 * behave: a test helper whose behaviour the payload chooses, so that tests
 * of the core (timeouts, limits, crashes, sandboxing, routes) and of the
 * SDK need one binary. Commands:
 *
 *   sleep:MS               sleep, then "slept"
 *   alloc:MB               allocate and touch MB MiB, then "allocated"
 *   crash                  abort()
 *   exit                   exit(3)
 *   publish:TOPIC          publish "hi" to TOPIC; "ok" or the error
 *   flood:N:TOPIC          publish N messages; how many were refused
 *   shadow-get:THING       the document or the error
 *   shadow-update:THING:JSON, shadow-delete:THING   (THING/NAME: a named shadow)
 *   invoke:FN:PAYLOAD      invoke FN and return its result or the error
 *   invoke-async:FN:PAYLOAD  "queued" or the error
 *   config                 the function's config
 *   secret:ID              the secret's value (sedge_secret_get) or the error
 *   log:LEVEL:TEXT         log TEXT (debug|info|warn|error), then "logged"
 *   fail:MESSAGE           fail the invocation with MESSAGE
 *   read:PATH              the file's contents or "error: <strerror>"
 *   write:PATH             write "x" into PATH: "written" or "error: <strerror>"
 *   ls:PATH                the entries, sorted, one a line, or the error
 *   env:NAME               the variable ("" when unset)
 *   whoami                 "uid:gid"
 *   topic, source          the invocation's topic / source
 *   anything else          the payload itself
 *
 * SDK errors come back as "error: WORD: MESSAGE", WORD one of denied,
 * not_found, conflict, too_large, invalid, timeout, full, failed, closed...
 * With BEHAVE_AT_START=COMMAND in the environment, behave runs COMMAND
 * before sedge_run() and prints its result to stderr.
 */
#include <sedge.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* What a command answers: text (owned) or a failure message. */
typedef struct {
    char *text;
    size_t len;
    bool failed;
} answer;

static void say(answer *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(answer *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&a->text, fmt, ap);
    va_end(ap);
    if (n < 0) {
        a->text = NULL;
        n = 0;
    }
    a->len = (size_t)n;
}

static const char *err_word(sedge_err err)
{
    switch (err) {
    case SEDGE_ERR_NOMEM: return "nomem";
    case SEDGE_ERR_INVALID: return "invalid";
    case SEDGE_ERR_MALFORMED: return "malformed";
    case SEDGE_ERR_PROTOCOL: return "protocol";
    case SEDGE_ERR_TOO_LARGE: return "too_large";
    case SEDGE_ERR_NOT_FOUND: return "not_found";
    case SEDGE_ERR_DENIED: return "denied";
    case SEDGE_ERR_IO: return "io";
    case SEDGE_ERR_FULL: return "full";
    case SEDGE_ERR_TIMEOUT: return "timeout";
    case SEDGE_ERR_CLOSED: return "closed";
    case SEDGE_ERR_CONFLICT: return "conflict";
    case SEDGE_ERR_FAILED: return "failed";
    default: return "error";
    }
}

static void say_sdk_error(answer *a, sedge_err err)
{
    say(a, "error: %s: %s", err_word(err), sedge_last_error());
}

/* A reply buffer or the error as the answer. */
static void say_buf(answer *a, sedge_err err, sedge_buf *buf)
{
    if (err) {
        say_sdk_error(a, err);
        return;
    }
    a->text = (char *)buf->data; /* NUL-terminated by the SDK */
    a->len = buf->len;
    *buf = (sedge_buf){0};
}

static void do_sleep(answer *a, const char *arg)
{
    long ms = strtol(arg, NULL, 10);
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
    say(a, "slept");
}

static void do_alloc(answer *a, const char *arg)
{
    size_t bytes = (size_t)strtoul(arg, NULL, 10) << 20;
    volatile char *p = malloc(bytes);
    if (!p) {
        say(a, "error: cannot allocate %s MiB", arg);
        return;
    }
    for (size_t i = 0; i < bytes; i += 4096)
        p[i] = 1;
    free((void *)p);
    say(a, "allocated");
}

static void do_publish(answer *a, const char *topic)
{
    sedge_err err = sedge_publish(topic, "hi", 2, 0);
    if (err)
        say_sdk_error(a, err);
    else
        say(a, "ok");
}

static void do_flood(answer *a, const char *arg)
{
    char *topic = strchr(arg, ':');
    if (!topic) {
        say(a, "usage: flood:N:TOPIC");
        return;
    }
    long n = strtol(arg, NULL, 10), refused = 0;
    for (long i = 0; i < n; i++) {
        char msg[32];
        int len = snprintf(msg, sizeof msg, "%ld", i);
        if (sedge_publish(topic + 1, msg, (size_t)len, 0) != SEDGE_OK)
            refused++;
    }
    say(a, "%ld", refused);
}

/* "FIRST:REST" split at the first colon; REST is "" when there is none. */
static char *split(char *s)
{
    char *colon = strchr(s, ':');
    if (!colon)
        return s + strlen(s);
    *colon = '\0';
    return colon + 1;
}

/* "THING/NAME" names a named shadow ('/' is not allowed in thing names):
 * cut THING there and return NAME, or NULL for the classic shadow. */
static const char *shadow_name(char *thing)
{
    char *slash = strchr(thing, '/');
    if (!slash)
        return NULL;
    *slash = '\0';
    return slash + 1;
}

static void do_invoke(answer *a, char *arg, bool async)
{
    char *payload = split(arg);
    if (async) {
        sedge_err err = sedge_invoke_async(arg, payload, strlen(payload));
        if (err)
            say_sdk_error(a, err);
        else
            say(a, "queued");
        return;
    }
    sedge_buf out;
    sedge_err err = sedge_invoke(arg, payload, strlen(payload), &out);
    say_buf(a, err, &out);
}

static void do_log(answer *a, char *arg)
{
    char *text = split(arg);
    sedge_log_level level = SEDGE_LOG_INFO;
    if (strcmp(arg, "debug") == 0)
        level = SEDGE_LOG_DEBUG;
    else if (strcmp(arg, "warn") == 0)
        level = SEDGE_LOG_WARN;
    else if (strcmp(arg, "error") == 0)
        level = SEDGE_LOG_ERROR;
    sedge_err err = sedge_log(level, "%s", text);
    if (err)
        say_sdk_error(a, err);
    else
        say(a, "logged");
}

static void do_read(answer *a, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        say(a, "error: %s", strerror(errno));
        return;
    }
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    char chunk[4096];
    size_t n;
    while (out && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
        fwrite(chunk, 1, n, out);
    int read_errno = ferror(f) ? errno : 0;
    fclose(f);
    if (out)
        fclose(out);
    if (read_errno) {
        free(text);
        say(a, "error: %s", strerror(read_errno));
        return;
    }
    a->text = text;
    a->len = len;
}

static void do_write(answer *a, const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, "x", 1) != 1) {
        say(a, "error: %s", strerror(errno));
        if (fd >= 0)
            close(fd);
        return;
    }
    if (close(fd) < 0) {
        say(a, "error: %s", strerror(errno));
        return;
    }
    say(a, "written");
}

static int compare_names(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

static void do_ls(answer *a, const char *path)
{
    DIR *d = opendir(path);
    if (!d) {
        say(a, "error: %s", strerror(errno));
        return;
    }
    char **names = NULL;
    size_t count = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char **more = realloc(names, (count + 1) * sizeof *names);
        if (!more)
            break;
        names = more;
        names[count++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, count, sizeof *names, compare_names);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    for (size_t i = 0; i < count; i++) {
        if (out && names[i])
            fprintf(out, "%s%s", i ? "\n" : "", names[i]);
        free(names[i]);
    }
    free(names);
    if (out)
        fclose(out);
    a->text = text;
    a->len = len;
}

static void run_command(char *cmd, const sedge_event *ev, answer *a)
{
    char *arg = strchr(cmd, ':');
    if (arg)
        *arg++ = '\0';
    else
        arg = cmd + strlen(cmd);
    sedge_buf buf;

    if (strcmp(cmd, "sleep") == 0) {
        do_sleep(a, arg);
    } else if (strcmp(cmd, "alloc") == 0) {
        do_alloc(a, arg);
    } else if (strcmp(cmd, "crash") == 0) {
        abort();
    } else if (strcmp(cmd, "exit") == 0) {
        exit(3);
    } else if (strcmp(cmd, "publish") == 0) {
        do_publish(a, arg);
    } else if (strcmp(cmd, "flood") == 0) {
        do_flood(a, arg);
    } else if (strcmp(cmd, "shadow-get") == 0) {
        say_buf(a, sedge_shadow_get(arg, shadow_name(arg), &buf), &buf);
    } else if (strcmp(cmd, "shadow-update") == 0) {
        char *json = split(arg);
        say_buf(a, sedge_shadow_update(arg, shadow_name(arg), json, &buf), &buf);
    } else if (strcmp(cmd, "shadow-delete") == 0) {
        say_buf(a, sedge_shadow_delete(arg, shadow_name(arg), &buf), &buf);
    } else if (strcmp(cmd, "invoke") == 0) {
        do_invoke(a, arg, false);
    } else if (strcmp(cmd, "invoke-async") == 0) {
        do_invoke(a, arg, true);
    } else if (strcmp(cmd, "config") == 0) {
        say_buf(a, sedge_config(&buf), &buf);
    } else if (strcmp(cmd, "secret") == 0 && arg) {
        say_buf(a, sedge_secret_get(arg, &buf), &buf);
    } else if (strcmp(cmd, "log") == 0) {
        do_log(a, arg);
    } else if (strcmp(cmd, "fail") == 0) {
        say(a, "%s", arg);
        a->failed = true;
    } else if (strcmp(cmd, "read") == 0) {
        do_read(a, arg);
    } else if (strcmp(cmd, "write") == 0) {
        do_write(a, arg);
    } else if (strcmp(cmd, "ls") == 0) {
        do_ls(a, arg);
    } else if (strcmp(cmd, "env") == 0) {
        const char *v = getenv(arg);
        say(a, "%s", v ? v : "");
    } else if (strcmp(cmd, "whoami") == 0) {
        say(a, "%u:%u", (unsigned)getuid(), (unsigned)getgid());
    } else if (strcmp(cmd, "topic") == 0 && ev) {
        say(a, "%s", ev->topic);
    } else if (strcmp(cmd, "source") == 0 && ev) {
        say(a, "%s", sedge_event_source(ev));
    } else if (ev) {
        a->text = malloc(ev->payload_len + 1);
        if (a->text) {
            memcpy(a->text, ev->payload, ev->payload_len);
            a->len = ev->payload_len;
        }
    } else {
        say(a, "unknown command %s", cmd);
    }
}

static sedge_err handle(const sedge_event *ev, sedge_result *res, void *ctx)
{
    (void)ctx;
    char *cmd = strndup((const char *)ev->payload, ev->payload_len);
    if (!cmd)
        return SEDGE_ERR_NOMEM;
    answer a = {0};
    run_command(cmd, ev, &a);
    free(cmd);
    sedge_err err;
    if (a.failed)
        err = sedge_result_error(res, a.text ? a.text : "failed");
    else
        err = sedge_result_set(res, a.text, a.text ? a.len : 0);
    free(a.text);
    return a.failed ? SEDGE_ERR_FAILED : err;
}

int main(void)
{
    const char *at_start = getenv("BEHAVE_AT_START");
    if (at_start && *at_start) {
        char *cmd = strdup(at_start);
        answer a = {0};
        if (cmd)
            run_command(cmd, NULL, &a);
        fprintf(stderr, "behave: at start: %.*s\n", (int)a.len, a.text ? a.text : "");
        free(a.text);
        free(cmd);
    }
    sedge_err err = sedge_run(handle, NULL);
    if (err == SEDGE_ERR_CLOSED)
        return 0;
    fprintf(stderr, "behave: %s: %s\n", sedge_strerror(err), sedge_last_error());
    return 1;
}
